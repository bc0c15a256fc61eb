"""The Anthropic Messages adapter (`api: anthropic`, claw_anthropic) on the MicroPython unix-port VM
against the scripted server in its Anthropic mode: the request's wire format (x-api-key,
anthropic-version, top-level system, tools as input_schema), tool_use / tool_result round trips,
stop_reason max_tokens, errors, and a fallback that speaks the OpenAI format in the middle of a turn."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from clawgen.sim.llmserver import LLMServer, Reply
from tests.runtime.agent_builds import build, make_spec

KEY = "sk-ant-test-0123456789abcdef"
NVS = {"m0_key": KEY.encode()}


def answers(stdout: str) -> list[str]:
    """What the agent printed after each prompt (one entry per input line)."""
    return [chunk.strip() for chunk in re.split(r"(?:^|\n)> ", stdout)[1:]]


def _spec(base_url: str, **model: Any) -> dict[str, Any]:
    spec = make_spec(base_url)
    spec["model"].update({"api": "anthropic", "api_key": "!secret ant_key", **model})
    return spec


@pytest.fixture
def ant() -> Any:
    with LLMServer(api="anthropic") as srv:
        yield srv


@pytest.fixture
def agent(tmp_path: Path, ant: LLMServer) -> Path:
    return build(tmp_path, _spec(ant.base_url), secrets={"ant_key": KEY})


def test_text_turn_wire_format(agent: Path, ant: LLMServer, unix_run) -> None:
    ant.push(Reply.message("Hello from Claude."), Reply.message("You said hi."))
    res = unix_run(agent, stdin=["hi", "what did I say?", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    assert answers(res.stdout)[:2] == ["Hello from Claude.", "You said hi."]
    first, second = ant.requests
    assert first.method == "POST" and first.path == "/v1/messages"
    assert first.headers["x-api-key"] == KEY and first.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in first.headers
    body = first.json
    assert body["model"] == "test-model" and body["max_tokens"] == 512
    assert body["system"].startswith("You are a test agent.")
    assert body["messages"] == [{"role": "user", "content": "hi"}]  # no system message in the list
    tools = {t["name"]: t for t in body["tools"]}
    assert set(tools["add"]) == {"name", "description", "input_schema"}
    assert tools["add"]["input_schema"]["required"] == ["a", "b"]
    assert second.json["messages"] == [{"role": "user", "content": "hi"},
                                       {"role": "assistant", "content": "Hello from Claude."},
                                       {"role": "user", "content": "what did I say?"}]
    assert KEY not in res.stdout + res.stderr


def test_tool_round_trip_blocks_and_ids(agent: Path, ant: LLMServer, unix_run) -> None:
    ant.push(Reply.tool_use(("add", {"a": 2, "b": 40.5}), ("add", {"a": 1, "b": 1}), content="Adding."),
             Reply.message("42.5 and 2."))
    res = unix_run(agent, stdin=["add two pairs", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    assert "[tool] add" in res.stdout and "42.5 and 2." in res.stdout
    msgs = ant.requests[1].json["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["content"] == [
        {"type": "text", "text": "Adding."},
        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 40.5}},
        {"type": "tool_use", "id": "toolu_2", "name": "add", "input": {"a": 1, "b": 1}}]
    # Both results in one user message, each naming the tool_use it answers.
    assert msgs[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42.5"},
                                  {"type": "tool_result", "tool_use_id": "toolu_2", "content": "2"}]


def test_max_tokens_stop_is_marked(agent: Path, ant: LLMServer, unix_run) -> None:
    ant.push(Reply.message("The greenhouse is", stop_reason="max_tokens"))
    res = unix_run(agent, stdin=["describe", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    assert answers(res.stdout)[0] == "The greenhouse is ...[cut at the model's max_tokens]"


def test_errors(agent: Path, ant: LLMServer, unix_run) -> None:
    ant.push(Reply.anthropic_error(401, "authentication_error", "invalid x-api-key"),
             Reply.raw(b'{"type":"message","content":'),
             Reply.raw(b'{"type":"message","content":'),
             Reply.json({"type": "message", "content": "not a list"}),
             Reply.json({"type": "message", "content": "not a list"}),
             Reply.message("fine"))
    res = unix_run(agent, stdin=["one", "two", "three", "four", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    got = answers(res.stdout)
    assert got[0] == ("[error] HTTP 401 from 127.0.0.1 (test-model): invalid x-api-key -- check the API key")
    assert got[1].startswith("[error] malformed JSON in the model's response")
    assert got[2] == "[error] unexpected response: no content blocks from 127.0.0.1"
    assert got[3] == "fine"
    assert len(ant.requests) == 6  # auth: one request; a bad response: retried once at the primary
    assert KEY not in res.stdout + res.stderr


def test_a_tool_use_block_without_a_string_name_or_id_is_malformed(agent: Path, ant: LLMServer, unix_run) -> None:
    # (A dict as the name got past the adapter and failed the turn at the tool table with
    # "[error] internal: TypeError".) Each bad response is retried once at the primary, as above.
    bad_name = {"type": "message", "content": [{"type": "tool_use", "id": "t1", "name": {}, "input": {}}],
                "stop_reason": "tool_use"}
    bad_id = {"type": "message", "content": [{"type": "tool_use", "id": 5, "name": "add", "input": {}}],
              "stop_reason": "tool_use"}
    ant.push(Reply.json(bad_name), Reply.json(bad_name), Reply.json(bad_id), Reply.json(bad_id), Reply.message("fine"))
    res = unix_run(agent, stdin=["one", "two", "three", "/quit"], secrets=NVS)
    assert res.returncode == 0, res.stderr
    got = answers(res.stdout)
    assert got[:2] == ["[error] unexpected response: malformed tool_use block from 127.0.0.1"] * 2
    assert got[2] == "fine"
    assert len(ant.requests) == 5


def test_openai_fallback_mid_turn_gets_the_turn_in_its_format(tmp_path: Path, ant: LLMServer, unix_run) -> None:
    # The Anthropic primary asks for a tool, then is overloaded: the OpenAI-format fallback gets the
    # same turn re-encoded (assistant tool_calls + tool message with the same id).
    with LLMServer() as oai:
        spec = _spec(ant.base_url, fallbacks=[{"base_url": oai.base_url, "model": "gpt-backup", "api": "openai"}])
        out = build(tmp_path, spec, secrets={"ant_key": KEY})
        ant.push(Reply.tool_use(("add", {"a": 20, "b": 22})), Reply.overloaded())
        oai.push(Reply.text("42 (from the backup)"))
        res = unix_run(out, stdin=["add", "/status", "/quit"], secrets={**NVS, "m1_key": KEY.encode()})
        assert res.returncode == 0, res.stderr
        assert "42 (from the backup)" in res.stdout
        assert "model gpt-backup (fallback after overloaded)" in res.stdout
        (req,) = oai.requests
        assert req.path == "/v1/chat/completions"
        msgs = req.json["messages"]
        assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
        call = msgs[2]["tool_calls"][0]
        assert call["id"] == "toolu_1" and call["function"]["name"] == "add"
        assert json.loads(call["function"]["arguments"]) == {"a": 20, "b": 22}
        assert msgs[3]["tool_call_id"] == "toolu_1" and msgs[3]["content"] == "42"
        assert req.headers["authorization"] == "Bearer " + KEY  # the fallback took the primary's key


def test_anthropic_primary_takes_over_a_turn_the_openai_light_model_began(tmp_path: Path, ant: LLMServer,
                                                                            unix_run) -> None:
    # An easy turn goes to the OpenAI light model, which asks for a tool and then fails: the
    # Anthropic primary gets the turn re-encoded as tool_use / tool_result blocks.
    with LLMServer() as light:
        spec = _spec(ant.base_url, light={"api": "openai", "base_url": light.base_url, "model": "small"})
        out = build(tmp_path, spec, secrets={"ant_key": KEY})
        light.push(Reply.tool_calls(("add", {"a": 1, "b": 2})), Reply.error(502, "bad gateway"))
        ant.push(Reply.message("3, says the primary"))
        res = unix_run(out, stdin=["add", "/quit"], secrets=NVS)
        assert res.returncode == 0, res.stderr
        assert "3, says the primary" in res.stdout
        assert "authorization" not in light.requests[0].headers  # the primary's key stays with the primary
        msgs = ant.requests[0].json["messages"]
        assert msgs == [
            {"role": "user", "content": "add"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "add",
                                               "input": {"a": 1, "b": 2}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "3"}]}]
