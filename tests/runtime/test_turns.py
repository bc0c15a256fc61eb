"""End-to-end agent turns on the MicroPython unix-port VM (real sockets): the compiled runtime talks
real HTTP to the scripted LLM server; tool calls run through the static tool table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.llm_server import Reply, tool_call
from tests.runtime.agent_builds import build, make_spec


@pytest.fixture
def agent(tmp_path: Path, llm_server):
    return build(tmp_path, make_spec(llm_server.base_url))


def _tool_messages(req) -> list[dict]:
    return [m for m in req.messages if m["role"] == "tool"]


def test_text_turns_carry_history(agent, llm_server, unix_run):
    llm_server.push(Reply.text("Hello, human."), Reply.text("You said hi."))
    res = unix_run(agent, stdin=["hi", "what did I say?", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "Hello, human." in res.stdout and "You said hi." in res.stdout
    first, second = llm_server.requests
    assert first.path == "/v1/chat/completions"
    assert first.json["model"] == "test-model"
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert first.messages[0]["content"].startswith("You are a test agent.")
    names = [t["function"]["name"] for t in first.json["tools"]]
    assert names == ["system_uptime", "system_free_heap", "system_reboot", "set_relay", "big_text", "explode", "add"]
    assert [(m["role"], m["content"]) for m in second.messages[1:]] == [
        ("user", "hi"), ("assistant", "Hello, human."), ("user", "what did I say?")]
    assert "authorization" not in first.headers  # keyless local server


def test_tool_call_round_trip(agent, llm_server, unix_run):
    llm_server.push(Reply.tool_calls(("add", {"a": 2, "b": 40.5})), Reply.text("The sum is 42.5."))
    res = unix_run(agent, stdin=["add 2 and 40.5", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "The sum is 42.5." in res.stdout
    follow = llm_server.requests[1]
    roles = [m["role"] for m in follow.messages]
    assert roles == ["system", "user", "assistant", "tool"]
    call = follow.messages[2]["tool_calls"][0]
    assert call["id"] == "call_1" and call["function"]["name"] == "add"
    assert json.loads(call["function"]["arguments"]) == {"a": 2, "b": 40.5}
    tool = follow.messages[3]
    assert tool["tool_call_id"] == "call_1" and tool["content"] == "42.5"


def test_confirm_yes_runs_the_tool(agent, llm_server, unix_run):
    llm_server.push(Reply.tool_calls(("set_relay", {"on": True})), Reply.text("Relay is on."))
    res = unix_run(agent, stdin=["switch the relay on", "y", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "Allow tool set_relay" in res.stdout
    assert json.loads(_tool_messages(llm_server.requests[1])[0]["content"]) == {"relay": "on", "calls": 1}
    assert "Relay is on." in res.stdout


def test_confirm_no_is_an_explicit_refusal(agent, llm_server, unix_run):
    llm_server.push(Reply.tool_calls(("set_relay", {"on": True})), Reply.text("OK, I left it off."),
                    Reply.tool_calls(("set_relay", {"on": False})), Reply.text("Relay off."))
    res = unix_run(agent, stdin=["switch the relay on", "no", "then switch it off", "yes", "/quit"])
    assert res.returncode == 0, res.stderr
    refused = _tool_messages(llm_server.requests[1])[0]["content"]
    assert refused.startswith("refused: the user declined to run set_relay")
    # The refused call never reached the handler: the next confirmed call is the first one.
    assert json.loads(_tool_messages(llm_server.requests[3])[0]["content"]) == {"relay": "off", "calls": 1}
    assert "OK, I left it off." in res.stdout and "Relay off." in res.stdout


def test_handler_exception_becomes_error_result(agent, llm_server, unix_run):
    llm_server.push(Reply.tool_calls(("explode", {"reason": "i2c"})), Reply.text("The sensor failed."),
                    Reply.text("still here"))
    res = unix_run(agent, stdin=["read it", "ping", "/quit"])
    assert res.returncode == 0, res.stderr
    content = _tool_messages(llm_server.requests[1])[0]["content"]
    assert content == "error: explode failed: ValueError: sensor bus stuck: i2c"
    assert "The sensor failed." in res.stdout and "still here" in res.stdout


def test_arguments_checked_against_schema(agent, llm_server, unix_run):
    llm_server.push(Reply.tool_calls(("add", {"a": "two", "b": 1}), ("add", {"a": 1}),
                                     ("set_relay", "{not json")),
                    Reply.text("bad args"))
    res = unix_run(agent, stdin=["add", "/quit"])
    assert res.returncode == 0, res.stderr
    results = [m["content"] for m in _tool_messages(llm_server.requests[1])]
    assert results == [
        "error: invalid arguments for add: argument 'a' must be of type number",
        "error: invalid arguments for add: missing required argument 'b'",
        "error: arguments are not valid JSON",
    ]
    assert "Allow tool" not in res.stdout  # invalid arguments are refused before any confirmation


def test_tool_result_truncated_with_marker(agent, llm_server, unix_run):
    llm_server.push(Reply.tool_calls(("big_text", {"n": 500})), Reply.text("long"))
    res = unix_run(agent, stdin=["big", "/quit"])
    assert res.returncode == 0, res.stderr
    content = _tool_messages(llm_server.requests[1])[0]["content"]
    limit = 1536  # the board's default limits.tool_result_bytes (esp32s3 build)
    assert len(content.encode()) <= limit
    assert content.startswith("0123456789")
    assert content.endswith(f"...[truncated: 5000 bytes, limits.tool_result_bytes = {limit}]")


def test_max_tool_calls_bound_is_explicit(tmp_path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, limits={"max_tool_calls": 2}))
    calls = [tool_call("add", {"a": i, "b": 1}, f"call_{i}") for i in range(4)]
    llm_server.push(Reply.json({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": calls}}]}), Reply.text("done"))
    res = unix_run(out, stdin=["add many", "/quit"])
    assert res.returncode == 0, res.stderr
    results = [(m["tool_call_id"], m["content"]) for m in _tool_messages(llm_server.requests[1])]
    assert results[:2] == [("call_0", "1"), ("call_1", "2")]
    assert [r[0] for r in results[2:]] == ["call_2", "call_3"]
    assert all(r[1].startswith("error: not run: at most 2 tool calls per response") for r in results[2:])
    assert "only the first 2 were run" in res.stdout


def test_max_iterations_bound_is_explicit(tmp_path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, limits={"max_iterations": 3}))
    llm_server.push(*[Reply.tool_calls(("add", {"a": i, "b": 0})) for i in range(3)], Reply.text("fine"))
    res = unix_run(out, stdin=["loop forever", "and now?", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "[stopped] no final answer after 3 model requests (limits.max_iterations = 3)" in res.stdout
    assert "fine" in res.stdout
    # The model is told too: the stop message is the assistant's answer in the history.
    last = llm_server.requests[3].messages
    assert last[2]["role"] == "assistant" and last[2]["content"].startswith("[stopped]")
    assert len(llm_server.requests) == 4


def test_long_user_line_truncated_with_marker(tmp_path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, limits={"content_bytes": 256}))
    llm_server.push(Reply.text("ok"))
    res = unix_run(out, stdin=["é" * 400, "/quit"])
    assert res.returncode == 0, res.stderr
    user = llm_server.requests[0].messages[1]["content"]
    assert len(user.encode()) <= 256
    assert user.startswith("é") and user.endswith(" ...[truncated: kept 208 of 800 bytes]")


def test_answer_larger_than_response_buffer_is_refused(tmp_path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, limits={"response_bytes": 4096}))
    llm_server.push(Reply.oversize(6000), Reply.text("small again"))
    res = unix_run(out, stdin=["big", "small", "/status", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "larger than the 4096-byte buffer (limits.response_bytes)" in res.stdout
    assert "small again" in res.stdout
    assert "MemoryError" not in res.stdout + res.stderr


def test_fallback_model_on_server_error(tmp_path, llm_server, unix_run):
    from clawgen.sim.llmserver import LLMServer

    with LLMServer() as backup:
        spec = make_spec(llm_server.base_url)
        spec["model"]["fallbacks"] = [{"base_url": backup.base_url, "model": "backup-model"}]
        out = build(tmp_path, spec)
        llm_server.push(Reply.error(503, "overloaded"))
        backup.push(Reply.text("from the backup"))
        res = unix_run(out, stdin=["hi", "/status", "/quit"])
        assert res.returncode == 0, res.stderr
        assert "from the backup" in res.stdout
        assert backup.requests[0].json["model"] == "backup-model"
        assert "HTTP 503" in res.stderr and "trying fallback model backup-model" in res.stderr
        assert "model backup-model" in res.stdout  # /status names the model that answered


def test_client_error_is_reported_not_retried(agent, llm_server, unix_run):
    llm_server.push(Reply.error(401, "invalid api key"), Reply.text("later"))
    res = unix_run(agent, stdin=["hi", "again", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "[error] HTTP 401 from 127.0.0.1 (test-model): invalid api key -- check the API key" in res.stdout
    assert "later" in res.stdout
    assert len(llm_server.requests) == 2
    # The failed turn left no trace in the history.
    assert [m["role"] for m in llm_server.requests[1].messages] == ["system", "user"]


def test_answer_cut_by_max_tokens_is_marked(agent, llm_server, unix_run):
    llm_server.push(Reply.text("The greenhouse is", finish_reason="length"))
    res = unix_run(agent, stdin=["describe", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "The greenhouse is ...[cut at the model's max_tokens]" in res.stdout
