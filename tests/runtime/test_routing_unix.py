"""Cheap-first routing (model.light + model.routing) on the MicroPython unix-port VM: the score of each
turn (user line length, code blocks, recent tool calls, depth) picks the light model or the primary,
the same way every time; /status, the turn log line and the [tool] lines say which model answered
and why; a light model that fails transiently hands the turn to the primary."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawgen.sim.llmserver import LLMServer, Reply
from tests.runtime.agent_builds import build, make_spec

LONG = "x" * 400  # long_message (400 characters): the length feature is 1
MID = "y" * 200

# Turns and the choice the default routing (threshold 0.3; weights length 0.3, code 0.3, tools
# 0.25, depth 0.15; long_message 400, deep_conversation 8, tool_window 3) must make, with the
# score in per mille (integer arithmetic on the device, docs/spec.md):
#   hi            length 5   -> 0.001 light
#   ```code```    length 35, code, depth 1/8            -> 0.329 primary
#   LONG          length 1000, depth 2/8                -> 0.337 primary
#   add 2 and 3   length 27, depth 3/8 (calls a tool)   -> 0.064 light
#   thanks        length 15, tools 1/3, depth 4/8       -> 0.162 light
#   MID           length 500, tools 1/3, depth 5/8      -> 0.327 primary
TURNS = ["hi", "```print(1)```", LONG, "add 2 and 3", "thanks", MID]
EXPECTED = [("light", "0.001"), ("primary", "0.329"), ("primary", "0.337"), ("light", "0.064"),
            ("light", "0.162"), ("primary", "0.327")]


@pytest.fixture
def servers() -> Iterator[tuple[LLMServer, LLMServer]]:
    with LLMServer() as primary, LLMServer() as light:
        yield primary, light


def _build(tmp_path: Path, primary: LLMServer, light: LLMServer, **routing: Any) -> Path:
    spec = make_spec(primary.base_url)
    spec["model"]["light"] = {"base_url": light.base_url, "model": "light-model"}
    if routing:
        spec["model"]["routing"] = routing
    return build(tmp_path, spec)


def _script(primary: LLMServer, light: LLMServer) -> None:
    """Replies for TURNS in the order EXPECTED routes them."""
    light.push(Reply.text("L1"), Reply.tool_calls(("add", {"a": 2, "b": 3})), Reply.text("L4"), Reply.text("L5"))
    primary.push(Reply.text("P2"), Reply.text("P3"), Reply.text("P6"))


def _choices(stderr: str) -> list[tuple[str, str]]:
    return re.findall(r"\[claw\] turn \d+: \S+ \((light|primary), score (\d\.\d{3})", stderr)


def test_routing_choices_are_exact_and_deterministic(tmp_path: Path, servers, unix_run) -> None:
    primary, light = servers
    out = _build(tmp_path, primary, light)
    runs = []
    for _ in range(2):  # a fresh device each time: the same lines give the same choices
        _script(primary, light)
        res = unix_run(out, stdin=[*TURNS, "/status", "/quit"])
        assert res.returncode == 0, res.stderr
        runs.append(_choices(res.stderr))
        for answer in ("L1", "P2", "P3", "L4", "L5", "P6"):
            assert answer in res.stdout
        assert "[tool] add {\"a\": 2, \"b\": 3} -> 5 [light-model]" in res.stdout
        assert "model test-model (primary, score 0.327 >= 0.300)" in res.stdout  # /status: the last turn
    assert runs[0] == runs[1] == EXPECTED
    assert [r.json["model"] for r in light.requests] == ["light-model"] * 8
    assert [r.messages[-1]["content"] for r in primary.requests] == ["```print(1)```", LONG, MID] * 2


def test_routing_weights_and_threshold_from_the_spec(tmp_path: Path, servers, unix_run) -> None:
    primary, light = servers
    # Only the length counts; half of long_message (100 characters) is the threshold.
    out = _build(tmp_path, primary, light, threshold=0.5, long_message=200,
                 weights={"length": 1, "code": 0, "tools": 0, "depth": 0})
    light.push(Reply.text("L1"), Reply.text("L3"))
    primary.push(Reply.text("P2"))
    res = unix_run(out, stdin=["```" + "z" * 40 + "```", "w" * 100, "w" * 99, "/quit"])
    assert res.returncode == 0, res.stderr
    assert _choices(res.stderr) == [("light", "0.230"), ("primary", "0.500"), ("light", "0.495")]


def test_light_failure_hands_the_turn_to_the_primary(tmp_path: Path, servers, unix_run) -> None:
    primary, light = servers
    out = _build(tmp_path, primary, light)
    light.push(Reply.error(500, "light is down"))
    primary.push(Reply.text("from the primary"))
    res = unix_run(out, stdin=["hi", "/status", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "from the primary" in res.stdout
    assert "HTTP 500 from 127.0.0.1 (light-model): light is down; trying fallback model test-model" in res.stderr
    assert "model test-model (fallback after server)" in res.stdout
    assert len(light.requests) == 1 and primary.requests[0].messages[-1]["content"] == "hi"


def test_a_cooling_light_model_is_skipped(tmp_path: Path, servers, unix_run) -> None:
    primary, light = servers
    out = _build(tmp_path, primary, light)
    light.push(Reply.rate_limited(retry_after=60))
    primary.push(Reply.text("P1"), Reply.text("P2"))
    res = unix_run(out, stdin=["hi", "ok", "/quit"])
    assert res.returncode == 0, res.stderr
    assert answers_in(res.stdout) == ["P1", "P2"]
    assert len(light.requests) == 1  # the second easy turn did not ask the light model again
    assert "skipping light-model (127.0.0.1): cooling down after rate_limit" in res.stderr
    assert _choices(res.stderr) == []  # neither turn was answered by the model it was routed to
    assert re.findall(r"turn \d+: test-model \(fallback after (\w+)\)", res.stderr) == ["rate_limit", "rate_limit"]


def answers_in(stdout: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?:^|\n)> ", stdout)[1:-1]]
