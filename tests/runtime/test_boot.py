"""Boot on the MicroPython unix-port VM (only Wi-Fi/NVS/NTP shimmed): Wi-Fi status lines and retries, secrets from NVS, the ready banner."""

from __future__ import annotations

from pathlib import Path

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password", "connect_retries": 2}
SECRETS = {"wifi_ssid": "greenhouse", "wifi_password": "pw-123456"}
NVS = {"wifi_ssid": b"greenhouse", "wifi_pw": b"pw-123456"}


def test_boot_connects_and_prints_ready(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, network=WIFI), secrets=SECRETS)
    llm_server.push(Reply.text("up"))
    res = unix_run(out, stdin=["hi", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "clawgen agent rt-agent (esp32s3) starting"
    # The SSID is a !secret: never printed.
    assert "wifi: connecting to the network from secrets.yaml (attempt 1/2)" in lines
    assert "wifi: connected, address 127.0.0.1" in lines
    assert any(ln.startswith("ready: model test-model, 7 tools, ") for ln in lines)
    assert "up" in res.stdout
    assert "pw-123456" not in res.stdout + res.stderr and "greenhouse" not in res.stdout + res.stderr


def test_wifi_failure_is_reported_and_retried(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, network=WIFI), secrets=SECRETS)
    res = unix_run(out, stdin=["/status", "/quit"], secrets=NVS, network={"connect": "wrong_password"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("wifi: not connected (status 202: wrong password)") == 2
    assert "wifi: connecting to the network from secrets.yaml (attempt 2/2)" in res.stdout
    assert "wifi: giving up after 2 attempts; check network.ssid / network.password" in res.stdout
    assert "agent rt-agent on esp32s3" in res.stdout  # the console still works


def test_missing_secrets_are_reported(tmp_path: Path, llm_server, unix_run):
    spec = make_spec("https://api.example.com/v1", network=WIFI)
    spec["model"]["api_key"] = "!secret key"
    out = build(tmp_path, spec, secrets={**SECRETS, "key": "sk-x"})
    res = unix_run(out, stdin=["/quit"], secrets={})
    assert res.returncode == 0, res.stderr
    assert "wifi: the SSID is missing from NVS (key wifi_ssid)" in res.stdout
    assert "warning: no API key for model test-model in NVS (key m0_key)" in res.stdout


def test_lost_wifi_is_reconnected_before_a_turn(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, network=WIFI), secrets=SECRETS)
    llm_server.push(Reply.text("back online"))
    # Drop the link after boot (the shim's WLAN, the hardware edge), then run one turn.
    prog = (
        "import claw_boot, claw_main\n"
        "orig = claw_boot.wifi\n"
        "def wifi(say):\n"
        "    ok = orig(say)\n"
        "    if claw_boot._wlan is not None and not getattr(claw_boot, 'dropped', False):\n"
        "        claw_boot.dropped = True\n"
        "        claw_boot._wlan.disconnect()\n"
        "    return ok\n"
        "claw_boot.wifi = wifi\n"
        "claw_main.main()\n"
    )
    res = unix_run(out, stdin=["hello", "/quit"], secrets=NVS, modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stderr
    assert "wifi: connection lost; reconnecting" in res.stdout
    assert res.stdout.count("wifi: connected, address 127.0.0.1") == 2
    assert "back online" in res.stdout


def test_clock_is_set_when_tls_is_used(tmp_path: Path, llm_server, unix_run):
    # An https endpoint needs the date for certificate checks: boot sets the clock over NTP.
    https = build(tmp_path / "tls", make_spec("https://api.example.com/v1", network=WIFI), secrets=SECRETS)
    res = unix_run(https, stdin=["/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines.index("wifi: connected, address 127.0.0.1") < lines.index("clock: set over NTP")
    # NTP failing is reported and does not stop the boot.
    failing = "def settime():\n    raise OSError(110)\n"
    res = unix_run(https, stdin=["/status", "/quit"], secrets=NVS, modules={"ntptime": failing})
    assert res.returncode == 0, res.stderr
    assert "clock: NTP failed ([Errno 110] ETIMEDOUT); TLS certificate checks may fail" in res.stdout
    assert "agent rt-agent on esp32s3" in res.stdout
    # Plain http only: no NTP.
    plain = build(tmp_path / "plain", make_spec(llm_server.base_url, network=WIFI), secrets=SECRETS)
    res = unix_run(plain, stdin=["/quit"], secrets=NVS)
    assert "clock:" not in res.stdout
