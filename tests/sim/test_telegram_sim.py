"""`clawgen sim SPEC --telegram-api URL`: the example watchdog on the WebAssembly VM (its sockets
through the simulator's shims) against the scripted Bot API on 127.0.0.1, with the mock model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawgen.sim.botapi import BotApiServer
from clawgen.sim.cli import SIM_BOT_TOKEN

REPO = Path(__file__).resolve().parents[2]
WATCHDOG = REPO / "examples" / "agents" / "telegram-watchdog.yaml"
ME, STRANGER = 123456789, 99  # the example's allowed chat, and someone else


def _token() -> str:
    for line in (REPO / "examples" / "agents" / "secrets.yaml").read_text().splitlines():
        if line.startswith("telegram_bot_token:"):
            return line.split(":", 1)[1].strip().strip('"')
    raise AssertionError("no telegram_bot_token in examples/agents/secrets.yaml")


@pytest.mark.parametrize("send_key", [False, True])
def test_sim_runs_the_watchdog_against_a_local_bot_api(tmp_path: Path, mpvm: Path, send_key: bool) -> None:
    # The real token from secrets.yaml goes to the --telegram-api server only with --send-key;
    # otherwise the device uses the simulator's placeholder token.
    real = _token()
    token = real if send_key else SIM_BOT_TOKEN
    bot = BotApiServer(token)
    sim = subprocess.Popen([sys.executable, "-m", "clawgen", "sim", str(WATCHDOG), "--model", "mock",
                            "--telegram-api", bot.url, "--out", str(tmp_path / "out"),
                            *(["--send-key"] if send_key else [])], cwd=REPO, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        bot.say(ME, "hello over telegram")
        bot.say(STRANGER, "let me in")
        assert bot.wait_sent(2, timeout=90)
        bot.say(ME, "/status")
        sent = bot.wait_sent(3, timeout=30)
        out, err = sim.communicate("/quit\n", timeout=60)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
        bot.close()
    assert sim.returncode == 0, err
    assert bot.texts(STRANGER) == [f"This bot is private; your chat id {STRANGER} is not allowed to use it."]
    mine = bot.texts(ME)
    assert mine[0].startswith("(mock model) You said: hello over telegram.")
    assert mine[1].startswith("agent telegram-watchdog on esp32s3\n")
    assert len(sent) == 3
    assert f"and the Telegram Bot API at {bot.url}" in err
    assert "telegram: polling the Bot API at 127.0.0.1 for 1 allowed chat" in out
    assert real not in out + err  # the token is in the request path only
    assert all(c.path.startswith(f"/bot{token}/") for c in bot.calls)
    assert ("placeholder token" in err) is not send_key


def test_telegram_api_needs_a_telegram_agent(tmp_path: Path, mpvm: Path) -> None:
    spec = REPO / "examples" / "agents" / "local-chat.yaml"
    p = subprocess.run([sys.executable, "-m", "clawgen", "sim", str(spec), "--telegram-api", "http://127.0.0.1:9",
                        "--out", str(tmp_path / "out")], cwd=REPO, text=True, capture_output=True, input="",
                       timeout=120)
    assert p.returncode == 1
    assert "--telegram-api: this agent has no Telegram channel (transports.telegram in the spec)" in p.stderr
    p = subprocess.run([sys.executable, "-m", "clawgen", "sim", str(WATCHDOG), "--telegram-api", "ftp://x"],
                       cwd=REPO, text=True, capture_output=True, input="", timeout=120)
    assert p.returncode == 2
    assert "--telegram-api must be an http(s):// base URL such as http://127.0.0.1:8081, not 'ftp://x'" in p.stderr
    assert "Traceback" not in p.stderr


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_the_scripted_bot_api_behaves_like_telegram() -> None:
    import threading

    from clawgen.sim.botapi import Fault

    token = "42:" + "A" * 35
    with BotApiServer(token) as bot:
        api = f"{bot.url}/bot{token}"
        assert _call(f"{api}/getUpdates?timeout=0") == (200, {"ok": True, "result": []})
        threading.Timer(0.3, bot.say, (ME, "hi")).start()
        status, got = _call(f"{api}/getUpdates?timeout=10&limit=1")  # a long poll, ended by the message
        assert status == 200
        (update,) = got["result"]
        assert update["message"]["chat"]["id"] == ME and update["message"]["text"] == "hi"
        assert bot.pending == 1  # not confirmed yet ...
        assert _call(f"{api}/getUpdates?offset={update['update_id'] + 1}&timeout=0")[1]["result"] == []
        assert bot.pending == 0  # ... until an offset past it
        assert _call(f"{api}/sendMessage", {"chat_id": ME, "text": "x" * 4097}) == \
            (400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})
        assert _call(f"{api}/sendMessage", {"chat_id": ME, "text": "\U0001F600" * 2049})[0] == 400  # UTF-16 units
        assert _call(f"{api}/sendMessage", {"chat_id": ME, "text": "ok"})[1]["result"]["text"] == "ok"
        assert bot.texts(ME) == ["ok"]
        assert _call(f"{bot.url}/bot1:wrong/getUpdates")[0] == 401
        bot.fail("getUpdates", Fault.too_many(9))
        status, err = _call(f"{api}/getUpdates")
        assert (status, err["parameters"]) == (429, {"retry_after": 9})


def test_the_interactive_bot_api_for_clawgen_sim() -> None:
    """`python -m clawgen.sim.botapi`: lines typed are messages from a chat; what the bot sends is printed."""
    import re

    p = subprocess.Popen([sys.executable, "-m", "clawgen.sim.botapi", "--port", "0", "--chat", str(ME)], cwd=REPO,
                         text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stderr is not None and p.stdin is not None and p.stdout is not None
        banner = p.stderr.readline()
        url = re.search(r"a Bot API on (http://127\.0\.0\.1:\d+)", banner).group(1)  # type: ignore[union-attr]
        p.stdin.write("hello bot\n-1001: in the group\n")
        p.stdin.flush()
        api = f"{url}/bot42:{'B' * 35}"  # any token is accepted
        first = _call(f"{api}/getUpdates?timeout=5")[1]["result"]
        got = [(u["message"]["chat"]["id"], u["message"]["text"]) for u in first]
        while len(got) < 2:
            more = _call(f"{api}/getUpdates?timeout=5&offset={first[-1]['update_id'] + 1}")[1]["result"]
            got += [(u["message"]["chat"]["id"], u["message"]["text"]) for u in more]
        assert got == [(ME, "hello bot"), (-1001, "in the group")]
        assert _call(f"{api}/sendMessage", {"chat_id": ME, "text": "line one\nline two"})[0] == 200
        assert p.stdout.readline() == f"bot -> {ME}: line one\n"
        assert p.stdout.readline() == f"bot -> {ME}: line two\n"
        p.stdin.close()
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
