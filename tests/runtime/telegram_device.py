"""A Telegram device for the tests on the MicroPython unix-port VM: the scripted Bot API
(clawgen/sim/botapi.py) over real TLS with a test CA, an agent built against it, and the booted
device. Shared by tests/runtime/test_telegram_unix.py and test_triggers_unix.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clawgen.sim.botapi import BotApiServer
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.tlscerts import Ca, make_ca, server_context

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # a made-up token of Telegram's shape
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab", "wifi_password": "pw-123456", "telegram_bot_token": TOKEN}
NVS = {"wifi_ssid": b"lab", "wifi_pw": b"pw-123456", "tg_token": TOKEN.encode()}
ME, FRIEND, STRANGER = 5150, -1001234567890, 4242


@pytest.fixture(scope="module")
def ca() -> Ca:
    return make_ca("clawgen telegram test CA")


@pytest.fixture
def botapi(tmp_path: Path, ca: Ca):
    made: list[BotApiServer] = []

    def make(tls: bool = True) -> BotApiServer:
        made.append(BotApiServer(TOKEN, tls=server_context(tmp_path / "pki", ca) if tls else None))
        return made[-1]

    yield make
    for s in made:
        s.close()


def agent(tmp: Path, model_url: str, bot: BotApiServer, ca: Ca, **overrides: Any) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "roots.pem").write_text(ca.pem)
    telegram = {"token": "!secret telegram_bot_token", "allow_chats": [ME, FRIEND], "api": bot.url,
                "poll_timeout_s": 1}
    spec = make_spec(model_url, network=WIFI, tls={"ca_certs": "roots.pem"},
                     transports={"uart": True, "telegram": telegram}, **overrides)
    return build(tmp, spec, secrets=SECRETS)


class Device:
    """A booted device (claw_main.main(), the event loop) with its console kept open: the test plays
    the Telegram users through the Bot API, then ends the console input, which ends the run."""

    def __init__(self, unix_device, out: Path, fast_backoff: bool = False) -> None:
        # fast_backoff: a second of the channel's back-off lasts a millisecond (the waits are still
        # logged in seconds), so a 60 s back-off after a 401 costs the test nothing.
        entry = ("import claw_telegram; claw_telegram.MS_PER_S = 1\n" if fast_backoff else "") + \
            "import claw_main; claw_main.main()"
        self.dev = unix_device(out, secrets=NVS)
        self.run = self.dev.start(entry=entry, open_stdin=True)

    def type(self, line: str) -> None:
        self.run.send(line + "\n")

    def end(self, timeout: float = 60):
        self.run.end_input()
        res = self.run.wait(timeout=timeout)
        assert res.returncode == 0, res.stdout + res.stderr
        out = res.stdout + res.stderr
        assert TOKEN not in out and TOKEN.split(":")[1] not in out  # never printed, never logged
        assert "Traceback" not in out
        return res
