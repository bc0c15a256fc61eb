"""`clawgen sim` accepts OTA updates (docs/ota.md): the WebAssembly simulator's OTA server listens on
127.0.0.1 like its Telnet server, `clawgen ota BUILD --host 127.0.0.1:PORT` pushes a second build,
and the simulated device restarts into it (a fresh VM on the same filesystem and NVS, booting
main.py): the trial boot confirms itself and /status shows the new build id. The whole bundle is
sent, the board's own claw_console and clawhw included: the UART answering after the restart shows
that the simulator put its shims back."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from tests.runtime.telnet_client import free_port

REPO = Path(__file__).resolve().parents[2]
KEY = "sim-ota-key-0123456789abcdef"

SPEC = """\
name: simota
board: esp32s3
system_prompt: {prompt}
model:
  base_url: https://api.example.invalid/v1
  model: test-model
  connect_timeout: 2
  read_timeout: 2
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
capabilities: [system]
ota:
  port: {port}
  key: !secret ota_key
"""


class Lines:
    """A process's output stream, read by a thread, waited on line by line."""

    def __init__(self, stream: IO[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, text: str, timeout: float = 90) -> str:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > end:
                raise AssertionError(f"{text!r} not seen; output so far:\n{''.join(self.seen)}")
            self.seen.append(line)
            if text in line:
                return line


def _clawgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawgen.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=180)


def test_sim_accepts_ota_and_restarts_into_the_new_bundle(tmp_path: Path, mpvm: Path) -> None:
    port = free_port()
    for name, prompt in (("a", "You are version A."), ("b", "You are version B.")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "agent.yaml").write_text(SPEC.format(prompt=prompt, port=port))
        (tmp_path / name / "secrets.yaml").write_text(f"wifi_ssid: lab\nwifi_password: pw-123456\nota_key: {KEY}\n")
    r = _clawgen("build", str(tmp_path / "b" / "agent.yaml"), "--out", str(tmp_path / "out-b"), "--no-images")
    assert r.returncode == 0, r.stderr
    id_b = json.loads((tmp_path / "out-b" / "build.json").read_text())["build_id"]
    sim = subprocess.Popen([sys.executable, "-m", "clawgen.cli", "sim", str(tmp_path / "a" / "agent.yaml"),
                            "--model", "mock", "--out", str(tmp_path / "out-a")], cwd=REPO, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ})
    assert sim.stdin is not None and sim.stdout is not None and sim.stderr is not None
    try:
        out, err = Lines(sim.stdout), Lines(sim.stderr)
        out.wait_for(f"ota: listening on port {port}")
        err.wait_for(f"clawsim: device port {port} is reachable at 127.0.0.1:{port}")
        sim.stdin.write("/status\n")
        sim.stdin.flush()
        out.wait_for("as flashed")
        # The update, exactly as to a board on the network.
        r = _clawgen("ota", str(tmp_path / "out-b"), "--host", f"127.0.0.1:{port}")
        assert r.returncode == 0, r.stderr
        assert f"installed build {id_b[:12]} on 127.0.0.1:{port}" in r.stdout
        assert KEY not in r.stdout + r.stderr
        out.wait_for(f"ota: build {id_b[:12]} installed; restarting")
        err.wait_for("clawsim: the device called machine.reset(); it boots again from its filesystem")
        # Build B is a plain build: the mock is not its model any more, and the user is told.
        err.wait_for("clawsim: if an OTA update was installed, the device now runs that bundle: it talks to "
                     "the spec's own endpoints, not to --model (http://127.0.0.1:")
        # The restarted device runs build B from main.py: its trial boot reaches ready and confirms.
        out.wait_for(f"ota: build {id_b[:12]} confirmed")
        out.wait_for(f"ota: listening on port {port}")
        sim.stdin.write("/status\n")
        sim.stdin.flush()
        out.wait_for(f"build {id_b}")
        sim.stdin.write("/quit\n")
        sim.stdin.close()
        assert sim.wait(60) == 0
        assert KEY not in "".join(out.seen + err.seen)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()


def test_sim_ota_refusal_keeps_the_running_bundle(tmp_path: Path, mpvm: Path) -> None:
    """A wrong key is refused by the simulated device; it goes on running its bundle, no restart."""
    port = free_port()
    (tmp_path / "agent.yaml").write_text(SPEC.format(prompt="You are version A.", port=port))
    (tmp_path / "secrets.yaml").write_text(f"wifi_ssid: lab\nwifi_password: pw-123456\nota_key: {KEY}\n")
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-right-key-at-all\n")
    sim = subprocess.Popen([sys.executable, "-m", "clawgen.cli", "sim", str(tmp_path / "agent.yaml"),
                            "--model", "mock", "--out", str(tmp_path / "out")], cwd=REPO, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sim.stdin is not None and sim.stdout is not None and sim.stderr is not None
    try:
        out, err = Lines(sim.stdout), Lines(sim.stderr)
        out.wait_for(f"ota: listening on port {port}")
        r = _clawgen("ota", str(tmp_path / "out"), "--host", f"127.0.0.1:{port}", "--key-file", str(wrong))
        assert r.returncode == 2 and "wrong key" in r.stderr, r.stderr
        err.wait_for("ota: refused: wrong key")
        sim.stdin.write("/status\n/quit\n")
        sim.stdin.close()
        out.wait_for("as flashed")
        assert sim.wait(60) == 0
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()


def test_sim_ota_port_in_use_moves_to_a_free_port(tmp_path: Path, mpvm: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        (tmp_path / "agent.yaml").write_text(SPEC.format(prompt="You are version A.", port=port))
        (tmp_path / "secrets.yaml").write_text(f"wifi_ssid: lab\nwifi_password: pw-123456\nota_key: {KEY}\n")
        p = subprocess.run([sys.executable, "-m", "clawgen.cli", "sim", str(tmp_path / "agent.yaml"), "--model",
                            "mock", "--out", str(tmp_path / "out")], input="/quit\n", capture_output=True,
                           text=True, cwd=REPO, timeout=180)
    assert p.returncode == 0, p.stderr
    assert f"clawsim: port {port} is in use on this machine; the device's OTA server gets a free port" in p.stderr
    assert f"clawsim: device port {port} is reachable at 127.0.0.1:" in p.stderr
    assert f"ota: listening on port {port}" in p.stdout
