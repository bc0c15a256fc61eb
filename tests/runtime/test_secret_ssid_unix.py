"""A Wi-Fi SSID given as !secret is never printed on the console (issue 9, item 5); a plain one is,
so a user can see which network the board tries. On the MicroPython unix-port VM."""

from __future__ import annotations

from pathlib import Path

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

NVS = {"wifi_ssid": b"greenhouse-5G", "wifi_pw": b"pw-123456"}


def test_secret_ssid_is_not_printed(tmp_path: Path, llm_server, unix_run):
    wifi = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password", "connect_retries": 2}
    out = build(tmp_path, make_spec(llm_server.base_url, network=wifi),
                secrets={"wifi_ssid": "greenhouse-5G", "wifi_password": "pw-123456"})
    llm_server.push(Reply.text("up"))
    res = unix_run(out, stdin=["hi", "/quit"], secrets=NVS, network={"connect": "wrong_password"})
    assert res.returncode == 0, res.stderr
    assert "wifi: connecting to the network from secrets.yaml (attempt 1/2)" in res.stdout
    assert "wifi: connecting to the network from secrets.yaml (attempt 2/2)" in res.stdout
    assert "greenhouse-5G" not in res.stdout + res.stderr
    assert "greenhouse-5G" not in (out / "app" / "claw_config.py").read_text()


def test_plain_ssid_is_printed(tmp_path: Path, llm_server, unix_run):
    wifi = {"ssid": "greenhouse-5G", "password": "!secret wifi_password"}
    out = build(tmp_path, make_spec(llm_server.base_url, network=wifi), secrets={"wifi_password": "pw-123456"})
    llm_server.push(Reply.text("up"))
    res = unix_run(out, stdin=["hi", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    assert "wifi: connecting to greenhouse-5G (attempt 1/" in res.stdout
    assert "wifi: connected, address 127.0.0.1" in res.stdout
    assert "pw-123456" not in res.stdout + res.stderr
