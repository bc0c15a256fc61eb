"""`clawgen sim` starts its node process before the command line is parsed (clawgen/sim/early.py):
what the early reading of the arguments accepts, that it agrees with the click command, that the
run takes that process, and that an unused one does not outlive the command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click
import pytest

from clawgen.sim import early
from tests.conftest import pid_alive
from tests.sim.test_cli import REPO, SPEC


def _sim_command() -> click.Command:
    from clawgen.sim import cli as sim_cli

    group = click.Group()
    sim_cli.register(group)
    return group.commands["sim"]


def test_the_early_option_table_is_the_commands() -> None:
    table: dict[str, int] = {}
    for p in _sim_command().params:
        if isinstance(p, click.Option):
            n = 0 if p.is_flag else p.nargs
            table.update({name: n for name in p.opts + p.secondary_opts})
    assert early.SIM_OPTIONS == table


@pytest.mark.parametrize(("args", "expected"), [
    (["sim", "a.yaml"], {"spec": "a.yaml"}),
    (["sim", "--model", "mock", "a.yaml", "--heapsize", "128K"], {"spec": "a.yaml", "heapsize": "128K"}),
    (["sim", "-s", "NAME", "v", "a.yaml", "--board=esp32c3", "--out", "o"],
     {"spec": "a.yaml", "board": "esp32c3", "out": "o"}),
    (["sim", "--send-key", "--", "a.yaml"], {"spec": "a.yaml"}),
    (["sim", "a.yaml", "--help"], None),  # help: nothing to start
    (["sim", "-h", "a.yaml"], None),
    (["sim", "a.yaml", "--colour", "x"], None),  # an unknown option: the command says what is wrong
    (["sim", "a.yaml", "b.yaml"], None),
    (["sim", "a.yaml", "--board"], None),  # a value missing
    (["sim", "a.yaml", "--send-key=1"], None),
    (["sim", "--model", "mock"], None),  # no spec
    (["build", "a.yaml"], None),
    ([], None),
])
def test_what_the_early_reading_accepts(args: list[str], expected: dict[str, str] | None) -> None:
    assert early.sim_arguments(args) == expected


class _Fake:
    def __init__(self) -> None:
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def test_a_process_started_for_another_heap_is_not_used() -> None:
    fake = _Fake()
    early._early.append((fake, 65536))  # type: ignore[arg-type]
    assert early.take(131072) is None and fake.killed
    assert early.take(65536) is None  # taken once, whatever the outcome
    fake = _Fake()
    early._early.append((fake, None))  # type: ignore[arg-type]
    assert early.take(None) is fake and not fake.killed


def _spec(tmp_path: Path) -> Path:
    (tmp_path / "agent.yaml").write_text(SPEC)
    (tmp_path / "secrets.yaml").write_text("api_key: k\nwifi_ssid: n\nwifi_password: password\n")
    return tmp_path / "agent.yaml"


def _timed_sim(module: str, *args: str, stdin: str = "/quit\n",
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, "sim", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "CLAWSIM_TIMING": "1", **(env or {})}, timeout=120)


def _phases(stderr: str) -> list[str]:
    return [line.split(" python: ", 1)[1] for line in stderr.splitlines() if " python: " in line]


def test_the_clawgen_command_starts_node_before_the_sim_command_runs(tmp_path: Path, mpvm: Path) -> None:
    spec = _spec(tmp_path)
    p = _timed_sim("clawgen", str(spec), "--model", "mock", "--out", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    assert "ready:" in p.stdout
    phases = _phases(p.stderr)
    assert phases[:2] == ["node started", "clawgen sim starts"], phases
    assert phases.count("node started") == 1  # the run took that process: no second one
    # The second run knows the board's heap from the first build: the VM is loaded ahead with it.
    p = _timed_sim("clawgen", str(spec), "--model", "mock", "--out", str(tmp_path / "out"))
    assert p.returncode == 0 and _phases(p.stderr).count("node started") == 1, p.stderr
    assert "the VM starts with a 65536-byte GC heap" in p.stderr
    # clawgen.cli itself (no early look at the arguments) starts node from the command, as before
    p = _timed_sim("clawgen.cli", str(spec), "--model", "mock", "--out", str(tmp_path / "out"))
    assert p.returncode == 0 and _phases(p.stderr)[:2] == ["clawgen sim starts", "node started"], p.stderr


def _nodes_tagged(tag: str) -> list[int]:
    """Processes whose environment holds ``tag`` (the node processes a test's command started)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if tag.encode() in (d / "environ").read_bytes():
                    found.append(int(d.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the node processes")
@pytest.mark.parametrize("args", [
    ("--model", "mock", "--telnet-port", "0"),  # refused by the command after node started: no Telnet
    ("--model", "gpt-4"),  # refused by the command: not mock or a URL
    ("--model", "mock", "--telnet-port", "99999"),  # refused by click: out of range
])
def test_an_early_node_nobody_takes_ends_with_the_command(tmp_path: Path, mpvm: Path, args: tuple[str, ...]) -> None:
    tag = f"CLAWGEN_EARLY_TEST={uuid.uuid4().hex}"
    name, value = tag.split("=")
    p = _timed_sim("clawgen", str(_spec(tmp_path)), *args, "--out", str(tmp_path / "out"), env={name: value})
    assert p.returncode != 0, p.stderr
    assert _phases(p.stderr)[0] == "node started", p.stderr  # it was started early
    deadline = time.monotonic() + 10
    while _nodes_tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _nodes_tagged(tag) == []
    assert "SyntaxError" not in p.stderr and "Traceback" not in p.stderr


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the node processes")
def test_the_tagged_process_scan_finds_a_running_simulator(tmp_path: Path, mpvm: Path) -> None:
    """(The check above would pass vacuously if the scan found nothing: it finds a live one.)"""
    tag = f"CLAWGEN_EARLY_TEST={uuid.uuid4().hex}"
    name, value = tag.split("=")
    p = subprocess.Popen([sys.executable, "-m", "clawgen", "sim", str(_spec(tmp_path)), "--model", "mock", "--out",
                          str(tmp_path / "out")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, cwd=REPO, env={**os.environ, name: value})
    try:
        assert p.stdout is not None and p.stdin is not None
        out = b""
        while b"ready:" not in out:
            chunk = p.stdout.read1(4096)
            assert chunk, out
            out += chunk
        assert len(_nodes_tagged(tag)) >= 2  # the command and its node
    finally:
        p.communicate(b"/quit\n", timeout=60)
    assert p.returncode == 0


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # (the field after the state: the parent)
                out.append(int(d.name))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the node process")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_termination_signal_stops_the_node_process_too(tmp_path: Path, mpvm: Path, signame: str) -> None:
    # SIGTERM (a CI timeout) or SIGHUP (the terminal closed) killed Python at once and left node
    # running, reading the console's input as the device's.
    import signal

    spec = tmp_path / "agent.yaml"
    spec.write_text(SPEC)
    p = subprocess.Popen([sys.executable, "-m", "clawgen", "sim", str(spec), "--model", "mock", "--out",
                          str(tmp_path / "out")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=REPO)
    nodes: list[int] = []
    try:
        assert p.stdout is not None
        line = b""
        while b"ready:" not in line:
            line = p.stdout.readline()
            assert line, p.stderr.read() if p.stderr else ""
        nodes += [c for c in _children(p.pid) if b"node" in (Path("/proc") / str(c) / "cmdline").read_bytes()]
        assert nodes
        p.send_signal(getattr(signal, signame))
        assert p.wait(timeout=30) == 128 + getattr(signal, signame)
        end = time.monotonic() + 10
        while any(pid_alive(n) for n in nodes) and time.monotonic() < end:
            time.sleep(0.1)
        assert not any(pid_alive(n) for n in nodes)
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
        for n in nodes:  # (left running when the test fails)
            if pid_alive(n):
                os.kill(n, signal.SIGKILL)
