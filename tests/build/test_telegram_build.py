"""The Telegram channel in the build: the watchdog example builds for every board within its .mpy
budget, the token lives in NVS only, and an agent without Telegram ships none of its code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.build import BuildOptions, build_spec, load_and_plan
from clawgen.plan import TELEGRAM_CA_LABELS
from tests.conftest import EXAMPLES

WATCHDOG = EXAMPLES / "telegram-watchdog.yaml"


def _token() -> str:
    for line in (EXAMPLES / "secrets.yaml").read_text().splitlines():
        if line.startswith("telegram_bot_token:"):
            return line.split(":", 1)[1].strip().strip('"')
    raise AssertionError("no telegram_bot_token in examples/agents/secrets.yaml")


@pytest.mark.parametrize("board", ["esp32s3", "esp32", "esp32c3", "esp32c6"])
def test_the_watchdog_builds_for_every_board_within_its_budget(board: str, tmp_path: Path) -> None:
    res = build_spec(WATCHDOG, BuildOptions(board=board, out_dir=tmp_path / "out", images=False, force=True))
    info = json.loads((res.out_dir / "build.json").read_text())
    assert info["bundle"]["mpy_bytes"] <= info["bundle"]["budget_bytes"]
    assert (res.out_dir / "mpy" / "claw_telegram.mpy").is_file()
    # The token goes to NVS (its slot listed by name), never into a generated file.
    assert {"nvs_key": "tg_token", "spec_path": "transports.telegram.token"}.items() <= \
        next(s for s in info["secrets"] if s["nvs_key"] == "tg_token").items()
    token = _token().encode()
    assert not any(token in p.read_bytes() for p in res.out_dir.rglob("*") if p.is_file())
    assert load_and_plan(WATCHDOG, BuildOptions(board=board)).nvs_values["tg_token"] == token
    config = (res.out_dir / "app" / "claw_config.py").read_text()
    assert "TG_ALLOW = (123456789,)" in config and "TG_HOST = 'api.telegram.org'" in config


def test_telegram_s_root_is_added_to_the_default_cas_only_when_used() -> None:
    with_tg = load_and_plan(WATCHDOG, BuildOptions()).plan
    without = load_and_plan(EXAMPLES / "register-assistant.yaml", BuildOptions()).plan
    for label in TELEGRAM_CA_LABELS:
        assert f"# {label}\n" in with_tg.tls.ca_certs
        assert f"# {label}\n" not in without.tls.ca_certs


def test_an_agent_without_telegram_ships_none_of_it(tmp_path: Path) -> None:
    res = build_spec(EXAMPLES / "local-chat.yaml", BuildOptions(out_dir=tmp_path / "out", images=False, force=True))
    assert not (res.out_dir / "mpy" / "claw_telegram.mpy").exists()
    assert "TG_" not in (res.out_dir / "app" / "claw_config.py").read_text()
    assert "claw_telegram" not in (res.out_dir / "app" / "claw_main.py").read_text()
