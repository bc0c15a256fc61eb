"""The model error classifier and per-endpoint cooldown (claw_agent) on the MicroPython unix-port VM,
against scripted servers, with a controllable clock: claw_agent reads time through `_now()` and
waits through `_sleep_ms()`, which the entry program below replaces. A user line `wait N` moves
that clock N seconds on (and is not sent to any model)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawgen.sim.llmserver import LLMServer, Reply
from tests.runtime.agent_builds import build, make_spec

CLOCK = """\
import sys
import claw_agent
import claw_main

T = [5000]


def now():
    return T[0]


def sleep_ms(ms):  # a generator, like the runtime's (yield from _sleep_ms(ms))
    sys.stderr.write("[clock] slept %d ms\\n" % ms)
    T[0] += ms
    return
    yield


claw_agent._now = now
claw_agent._sleep_ms = sleep_ms
_turn = claw_agent.Agent.turn


def turn(self, session, text, io):  # a generator, like Agent.turn
    if text.startswith("wait "):
        T[0] += int(text[5:]) * 1000
        return "waited"
    return (yield from _turn(self, session, text, io))


claw_agent.Agent.turn = turn
claw_main.main()
"""


def answers(stdout: str) -> list[str]:
    return [chunk.strip() for chunk in re.split(r"(?:^|\n)> ", stdout)[1:]]


@pytest.fixture
def servers() -> Iterator[tuple[LLMServer, LLMServer]]:
    with LLMServer() as primary, LLMServer() as backup:
        yield primary, backup


def _build(tmp_path: Path, primary: LLMServer, backup: LLMServer | None = None, **model: Any) -> Path:
    spec = make_spec(primary.base_url)
    spec["model"].update(model)
    if backup is not None:
        spec["model"]["fallbacks"] = [{"base_url": backup.base_url, "model": "backup-model", "api": "openai"}]
    return build(tmp_path, spec)


def _run(unix_run, out: Path, *lines: str) -> Any:
    res = unix_run(out, stdin=[*lines, "/quit"], modules={"clockprog": CLOCK}, entry="import clockprog")
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.parametrize("status", [401, 403])
def test_auth_is_not_retried_anywhere(tmp_path: Path, servers, unix_run, status: int) -> None:
    primary, backup = servers
    out = _build(tmp_path, primary, backup)
    primary.push(Reply.error(status, "invalid api key"))
    res = _run(unix_run, out, "hi")
    assert answers(res.stdout)[0] == (f"[error] HTTP {status} from 127.0.0.1 (test-model): invalid api key "
                                      "-- check the API key")
    assert len(primary.requests) == 1 and backup.requests == []  # neither retried nor a fallback
    assert "[clock] slept" not in res.stderr


def test_rate_limit_cools_the_endpoint_down_for_retry_after(tmp_path: Path, servers, unix_run) -> None:
    primary, backup = servers
    out = _build(tmp_path, primary, backup)
    primary.push(Reply.rate_limited(retry_after=20), Reply.text("primary again"))
    backup.push(Reply.text("backup 1"), Reply.text("backup 2"))
    res = _run(unix_run, out, "one", "wait 5", "two", "wait 15", "three")
    assert answers(res.stdout)[:5] == ["backup 1", "waited", "backup 2", "waited", "primary again"]
    assert "test-model (127.0.0.1) cools down for 20 s (rate_limit)" in res.stderr
    # Turn two, 5 s in: the primary is skipped (15 s left); turn three, 20 s in: it is back.
    assert "skipping test-model (127.0.0.1): cooling down after rate_limit, 15 s more" in res.stderr
    assert [r.messages[-1]["content"] for r in primary.requests] == ["one", "three"]
    assert [r.messages[-1]["content"] for r in backup.requests] == ["one", "two"]


def test_rate_limit_default_and_capped_cooldown(tmp_path: Path, servers, unix_run) -> None:
    primary, backup = servers
    out = _build(tmp_path, primary, backup)
    primary.push(Reply.error(429, "slow down"), Reply.rate_limited(retry_after=100000))
    backup.push(Reply.text("b1"), Reply.text("b2"), Reply.text("b3"))
    res = _run(unix_run, out, "one", "wait 30", "two", "wait 299", "three")
    assert answers(res.stdout)[:5] == ["b1", "waited", "b2", "waited", "b3"]
    assert "cools down for 30 s (rate_limit)" in res.stderr  # no Retry-After: the default
    assert "cools down for 300 s (rate_limit)" in res.stderr  # a huge Retry-After: the cap
    assert len(primary.requests) == 2  # turn three (299 s later) still skipped it


@pytest.mark.parametrize("reply", [Reply.overloaded(529), Reply.error(503, "busy"), Reply.overloaded(500),
                                   Reply.overloaded(200)], ids=["529", "503", "overloaded_error", "in_a_200"])
def test_overloaded_cools_down(tmp_path: Path, servers, unix_run, reply: Reply) -> None:
    primary, backup = servers
    # The Anthropic primary (its error object may come in a 200), an OpenAI fallback.
    out = _build(tmp_path, primary, backup, api="anthropic")
    primary.push(reply)
    backup.push(Reply.text("b1"), Reply.text("b2"))
    res = _run(unix_run, out, "one", "two")
    assert answers(res.stdout)[:2] == ["b1", "b2"]
    assert "test-model (127.0.0.1) cools down for 30 s (overloaded)" in res.stderr
    assert len(primary.requests) == 1


def test_timeout_and_bad_response_fall_through_without_cooldown(tmp_path: Path, servers, unix_run) -> None:
    primary, backup = servers
    out = _build(tmp_path, primary, backup, read_timeout=1)
    primary.push(Reply.stall(3), Reply.malformed(), Reply.text("primary fine"))
    backup.push(Reply.text("b1"), Reply.text("b2"))
    res = _run(unix_run, out, "one", "two", "three")
    assert answers(res.stdout)[:3] == ["b1", "b2", "primary fine"]
    assert "timed out after 1" in res.stderr and "malformed JSON" in res.stderr
    assert "cools down" not in res.stderr  # neither class starts a cooldown


def test_every_endpoint_cooling_fails_fast_then_waits_a_short_rest(tmp_path: Path, servers, unix_run) -> None:
    primary, _ = servers
    out = _build(tmp_path, primary)
    primary.push(Reply.rate_limited(retry_after=60), Reply.text("after the cooldown"))
    res = _run(unix_run, out, "one", "two", "wait 55", "three")
    got = answers(res.stdout)
    assert got[0].startswith("[error] HTTP 429 from 127.0.0.1 (test-model): rate limited")
    assert got[1] == "[error] test-model (127.0.0.1) is cooling down after rate_limit, 60 s more; try again then"
    assert got[2:4] == ["waited", "after the cooldown"]
    # 60 s is past the 10 s a turn waits; 5 s left is not: the turn waits (on the test clock).
    assert "[clock] slept 5000 ms" in res.stderr
    assert len(primary.requests) == 2


def test_short_retry_after_waits_and_retries_the_primary(tmp_path: Path, servers, unix_run) -> None:
    primary, _ = servers
    out = _build(tmp_path, primary)
    primary.push(Reply.rate_limited(retry_after=3), Reply.text("after 3 s"))
    res = _run(unix_run, out, "one")
    assert answers(res.stdout)[0] == "after 3 s"
    assert "retrying 127.0.0.1 in 3s" in res.stderr and "[clock] slept 3000 ms" in res.stderr


CONTEXT_ERRORS = {
    "openai": Reply.json({"error": {"message": "This model's maximum context length is 8192 tokens.",
                                    "type": "invalid_request_error", "code": "context_length_exceeded"}},
                         status=400),
    "anthropic": Reply.anthropic_error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_context_too_long_drops_the_oldest_turn_and_retries_once(tmp_path: Path, unix_run, api: str) -> None:
    with LLMServer(api=api) as srv:
        out = _build(tmp_path, srv, api=api)
        ok = Reply.text if api == "openai" else Reply.message
        srv.push(ok("a1"), ok("a2"), CONTEXT_ERRORS[api], ok("a3"), CONTEXT_ERRORS[api], CONTEXT_ERRORS[api])
        res = _run(unix_run, out, "q1", "q2", "q3", "q4")
        got = answers(res.stdout)
        assert got[:3] == ["a1", "a2", "a3"]
        assert got[3].startswith("[error] HTTP 400 from 127.0.0.1 (test-model): ")
        assert got[3].endswith(" -- /reset, or send a shorter message")
        user_lines = [[m["content"] for m in r.messages if m["role"] == "user"] for r in srv.requests]
        # q3 failed with the whole history, then went again without the oldest turn (q1/a1).
        assert user_lines[2] == ["q1", "q2", "q3"] and user_lines[3] == ["q2", "q3"]
        # q4: dropped q2 and retried once; the second refusal ends the turn.
        assert user_lines[4] == ["q2", "q3", "q4"] and user_lines[5] == ["q3", "q4"]
        assert len(srv.requests) == 6
        assert "dropped the oldest history turn, retrying" in res.stderr


def test_context_too_long_without_history_says_reset(tmp_path: Path, servers, unix_run) -> None:
    primary, backup = servers
    out = _build(tmp_path, primary, backup)
    primary.push(CONTEXT_ERRORS["openai"])
    res = _run(unix_run, out, "a very long question")
    assert answers(res.stdout)[0] == ("[error] HTTP 400 from 127.0.0.1 (test-model): This model's maximum context "
                                      "length is 8192 tokens. -- /reset, or send a shorter message")
    assert backup.requests == []  # a context error is not the fallback's business
