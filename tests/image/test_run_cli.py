"""`clawgen run SPEC` (build, flash, show the device's output) and `clawgen logs SPEC` (its console).

Flashing goes through the real esptool to the emulated ESP32-S3 ROM bootloader
(tests/fakes/esp_rom.py, a `socket://127.0.0.1:PORT` port); the monitor phase then reads from that
same emulated serial port. `logs` over Telnet attaches to the real device runtime on the MicroPython
unix-port VM, listening on a free host port.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from clawgen.cli import cli
from clawgen.image import nvs
from tests.fakes.esp_rom import MB, SYNC_PAYLOAD, EspRomEmulator, slip_encode
from tests.image import synth
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient, free_port

SPEC = """\
name: run-agent
board: esp32s3
system_prompt: Answer in one sentence.
model:
  base_url: http://192.168.1.10:8080/v1
  model: small-model
network:
  ssid: HomeNet
  password: !secret wifi_password
  hostname: claw-run
transports:
  uart: true
{extra}"""
NVS_OFFSET = 0x9000


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (the current directory) with a spec and its secrets; the base firmware
    is in the cache, imported the way the flash step's message says."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "agent.yaml").write_text(SPEC.format(extra=""))
    (tmp_path / "secrets.yaml").write_text("wifi_password: correct-horse\n")
    (tmp_path / "dl.bin").write_bytes(synth.stock_firmware("esp32s3"))
    r = CliRunner().invoke(cli, ["firmware", "fetch", "--board", "esp32s3", "--file", str(tmp_path / "dl.bin")])
    assert r.exit_code == 0, r.output
    return tmp_path


def _run(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def _errors(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if "error:" in ln]


def test_run_builds_flashes_and_monitors_the_port(project: Path) -> None:
    # What the monitor phase types: a SYNC request in the ROM's own framing. The emulated board
    # answers it, so the answer shown proves the monitor talks to the very port just flashed.
    sync = slip_encode(struct.pack("<BBHI", 0x00, 0x08, len(SYNC_PAYLOAD), 0) + SYNC_PAYLOAD)
    with EspRomEmulator(flash_size=8 * MB) as rom:
        url = rom.url
        r = _run("run", "agent.yaml", "--port", url, input=sync)
    assert r.exit_code == 0, r.output
    out = project / "generated" / "run-agent" / "esp32s3"
    firmware = (out / "image" / "firmware.bin").read_bytes()
    assert bytes(rom.flash[:len(firmware)]) == firmware
    assert rom.md5_requests == [(0, len(firmware))]
    assert "built run-agent for esp32s3 in generated/run-agent/esp32s3" in r.output
    assert "verified" in r.output
    assert f"--- clawgen monitor on {url} at 115200 baud" in r.stderr
    assert b"\xc0\x01\x08" in r.stdout_bytes  # the board's answer to what was typed
    assert rom.commands.count("SYNC") >= 2  # esptool's, then the one typed in the monitor
    assert "correct-horse" not in r.output


def test_run_a_fleet_device_without_monitor(project: Path) -> None:
    (project / "devices.yaml").write_text("devices:\n  - name: kitchen\n    secrets:\n"
                                          "      wifi_password: kitchen-pass\n  - name: garage\n"
                                          "    secrets:\n      wifi_password: garage-pass\n")
    with EspRomEmulator(flash_size=8 * MB) as rom:
        r = _run("run", "agent.yaml", "--devices", "devices.yaml", "--device", "garage", "--port", rom.url,
                 "--no-monitor")
    assert r.exit_code == 0, r.output
    assert "monitor" not in r.output
    dev_nvs = (project / "generated" / "run-agent" / "esp32s3" / "devices" / "garage" / "nvs.bin").read_bytes()
    assert bytes(rom.flash[NVS_OFFSET:NVS_OFFSET + len(dev_nvs)]) == dev_nvs
    assert b"garage-pass" in nvs.decode_nvs_image(dev_nvs).values()


def test_run_without_base_firmware_says_what_to_do(project: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "empty-cache"))
    with EspRomEmulator(flash_size=8 * MB) as rom:
        r = _run("run", "agent.yaml", "--port", rom.url, "--no-monitor")
        assert rom.commands == []
    assert r.exit_code == 2
    (line,) = _errors(r.output)
    assert "`clawgen firmware fetch --board esp32s3 --file <the downloaded .bin>`" in line
    assert "https://micropython.org/download/ESP32_GENERIC_S3/" in line and "then build again" in line


def test_run_app_only_needs_no_base_firmware(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the no-base-firmware message offers for a board already running MicroPython: --app-only."""
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "empty-cache"))
    with EspRomEmulator(flash_size=8 * MB) as rom:
        r = _run("run", "agent.yaml", "--port", rom.url, "--app-only", "--no-monitor")
    assert r.exit_code == 0, r.output
    image = project / "generated" / "run-agent" / "esp32s3" / "image"
    assert not (image / "firmware.bin").exists()
    fs_bin, nvs_bin = (image / "fs.bin").read_bytes(), (image / "nvs.bin").read_bytes()
    assert bytes(rom.flash[0x200000:0x200000 + len(fs_bin)]) == fs_bin
    assert bytes(rom.flash[NVS_OFFSET:NVS_OFFSET + len(nvs_bin)]) == nvs_bin
    assert sorted(rom.md5_requests) == sorted([(0x200000, len(fs_bin)), (NVS_OFFSET, len(nvs_bin))])
    assert "(filesystem and NVS, esp32s3" in r.output and "correct-horse" not in r.output
    r = _run("run", "agent.yaml", "--host", "127.0.0.1", "--app-only")
    assert r.exit_code == 1 and "--app-only is for flashing over serial" in r.output


def test_run_stops_on_a_build_error_with_its_diagnostics(project: Path) -> None:
    (project / "agent.yaml").write_text(SPEC.format(extra="  telnet: {prot: 23}\n"))
    with EspRomEmulator(flash_size=8 * MB) as rom:
        r = _run("run", "agent.yaml", "--port", rom.url)
        assert rom.commands == []
    assert r.exit_code == 2
    (line,) = _errors(r.output)
    assert line.startswith("agent.yaml:13:12:") and "prot" in line


def test_run_without_a_board_connected_builds_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("clawgen.image.ports._list_comports", lambda: [])
    r = _run("run", "agent.yaml")
    assert r.exit_code == 1
    assert _errors(r.output) == [r.output.strip()]
    assert "no serial port found" in r.output and "--port" in r.output
    assert not (project / "generated").exists()


def test_run_over_the_network_needs_ota_in_the_spec(project: Path) -> None:
    r = _run("run", "agent.yaml", "--host", "127.0.0.1")
    assert r.exit_code == 1
    assert _errors(r.output) == [
        "clawgen: error: agent.yaml has no ota: section, so the device takes no update over the network: add "
        "`ota: {key: !secret ota_key}`, put it on the board once over USB (`clawgen run agent.yaml --port PORT`), "
        "then use --host"]
    assert not (project / "generated").exists()  # said before building
    r = _run("run", "agent.yaml", "--host", "127.0.0.1", "--port", "/dev/ttyUSB0")
    assert r.exit_code == 1 and "--port and --host exclude each other" in r.output


def _two_ports() -> tuple[int, int]:
    a = free_port()
    while (b := free_port()) == a:
        pass
    return a, b


TELNET_PASSWORD = "open sesame 1234"


def _ota_spec(ota_port: int, telnet_port: int, prompt: str, password: bool = False) -> dict:
    from tests.runtime.test_ota_unix import WIFI

    telnet = {"port": telnet_port, **({"password": "!secret telnet_password"} if password else {})}
    return make_spec("http://192.0.2.1:9", system_prompt=prompt, network=WIFI,
                     transports={"uart": True, "telnet": telnet},
                     ota={"port": ota_port, "key": "!secret ota_key", "confirm_timeout": 60})


@pytest.mark.parametrize("password", [False, True], ids=["open", "password"])
def test_run_over_the_network_updates_the_device_and_shows_its_console(
        tmp_path: Path, unix_device, monkeypatch: pytest.MonkeyPatch, password: bool) -> None:
    """`clawgen run SPEC --host` on the unix-port VM: the device runs build A; run builds B, pushes it
    (clawgen.ota.push, with the simulator's hardware shims left on the device), the device restarts
    into it, and run shows the new build's Telnet console. With transports.telnet.password, run
    answers the device's password prompt (before the update and after) from secrets.yaml."""
    import functools
    import json
    import threading
    import time

    from clawgen import ota
    from tests.runtime import test_ota_unix
    from tests.runtime.test_ota_unix import ENTRY, SIM_EXCLUDE, boot, device

    secrets = {**test_ota_unix.SECRETS, **({"telnet_password": TELNET_PASSWORD} if password else {})}
    if password:
        monkeypatch.setattr(test_ota_unix, "NVS", {**test_ota_unix.NVS, "telnet_pw": TELNET_PASSWORD.encode()})
    ota_port, telnet_port = _two_ports()
    a = build(tmp_path / "a", _ota_spec(ota_port, telnet_port, "You are version A.", password), secrets=secrets)
    build(tmp_path / "b", _ota_spec(ota_port, telnet_port, "You are version B.", password), secrets=secrets)
    monkeypatch.chdir(tmp_path / "b")
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ota, "push", functools.partial(ota.push, exclude=SIM_EXCLUDE))
    dev = device(unix_device, a)
    first = boot(dev, ota_port)
    restarted: list = []

    def power_cycle() -> None:  # the board restarts by itself after the update; the VM needs a new run
        restarted.append(first.wait(60))
        time.sleep(1.0)  # a board is unreachable for a while (boot, joining Wi-Fi): so is the VM here
        restarted.append(dev.start(open_stdin=True, entry=ENTRY))

    t = threading.Thread(target=power_cycle, daemon=True)
    t.start()
    try:
        r = _run("run", "agent.yaml", "--host", "127.0.0.1", input="/status\n/quit\n")
    finally:
        t.join(90)
        if len(restarted) == 2:
            restarted[1].end_input()
            second = restarted[1].wait(30)
    assert r.exit_code == 0, r.output
    assert restarted[0].reason == "reset", restarted[0].stdout
    # run held one console connection to the old bundle from before the update until its restart,
    # instead of connecting again and again to find out when it was gone.
    log = restarted[0].stdout + restarted[0].stderr
    assert log.count("telnet client connected") == 1, log
    assert log.count("telnet: password accepted") == (1 if password else 0), log
    assert "[error] task" not in log and "closed a connection that sent no password" not in log
    build_id = json.loads((tmp_path / "b" / "generated" / "rt-agent" / "esp32s3" / "build.json").read_text())["build_id"]
    assert f"Updating 127.0.0.1:{ota_port} over the network (OTA)" in r.stdout
    assert f"installed build {build_id[:12]} on 127.0.0.1" in r.stdout
    assert f"--- clawgen console on 127.0.0.1:{telnet_port} (Telnet)" in r.stderr
    assert f"build {build_id}" in r.stdout, (r.stdout[-1500:], r.stderr)  # /status on the restarted device
    assert "the device closed the connection" in r.stderr
    assert f"ota: build {build_id[:12]} confirmed" in second.stdout
    log2 = second.stdout + second.stderr
    assert log2.count("telnet: password accepted") == (1 if password else 0), log2
    assert secrets["ota_key"] not in r.output and TELNET_PASSWORD not in r.output + log + log2


def test_run_over_the_network_to_nobody(project: Path, tmp_path: Path) -> None:
    port = free_port()
    (project / "agent.yaml").write_text(SPEC.format(extra=f"ota:\n  port: {port}\n  key: !secret ota_key\n"))
    (project / "secrets.yaml").write_text("wifi_password: correct-horse\nota_key: k3y-for-the-ota-tests-0123456789\n")
    r = _run("run", "agent.yaml", "--host", "127.0.0.1", "--no-monitor")
    assert r.exit_code == 1
    assert _errors(r.output)[-1].startswith(f"clawgen: error: cannot reach 127.0.0.1:{port}")
    assert "k3y-for" not in r.output


def test_run_a_fleet_needs_the_device(project: Path) -> None:
    r = _run("run", "agent.yaml", "--devices", "devices.yaml", "--port", "socket://127.0.0.1:9")
    assert r.exit_code == 1 and "say which device to update with --device NAME" in r.output
    r = _run("run", "agent.yaml", "--device", "kitchen", "--port", "socket://127.0.0.1:9")
    assert r.exit_code == 1 and "give the devices file with --devices" in r.output
    assert not (project / "generated").exists()


# -- logs ------------------------------------------------------------------------------------------

def test_logs_over_telnet_on_the_device_runtime(tmp_path: Path, llm_server, unix_device) -> None:
    port = free_port()
    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": port}},
                     network={"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"})
    out = build(tmp_path, spec, secrets={"wifi_ssid": "lab-net", "wifi_password": "hunter22"})
    dev = unix_device(out, secrets={"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"})
    with dev.start(open_stdin=True) as run:
        TelnetClient("127.0.0.1", port, wait=20, alive=lambda: run.proc.poll() is None).close()  # listening
        r = _run("logs", str(tmp_path / "agent.yaml"), "--host", "127.0.0.1", input="/status\n/quit\n")
        run.end_input()
        res = run.wait(20)
    assert r.exit_code == 0, r.output
    assert f"--- clawgen console on 127.0.0.1:{port} (Telnet)" in r.stderr
    assert "agent rt-agent on esp32s3" in r.stdout and "bye" in r.stdout
    assert "the device closed the connection" in r.stderr
    assert "hunter22" not in r.output
    assert res.returncode == 0, res.stderr


def test_logs_host_refusing_the_connection(project: Path) -> None:
    port = free_port()
    (project / "agent.yaml").write_text(SPEC.format(extra=f"  telnet: {{port: {port}}}\n"))
    r = _run("logs", "agent.yaml", "--host", "127.0.0.1")
    assert r.exit_code == 1
    assert _errors(r.output) == [f"clawgen: error: 127.0.0.1:{port} refused the connection: the device is up but "
                                 f"does not serve a Telnet console on port {port} (is this the right device and "
                                 "port, and was it flashed with this spec?)"]


def test_logs_default_host_is_the_spec_hostname(project: Path) -> None:
    from clawgen.run_cli import _planned, telnet_target

    (project / "agent.yaml").write_text(SPEC.format(extra="  telnet: {port: 2323}\n"))
    planned = _planned(project / "agent.yaml", None, {})
    plan, values = planned.plan, planned.nvs_values
    assert telnet_target(Path("agent.yaml"), plan, None, values).host == "claw-run.local"
    assert telnet_target(Path("agent.yaml"), plan, None, values).telnet_port == 2323
    assert telnet_target(Path("agent.yaml"), plan, None, values).password is None
    assert telnet_target(Path("agent.yaml"), plan, "10.0.0.7:24", values).telnet_port == 24
    assert telnet_target(Path("agent.yaml"), plan, "[fe80::1]", values).host == "fe80::1"
    r = _run("logs", "agent.yaml", "--host", "10.0.0.7:http")
    assert r.exit_code == 2 and "the port must be a number from 1 to 65535" in r.output
    # A label over 63 characters, bytes that are not UTF-8: the resolver's IDNA codec raised
    # UnicodeError, an "internal error"; now invalid input before any connection.
    for host in ("x" * 64 + ".local", "\udcff"):
        r = _run("logs", "agent.yaml", "--host", host)
        assert r.exit_code == 2 and "not a host name" in r.output and "internal error" not in r.output


def test_logs_over_the_network_needs_telnet_in_the_spec(project: Path) -> None:
    r = _run("logs", "agent.yaml", "--host", "127.0.0.1")
    assert r.exit_code == 1
    (line,) = _errors(r.output)
    assert "agent.yaml has no Telnet console (transports.telnet is not enabled)" in line
    assert "--port" in line


def test_logs_serial_console(project: Path) -> None:
    """Without Telnet in the spec, logs is the serial console (pyserial's loop:// echoes what is typed)."""
    r = _run("logs", "agent.yaml", "--port", "loop://", input="help()\r\n")
    assert r.exit_code == 0, r.output
    assert "help()" in r.stdout and "--- clawgen monitor on loop://" in r.stderr


def test_logs_of_a_bad_spec_is_its_diagnostic(project: Path) -> None:
    (project / "agent.yaml").write_text(SPEC.format(extra="  telnet: {prot: 23}\n"))
    r = _run("logs", "agent.yaml", "--host", "127.0.0.1")
    assert r.exit_code == 2
    assert _errors(r.output)[0].startswith("agent.yaml:13:12:")


def test_monitor_after_flashing_waits_for_the_port_to_come_back() -> None:
    """A board on its own USB port re-enumerates at the reset that ends flashing: the monitor phase
    keeps trying to open the port for a while (here a socket:// port that starts listening late)."""
    import io
    import socket
    import threading
    import time

    from clawgen.diagnostics import UsageError
    from clawgen.image.monitor import monitor

    port = free_port()
    with pytest.raises(UsageError, match="connection refused"):
        monitor(f"socket://127.0.0.1:{port}", 115200, stdin=io.BytesIO(b""), stdout=io.BytesIO(),
                note=lambda s: None)

    connected = threading.Event()

    def board() -> None:
        time.sleep(0.5)  # the port is gone for a moment
        with socket.create_server(("127.0.0.1", port)) as srv:
            conn, _ = srv.accept()
            connected.set()
            with conn:
                # The board speaks once the monitor has typed: whatever reaches the port while it is
                # being opened is dropped by pyserial's open() (reset_input_buffer), on a real port too.
                if conn.recv(16):
                    conn.sendall(b"MicroPython v1.29.0 on 2026-11-01; booted\r\n")
                while conn.recv(16):  # until the monitor leaves
                    pass

    class OneKey(io.RawIOBase):
        """The user's input: one key once the port is open, then the end (the monitor listens on for
        PIPE_LINGER_SECONDS after the end of piped input, long enough for the board's answer)."""

        def __init__(self) -> None:
            self.given = False

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.given:
                return b""
            connected.wait(20)
            self.given = True
            return b"x"

    t = threading.Thread(target=board, daemon=True)
    t.start()
    out = io.BytesIO()
    reason = monitor(f"socket://127.0.0.1:{port}", 115200, stdin=OneKey(), stdout=out,
                     note=lambda s: None, wait=20)
    t.join(10)
    assert reason == "end-of-input"
    assert b"booted" in out.getvalue()


def test_run_a_fleet_device_over_the_network_uses_its_own_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key `run --host --device NAME` signs with is the one in that device's NVS image."""
    from clawgen import ota

    port = free_port()
    (project / "agent.yaml").write_text(SPEC.format(extra=f"ota:\n  port: {port}\n  key: !secret ota_key\n"))
    (project / "secrets.yaml").unlink()  # a fleet's values come from its devices file
    keys = {"kitchen": "kitchen-ota-key-" + "k" * 20, "garage": "garage-ota-key-" + "g" * 20}
    (project / "devices.yaml").write_text("devices:\n" + "".join(
        f"  - name: {d}\n    secrets:\n      wifi_password: {d}-pass\n      ota_key: {k}\n" for d, k in keys.items()))
    used: list[tuple[str, int, bytes]] = []

    def refuse(build_dir: Path, host: str, port: int, key: bytes, progress: object = None) -> ota.OtaResult:
        used.append((host, port, key))  # what the real push would sign with; the device refuses
        raise ota.OtaError("the device refused the update: bad signature", refused=True)

    monkeypatch.setattr(ota, "push", refuse)
    r = _run("run", "agent.yaml", "--devices", "devices.yaml", "--device", "garage", "--host", "claw-garage.local",
             "--no-monitor")
    assert r.exit_code == 1
    assert _errors(r.output)[-1] == "clawgen: error: the device refused the update: bad signature"
    assert used == [("claw-garage.local", port, keys["garage"].encode())]
    assert not any(k in r.output for k in keys.values())


def test_logs_of_a_fleet_device_uses_its_hostname(project: Path) -> None:
    from clawgen.run_cli import _planned, fleet_device

    (project / "agent.yaml").write_text(SPEC.format(extra="  telnet: {port: 2323}\n"))
    (project / "devices.yaml").write_text("devices:\n  - name: kitchen\n    hostname: claw-kitchen\n    secrets:\n"
                                          "      wifi_password: kitchen-pass\n  - name: garage\n    secrets:\n"
                                          "      wifi_password: garage-pass\n")
    planned = _planned(project / "agent.yaml", None, {}, project / "devices.yaml")
    assert fleet_device(project / "devices.yaml", "kitchen", planned).hostname == "claw-kitchen"
    assert fleet_device(project / "devices.yaml", "garage", planned).hostname == "garage"
    r = _run("logs", "agent.yaml", "--devices", "devices.yaml", "--device", "kitchn")
    assert r.exit_code == 1
    assert _errors(r.output) == ["clawgen: error: no device 'kitchn' in devices.yaml (did you mean \"kitchen\"?); "
                                 "its devices: kitchen, garage"]
    r = _run("logs", "agent.yaml", "--device", "kitchen")
    assert r.exit_code == 1 and "both --devices FILE and --device NAME" in r.output


def test_the_console_password_is_the_fleet_device_own(project: Path) -> None:
    """A fleet device's Telnet password comes from its own secrets in the devices file; the build's
    from secrets.yaml; the target never shows it."""
    from clawgen.run_cli import _planned, fleet_device, telnet_target

    (project / "agent.yaml").write_text(SPEC.format(extra="  telnet: {port: 2323, password: !secret telnet_password}\n"))
    (project / "secrets.yaml").write_text("wifi_password: correct-horse\ntelnet_password: shared-pass-1\n")
    (project / "devices.yaml").write_text("secrets:\n  wifi_password: fleet-wifi-1\n  telnet_password: fleet-pass-1\n"
                                          "devices:\n  - name: kitchen\n    secrets:\n"
                                          "      telnet_password: kitchen-pass-1\n  - name: garage\n")
    planned = _planned(project / "agent.yaml", None, {}, project / "devices.yaml")
    kitchen = fleet_device(project / "devices.yaml", "kitchen", planned)
    target = telnet_target(Path("agent.yaml"), planned.plan, None, kitchen.values)
    assert target.password == b"kitchen-pass-1" and "kitchen-pass-1" not in repr(target)
    garage = fleet_device(project / "devices.yaml", "garage", planned)
    assert telnet_target(Path("agent.yaml"), planned.plan, None, garage.values).password == b"fleet-pass-1"
    plain = _planned(project / "agent.yaml", None, {})
    assert telnet_target(Path("agent.yaml"), plain.plan, None, plain.nvs_values).password == b"shared-pass-1"
