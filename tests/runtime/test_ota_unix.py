"""OTA updates end to end on the MicroPython unix-port VM (docs/ota.md): `clawgen.ota.push` uploads a
build to a device listening on a real host port, the device restarts into it (a power cycle of the
same device root and NVS) and shows the new build id in /status; every refusal leaves the device's
files exactly as they were; a bundle that crashes at boot, or hangs before ready until the confirm timer resets it, is rolled
back by the next boot."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from clawgen import ota
from clawgen.sim.unixvm import UnixDevice, UnixRun
from clawgen.sim.vm import SHIM_MODULES, compile_source
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import free_port

KEY = "k3y-for-the-ota-tests-0123456789"
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22", "ota_key": KEY}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22", "ota_key": KEY.encode()}
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
HOST = "127.0.0.1"
# The device boots as a board does: main.py first (the OTA boot record), then claw_main.
ENTRY = 'exec(open("/main.py").read(), {"__name__": "__main__"})'
# The simulator's hardware shims stay on the device: the bundle's own versions are not sent.
SIM_EXCLUDE = tuple(f"/lib/{m}.mpy" for m in SHIM_MODULES)


def ota_build(tmp: Path, port: int, prompt: str = "You are a test agent.", **overrides: Any) -> Path:
    spec = make_spec("http://192.0.2.1:9", system_prompt=prompt, network=WIFI,
                     ota={"port": port, "key": "!secret ota_key", "confirm_timeout": 60}, **overrides)
    return build(tmp, spec, secrets=SECRETS)


def device(unix_device: Any, out: Path) -> UnixDevice:
    dev = unix_device(out, secrets=NVS)
    dev.write_file("/main.py", (out / "app" / "main.py").read_bytes())
    return dev


def boot(dev: UnixDevice, port: int) -> UnixRun:
    """Start the device and wait until its OTA server answers."""
    run = dev.start(open_stdin=True, entry=ENTRY)
    end = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=5) as s:
                s.settimeout(5)
                assert s.recv(9) == b"CLAWOTA 1"
            return run
        except ConnectionRefusedError:
            if run.proc.poll() is not None or time.monotonic() > end:
                res = run.wait(5)
                raise AssertionError(f"the device does not listen on {port}:\n{res.stdout}{res.stderr}") from None
            time.sleep(0.1)


def status(run: UnixRun) -> str:
    run.send("/status\n")
    run.end_input()
    res = run.wait(30)
    # (the reason and code say a VM crash, e.g. "crashed" and -11 for SIGSEGV, when there is no output)
    assert res.returncode == 0, f"{res.reason} (returncode {res.returncode}):\n{res.stdout}{res.stderr}"
    return res.stdout


@pytest.fixture
def builds(tmp_path: Path) -> tuple[int, Path, Path]:
    """(port, build A, build B): two builds of the same agent that differ in their system prompt."""
    port = free_port()
    return port, ota_build(tmp_path / "a", port), ota_build(tmp_path / "b", port, prompt="You are version B.")


def test_upload_restarts_into_the_new_build(builds, unix_device):
    port, a, b = builds
    id_a = json.loads((a / "build.json").read_text())["build_id"]
    id_b = json.loads((b / "build.json").read_text())["build_id"]
    assert id_a != id_b and len(id_b) == 64
    dev = device(unix_device, a)
    run = boot(dev, port)
    seen: list[tuple[int, int]] = []
    result = ota.push(b, HOST, port, KEY.encode(), lambda n, total: seen.append((n, total)), exclude=SIM_EXCLUDE)
    assert result.build_id == id_b and result.reply.startswith("OK installed " + id_b)
    assert seen[-1][0] == seen[-1][1] == result.bytes_sent > 0
    res = run.wait(30)
    assert res.reason == "reset", res.stdout + res.stderr
    assert f"ota: build {id_b[:12]} installed; restarting" in res.stdout
    # The restart: the new bundle's trial boot reaches ready and confirms itself.
    assert dev.files()["/claw_prompt.json"] == (b / "app" / "claw_prompt.json").read_bytes()
    out = status(dev.start(open_stdin=True, entry=ENTRY))
    assert f"ota: build {id_b[:12]} confirmed" in out
    assert f"build {id_b}" in out
    assert json.loads(dev.files()["/ota.rec"])["state"] == "ok"
    assert not (dev.root / "ota.old").exists() and not (dev.root / "ota.new").exists()
    assert KEY not in out


def _raw_upload(port: int, manifest: dict[str, Any], key: bytes, body: bytes, close_early: bool = False) -> str:
    """Speak the protocol by hand (for uploads push() never makes); the device's last line."""
    with socket.create_connection((HOST, port), timeout=20) as s:
        f = s.makefile("rb")
        nonce = bytes.fromhex(f.readline().split()[2].decode())
        data = json.dumps(manifest).encode()
        s.sendall(b"%d %s\n" % (len(data), ota.sign(key, nonce, data).encode()) + data)
        line = f.readline().decode().strip()
        if line != "OK send":
            return line
        s.sendall(body)
        if close_early:
            s.shutdown(socket.SHUT_WR)
        return f.readline().decode().strip()


def _manifest(build_dir: Path, **change: Any) -> tuple[dict[str, Any], bytes]:
    info, files = ota.bundle(build_dir, SIM_EXCLUDE)
    m = json.loads(ota.manifest(info, files))
    m.update(change)
    return m, b"".join(f.data for f in files)


def test_refusals_leave_the_device_untouched(builds, unix_device):
    port, a, b = builds
    dev = device(unix_device, a)
    run = boot(dev, port)
    before = dev.files()
    lib_before = {p.name: p.read_bytes() for p in (dev.root / "lib").iterdir()}
    refusals = []
    # Wrong key.
    with pytest.raises(ota.OtaError) as e:
        ota.push(b, HOST, port, b"not-the-right-key-at-all", exclude=SIM_EXCLUDE)
    refusals.append(str(e.value))
    assert e.value.refused and "wrong key" in str(e.value)
    # A bundle for another board and chip.
    m, body = _manifest(b, board="esp32c3", chip="esp32c3")
    refusals.append(_raw_upload(port, m, KEY.encode(), body))
    assert refusals[-1].startswith("ERR bundle for board esp32c3")
    # Truncated: the connection ends half-way through the files.
    m, body = _manifest(b)
    refusals.append(_raw_upload(port, m, KEY.encode(), body[: len(body) // 2], close_early=True))
    assert refusals[-1].startswith("ERR upload truncated")
    # Altered: one byte of the last file changed after signing.
    m, body = _manifest(b)
    altered = body[:-1] + bytes([body[-1] ^ 1])
    refusals.append(_raw_upload(port, m, KEY.encode(), altered))
    assert refusals[-1].startswith("ERR altered upload: " + m["files"][-1][0])
    # Too large for the filesystem (checked before anything is written).
    m, body = _manifest(b)
    m["files"][0][1] += 1 << 50
    m["total"] += 1 << 50
    refusals.append(_raw_upload(port, m, KEY.encode(), body))
    assert refusals[-1].startswith("ERR too large")
    # The device still runs the old bundle, with the same files as before the attempts.
    out = status(run)
    assert "as flashed" in out
    assert dev.files() == before
    assert {p.name: p.read_bytes() for p in (dev.root / "lib").iterdir()} == lib_before
    assert len(set(refusals)) == 5


def test_second_upload_during_one_is_refused(builds, unix_device):
    port, a, b = builds
    dev = device(unix_device, a)
    run = boot(dev, port)
    before = dev.files()
    first = socket.create_connection((HOST, port), timeout=20)
    f1 = first.makefile("rb")
    assert f1.readline().startswith(b"CLAWOTA 1 ")
    with pytest.raises(ota.OtaError) as e:
        ota.push(b, HOST, port, KEY.encode(), exclude=SIM_EXCLUDE)
    assert e.value.refused and "another upload is in progress" in str(e.value)
    first.close()
    out = status(run)
    assert "as flashed" in out and dev.files() == before


def test_bundle_that_crashes_at_boot_is_rolled_back(builds, unix_device, tmp_path):
    port, a, b = builds
    dev = device(unix_device, a)
    # Build B with a claw_main that dies at import: its trial boot crashes before ready.
    bad = tmp_path / "bad"
    shutil.copytree(b, bad)
    src = (b / "app" / "claw_main.py").read_text() + "\nraise RuntimeError('broken bundle')\n"
    shutil.copyfile(compile_source(src, "claw_main", tmp_path / "scratch"), bad / "mpy" / "claw_main.mpy")
    info = json.loads((bad / "build.json").read_text())
    info["build_id"] = "bad" + info["build_id"][3:]
    (bad / "build.json").write_text(json.dumps(info))
    id_a_main = (dev.root / "lib" / "claw_main.mpy").read_bytes()
    run = boot(dev, port)
    ota.push(bad, HOST, port, KEY.encode(), exclude=SIM_EXCLUDE)
    assert run.wait(30).reason == "reset"
    crashed = dev.run(stdin="", entry=ENTRY, timeout=30)
    assert crashed.reason == "crashed" and "broken bundle" in crashed.stdout + crashed.stderr
    # The next boot rolls back before importing anything of the broken bundle, and runs A again.
    out = status(dev.start(open_stdin=True, entry=ENTRY))
    assert "did not reach ready on its trial boot; rolled back" in out
    assert (dev.root / "lib" / "claw_main.mpy").read_bytes() == id_a_main
    assert dev.files()["/claw_prompt.json"] == (a / "app" / "claw_prompt.json").read_bytes()
    rec = json.loads(dev.files()["/ota.rec"])
    assert rec["state"] == "ok" and rec["rolled_back"] == info["build_id"]


def test_bundle_that_hangs_before_ready_is_reset_by_the_timer_and_rolled_back(builds, unix_device, tmp_path):
    """The trial boot never reaches ready and never crashes: main.py's confirm timer (a one-shot
    machine.Timer of ota.confirm_timeout, here on a clock 100 times faster) resets the device, and
    the next boot rolls back."""
    port, a, b = builds
    dev = device(unix_device, a)
    hung = tmp_path / "hung"
    shutil.copytree(b, hung)
    src = (b / "app" / "claw_main.py").read_text() + (
        "\nimport time\nprint('hung bundle: waiting forever')\nwhile True:\n    time.sleep_ms(1000)\n")
    shutil.copyfile(compile_source(src, "claw_main", tmp_path / "scratch"), hung / "mpy" / "claw_main.mpy")
    info = json.loads((hung / "build.json").read_text())
    info["build_id"] = "4a6" + info["build_id"][3:]
    (hung / "build.json").write_text(json.dumps(info))
    id_a_main = (dev.root / "lib" / "claw_main.mpy").read_bytes()
    run = boot(dev, port)
    ota.push(hung, HOST, port, KEY.encode(), exclude=SIM_EXCLUDE)
    assert run.wait(30).reason == "reset"
    # The trial boot hangs before ready (the UART stays open: nothing else would end the run); the
    # timer's machine.reset() stops it where it hangs. confirm_timeout is 60 s: 0.6 s at this scale.
    trial = dev.start(open_stdin=True, entry=ENTRY, timer_scale=0.01).wait(60)
    assert trial.reason == "reset", trial.stdout + trial.stderr
    assert "hung bundle: waiting forever" in trial.stdout and "ready:" not in trial.stdout
    rec = json.loads(dev.files()["/ota.rec"])
    assert (rec["state"], rec["boots"], rec["build"]) == ("trial", 1, info["build_id"])
    # The next boot rolls back before importing anything of the hung bundle, and runs A again.
    out = status(dev.start(open_stdin=True, entry=ENTRY))
    assert "did not reach ready on its trial boot; rolled back" in out and "as flashed" in out
    assert (dev.root / "lib" / "claw_main.mpy").read_bytes() == id_a_main
    rec = json.loads(dev.files()["/ota.rec"])
    assert rec["state"] == "ok" and rec["rolled_back"] == info["build_id"]


def test_confirm_timer_is_created_for_a_trial_and_stopped_at_ready(builds, unix_device):
    """main.py arms the one-shot timer only on a trial boot, with ota.confirm_timeout; claw_ota.confirm()
    stops it (a probe module records what the device's machine.Timer was asked to do)."""
    port, a, b = builds
    probe = """
import machine
calls = []
_Timer = machine.Timer


class Timer(_Timer):
    def init(self, **kw):
        calls.append(("init", kw.get("mode"), kw.get("period")))
        _Timer.init(self, **kw)

    def deinit(self):
        calls.append(("deinit",))
        _Timer.deinit(self)


machine.Timer = Timer
"""
    entry = "import timerprobe\n" + ENTRY + "\nprint('timer calls:', timerprobe.calls)"
    dev = unix_device(a, secrets=NVS, modules={"timerprobe": probe})
    dev.write_file("/main.py", (a / "app" / "main.py").read_bytes())
    first = dev.run(stdin="", entry=entry, timeout=30)
    assert "timer calls: []" in first.stdout, first.stdout + first.stderr  # no trial, no timer
    run = boot(dev, port)
    ota.push(b, HOST, port, KEY.encode(), exclude=SIM_EXCLUDE)
    assert run.wait(30).reason == "reset"
    trial = dev.run(stdin="", entry=entry, timeout=30)
    assert trial.returncode == 0, trial.stdout + trial.stderr
    assert "timer calls: [('init', 0, 60000), ('deinit',)]" in trial.stdout


def test_unreachable_host_and_foreign_server(builds):
    port, _a, b = builds
    with pytest.raises(ota.OtaError, match=f"cannot reach {HOST}:{port}"):
        ota.push(b, HOST, port, KEY.encode())
    # A .local name that does not resolve: the hint says what to use instead.
    with pytest.raises(ota.OtaError) as e:
        ota.push(b, "no-such-clawgen-device.local", port, KEY.encode())
    assert str(e.value).startswith(f"cannot reach no-such-clawgen-device.local:{port}: ")
    assert str(e.value).endswith("; .local names need mDNS on this computer: give the device's IP address)")
    # A server that is not ours (here: one that greets like an SSH server).
    with pytest.raises(ota.OtaError, match="is not a clawgen OTA server"):
        _push_to_peer(b, b"SSH-2.0-OpenSSH_9.6\r\n")
    # A peer whose refusal carries terminal escape sequences: shown as "?", never sent to the terminal.
    with pytest.raises(ota.OtaError) as e:
        _push_to_peer(b, b"ERR \x1b]0;owned\x07\x1b[2Jgo away\x00\n")
    assert str(e.value) == "the device refused the update: ?]0;owned??[2Jgo away?"


def _push_to_peer(build_dir: Path, says: bytes) -> None:
    """ota.push to a local peer that sends ``says`` to the connection and closes it."""
    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen(1)
        srv.settimeout(10)

        def answer() -> None:
            c, _ = srv.accept()
            c.sendall(says)
            c.close()

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        try:
            ota.push(build_dir, HOST, srv.getsockname()[1], KEY.encode())
        finally:
            t.join(5)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawgen.cli", "ota", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_exit_codes_and_key_handling(builds, unix_device, tmp_path):
    port, a, b = builds
    assert ota.key_from_spec(b) == KEY.encode()  # the default: the spec's secrets.yaml via build.json
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-right-key-at-all\n")
    dev = device(unix_device, a)
    run = boot(dev, port)
    before = dev.files()
    r = _cli(str(b), "--host", f"{HOST}:{port}", "--key-file", str(wrong))
    assert r.returncode == 2 and r.stderr.strip().endswith("wrong key: the manifest's HMAC does not match "
                                                           "(check ota.key)"), r.stderr
    # The spec's key, a second upload while one runs: refused (exit 2), and the key shows nowhere.
    hold = socket.create_connection((HOST, port), timeout=20)
    assert hold.makefile("rb").readline().startswith(b"CLAWOTA 1 ")
    r = _cli(str(b), "--host", f"{HOST}:{port}")
    hold.close()
    assert r.returncode == 2 and "another upload is in progress" in r.stderr, r.stderr
    assert KEY not in r.stdout + r.stderr
    assert "as flashed" in status(run) and dev.files() == before
    # Nobody listening: exit 1, one line.
    r = _cli(str(b), "--host", f"{HOST}:{free_port()}")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot reach" in r.stderr, r.stderr
    # Not a build directory: invalid input, exit 2.
    r = _cli(str(tmp_path), "--host", HOST, "--key-file", str(wrong))
    assert r.returncode == 2 and "not a clawgen build directory" in r.stderr and "Traceback" not in r.stderr
    # The same with the key from the spec (it was an internal error: build.json read for the key).
    r = _cli(str(tmp_path), "--host", HOST)
    assert r.returncode == 2 and "not a clawgen build directory (it has no build.json)" in r.stderr, r.stderr
    r = _cli(str(tmp_path / "nowhere"), "--host", HOST)
    assert r.returncode == 2 and "no such build directory" in r.stderr, r.stderr


def test_switch_cut_by_a_power_loss_is_undone_at_boot(builds, unix_device):
    port, a, b = builds
    dev = device(unix_device, a)
    before = dev.files()
    lib_before = {p.name: p.read_bytes() for p in (dev.root / "lib").iterdir()}
    run = boot(dev, port)
    ota.push(b, HOST, port, KEY.encode(), exclude=SIM_EXCLUDE)
    assert run.wait(30).reason == "reset"
    # Put the filesystem back to where a power cut half-way through the switch leaves it: the
    # record still says "switch", the second half of the files not yet moved.
    rec = json.loads((dev.root / "ota.rec").read_text())
    half = len(rec["files"]) // 2
    for path, had in list(zip(rec["files"], rec["had"], strict=True))[half:]:
        cur, staged, old = (dev.root / path.lstrip("/"), dev.root / "ota.new" / path.lstrip("/"),
                            dev.root / "ota.old" / path.lstrip("/"))
        staged.parent.mkdir(parents=True, exist_ok=True)
        cur.rename(staged)
        if had:
            old.rename(cur)
    rec["state"] = "switch"
    del rec["boots"]
    (dev.root / "ota.rec").write_text(json.dumps(rec))
    out = status(dev.start(open_stdin=True, entry=ENTRY))
    assert "was interrupted; rolled back to the previous bundle" in out and "as flashed" in out
    after = dev.files()
    assert {p: after.get(p) for p in before} == before
    assert {p.name: p.read_bytes() for p in (dev.root / "lib").iterdir()} == lib_before
    assert json.loads(after["/ota.rec"])["rolled_back"] == rec["build"]


def test_cli_push_with_the_spec_key(builds, unix_device):
    """The whole bundle (the simulator's shims included, so the device is not booted again)."""
    port, a, b = builds
    dev = device(unix_device, a)
    run = boot(dev, port)
    assert ota.default_port(b) == port  # build.json's ota.port: --host needs no port
    r = _cli(str(b), "--host", HOST)
    assert r.returncode == 0, r.stderr
    id_b = json.loads((b / "build.json").read_text())["build_id"]
    assert f"installed build {id_b[:12]} on {HOST}:{port}" in r.stdout
    assert f"uploading to {HOST}:{port}" in r.stderr
    assert KEY not in r.stdout + r.stderr
    assert run.wait(30).reason == "reset"
    assert json.loads(dev.files()["/ota.rec"])["state"] == "trial"


def test_telnet_is_served_while_an_upload_is_under_way(tmp_path, unix_device):
    """The OTA server is one more polled source: an upload stalled half-way blocks nobody."""
    from tests.runtime.telnet_client import TelnetClient

    port, tport = free_port(), free_port()
    a = ota_build(tmp_path / "a", port, transports={"uart": True, "telnet": {"port": tport}})
    dev = device(unix_device, a)
    before = dev.files()
    run = boot(dev, port)
    m, body = _manifest(a)
    with socket.create_connection((HOST, port), timeout=20) as s:
        f = s.makefile("rb")
        nonce = bytes.fromhex(f.readline().split()[2].decode())
        data = json.dumps(m).encode()
        s.sendall(b"%d %s\n" % (len(data), ota.sign(KEY.encode(), nonce, data).encode()) + data)
        assert f.readline() == b"OK send\n"
        s.sendall(body[:3000])  # and then nothing more for now
        t = TelnetClient(HOST, tport, wait=10)
        t.read_until(b"\n> ")
        t.send_line("/status")
        assert "as flashed" in t.read_until(b"\n> ")
        t.send_line("/quit")
        t.read_until(b"bye")
        t.close()
    assert "as flashed" in status(run)
    after = dev.files()
    assert {p: after.get(p) for p in before} == before  # (staged files stay under /ota.new only)


@pytest.mark.parametrize(("text", "want"), [
    ("regassist.local", ("regassist.local", 8266)), ("10.0.0.5:9000", ("10.0.0.5", 9000)),
    ("[::1]:8300", ("::1", 8300)), ("[fe80::1]", ("fe80::1", 8266)), ("fe80::1", ("fe80::1", 8266)),
    ("fe80::1%eth0", ("fe80::1%eth0", 8266)), ("claw_kitchen.local.", ("claw_kitchen.local.", 8266)),
    ("bücher.local:80", ("bücher.local", 80))])
def test_host_option(text: str, want: tuple[str, int]) -> None:
    from clawgen.hostport import parse_host

    assert parse_host(text, ota.DEFAULT_PORT) == want


@pytest.mark.parametrize("text", [
    "host:0", "host:70000", "host:http", ":8266", "[::1]x", "[::1:80", " ",
    # Not host names: the resolver's IDNA codec raised UnicodeError ("internal error", exit 1)
    # for the first two; the others failed only as "cannot resolve" after the build.
    "x" * 64 + ".local", "\udcff", "a b", "a..b", "-claw.local", "claw-.local", "\x1b[31mred",
    "x." * 130, "[claw.local]:80", "[::1%]"])
def test_host_option_errors(text: str) -> None:
    from clawgen.diagnostics import InputError
    from clawgen.hostport import parse_host

    with pytest.raises(InputError, match="--host") as e:  # invalid input: exit 2
        parse_host(text, ota.DEFAULT_PORT)
    assert "\x1b" not in str(e.value) and len(str(e.value)) < 400


@pytest.mark.parametrize("bid", [None, "", 5, "0" * 65, "xyz", "ABC", "ab cd"])
def test_a_build_id_the_device_would_refuse_is_not_sent(bid: object) -> None:
    from clawgen.diagnostics import InputError

    with pytest.raises(InputError, match="build_id"):
        ota.build_id({"build_id": bid})
    assert ota.build_id({"build_id": "0" * 64}) == "0" * 64


def test_manifest_and_file_count_caps(builds, unix_device):
    port, a, _b = builds
    dev = device(unix_device, a)
    run = boot(dev, port)
    before = dev.files()
    with socket.create_connection((HOST, port), timeout=20) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"%d %s\n" % (ota.MANIFEST_MAX_BYTES + 1, b"0" * 64))
        assert f.readline().decode().startswith(f"ERR manifest of {ota.MANIFEST_MAX_BYTES + 1} bytes")
    files = [[f"/f{i:02d}", 0, "0" * 64] for i in range(ota.MAX_FILES + 1)]
    m = {"v": 1, "board": "esp32s3", "chip": "esp32s3", "build": "0" * 64, "total": 0, "files": files}
    assert _raw_upload(port, m, KEY.encode(), b"") == f"ERR {ota.MAX_FILES + 1} files in the manifest; 1 to " \
                                                      f"{ota.MAX_FILES}"
    assert "as flashed" in status(run) and dev.files() == before


@pytest.mark.parametrize("rel", ["../../outside.txt", "/etc/hostname", "", "app/../../outside.txt"])
def test_a_build_json_pointing_outside_the_build_sends_nothing(builds, tmp_path, rel):
    # A build directory from elsewhere must not make `clawgen ota` send this computer's files.
    port, a, _ = builds
    copy = tmp_path / "copied-build"
    shutil.copytree(a, copy)
    (tmp_path / "outside.txt").write_text("a file of this computer\n")
    info = json.loads((copy / "build.json").read_text())
    info["device_files"]["/lib/extra.py"] = rel
    (copy / "build.json").write_text(json.dumps(info))
    from clawgen.diagnostics import InputError

    with pytest.raises(InputError, match="must be a path inside the build"):
        ota.bundle(copy)
    (tmp_path / "k").write_text(KEY + "\n")
    r = _cli(str(copy), "--host", f"{HOST}:{port}", "--key-file", str(tmp_path / "k"))
    assert r.returncode == 2 and "must be a path inside the build" in r.stderr, r.stderr


def _signed_malformed_manifests(good: dict[str, Any]) -> list[Any]:
    """Manifests whose HMAC is right (a key holder sent them: another clawgen version, a script of
    the user's) but whose shape is not the protocol's."""
    sha = "0" * 64
    base = {k: v for k, v in good.items() if k != "files"}
    out: list[Any] = [[], "x", 1, None, [good]]
    for files in ("abc", 5, {"a": 1}, [1], [None], [[]], [{"a": 1}], [[1, 2, 3]], [["/a", "1", sha]],
                  [["/a", 1.5, sha]], [["/a", 1, 5]], [["/a", 1, None]], [["/a", 1, sha, 4]], [["/a", None, sha]],
                  [["/a", 1, "é" * 64]], [["/a" * 200, 1, sha]]):
        out.append({**base, "files": files, "total": 1})
    for key, value in (("v", "1"), ("v", None), ("board", 5), ("board", ["esp32s3"]), ("board", "a\nOK installed"),
                       ("total", "0"), ("total", None), ("build", 5), ("build", None), ("build", ["x"]),
                       ("build", "0" * 65), ("build", ""), ("build", "xyz"), ("build", "ab\ncd")):
        out.append({**good, key: value})
    return out


def test_signed_manifests_of_the_wrong_shape_are_refused(builds, unix_device):
    # A key holder's manifest of another shape (a list, a number for a path, a list for the build
    # id...) raised TypeError or AttributeError out of the OTA server, which ended the agent.
    port, a, b = builds
    dev = device(unix_device, a)
    run = boot(dev, port)
    before = dev.files()
    good, body = _manifest(b)
    replies = []
    for m in _signed_malformed_manifests(good):
        replies.append(_raw_upload(port, m, KEY.encode(), body))
        assert replies[-1].startswith("ERR "), (m, replies[-1])
        assert len(replies[-1]) < 300
    assert "as flashed" in status(run)
    assert dev.files() == before
    assert len(set(replies)) > 20  # (each says what is wrong)
