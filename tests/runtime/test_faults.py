"""Fault injection: the real device runtime (compiled .mpy) on the MicroPython unix-port VM (real
sockets) against a scripted model server. Every fault must leave a clear message and a session
whose next turn works."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clawgen.sim import unixvm as uvm
from clawgen.sim.vm import SimResult
from tests.llm_server import LLMServer, Reply, completion, tool_call

API_KEY = b"sk-test-fault-key-0123456789"
RESPONSE_BYTES = 4096
MAX_ITERATIONS = 3

SPEC = f"""\
name: faulttest
board: esp32s3
system_prompt: You are a test agent.
model:
  base_url: http://127.0.0.1:9/v1
  model: test-model
  api_key: !secret api_key
  connect_timeout: 2
  read_timeout: 1
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
capabilities: [system]
tools:
  - name: add
    description: Add two integers.
    parameters:
      type: object
      properties: {{a: {{type: integer}}, b: {{type: integer}}}}
      required: [a, b]
    handler: tools/calc.py:add
limits:
  response_bytes: {RESPONSE_BYTES}
  max_iterations: {MAX_ITERATIONS}
  max_tool_calls: 4
"""


@dataclass
class Env:
    server: LLMServer
    build: Path
    secrets: dict[str, bytes]

    def session(self, *lines: str, timeout: float = 40) -> SimResult:
        res = uvm.run(self.build, stdin=[*lines, "/quit"], secrets=self.secrets, timeout=timeout)
        assert res.reason == "exit" and res.returncode == 0, res.stdout + res.stderr
        assert API_KEY.decode() not in res.stdout + res.stderr
        return res


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from clawgen.build import build_spec

    d = tmp_path_factory.mktemp("faults")
    (d / "agent.yaml").write_text(SPEC)
    (d / "secrets.yaml").write_text(f"api_key: {API_KEY.decode()}\nwifi_ssid: testnet\nwifi_password: testpass\n")
    (d / "tools").mkdir()
    (d / "tools" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    server = LLMServer()
    try:
        result = build_spec(d / "agent.yaml", out_dir=d / "build", images=False, model_override=server.base_url)
        yield Env(server, result.out_dir, dict(result.nvs_values))
    finally:
        server.close()


@pytest.fixture
def llm(env: Env, unixvm: str) -> Iterator[LLMServer]:
    env.server.requests.clear()
    yield env.server
    left = env.server.pending
    env.server._queue.clear()
    assert left == 0, f"{left} scripted replies were not used"


def answers(res: SimResult) -> list[str]:
    """What the agent printed after each prompt (one entry per input line)."""
    return [chunk.strip() for chunk in re.split(r"(?:^|\n)> ", res.stdout)[1:]]


def chat_requests(server: LLMServer) -> list[dict]:
    return [r.json for r in server.requests if r.path == "/v1/chat/completions"]


def test_normal_turn_sends_a_well_formed_request(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.text("Hello there."))
    res = env.session("hi")
    assert answers(res)[0] == "Hello there."
    (req,) = llm.requests
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer " + API_KEY.decode()
    assert req.json["model"] == "test-model"
    assert [m["role"] for m in req.json["messages"]] == ["system", "user"]
    tools = {t["function"]["name"]: t for t in req.json["tools"]}
    assert tools["add"]["function"]["parameters"]["required"] == ["a", "b"]


def test_http_500_twice_then_a_normal_turn(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.error(500, "the model is down"), Reply.error(500, "the model is down"), Reply.text("Back."))
    res = env.session("first", "second")
    first, second = answers(res)[:2]
    assert first.startswith("[error]") and "HTTP 500" in first and "the model is down" in first
    assert second == "Back."
    # The failed turn left nothing in the history: the next request holds only the new user line.
    assert [m["content"] for m in chat_requests(llm)[-1]["messages"][1:]] == ["second"]


def test_429_waits_for_retry_after_then_succeeds(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.rate_limited(retry_after=1), Reply.text("After the wait."), Reply.text("Still fine."))
    res = env.session("first", "second")
    assert answers(res)[:2] == ["After the wait.", "Still fine."]
    assert len(chat_requests(llm)) == 3
    # The log says why it waits (the user's answer then comes from the retry).
    assert "HTTP 429 from 127.0.0.1 (" in res.stderr and "; retrying 127.0.0.1 in 1s" in res.stderr


def test_malformed_json(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.malformed(), Reply.malformed(), Reply.text("Fine now."))
    first, second = answers(env.session("first", "second"))[:2]
    assert first.startswith("[error]") and "malformed JSON" in first
    assert second == "Fine now."


def test_body_cut_mid_way(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.truncated(), Reply.truncated(), Reply.text("Complete."))
    first, second = answers(env.session("first", "second"))[:2]
    assert first.startswith("[error]") and "closed the connection" in first
    assert second == "Complete."


def test_body_larger_than_the_response_buffer(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.oversize(RESPONSE_BYTES * 2), Reply.text("Small answer."))
    first, second = answers(env.session("first", "second"))[:2]
    assert first.startswith("[error]") and "larger than" in first and str(RESPONSE_BYTES) in first
    assert second == "Small answer."


CHUNK_STYLES = ["plain", "extensions", "trailers", "one_byte", "upper_hex"]


def test_chunked_encoding_variants(env: Env, llm: LLMServer) -> None:
    for style in CHUNK_STYLES:
        llm.push(Reply.chunked(completion(f"Chunked {style} answer, ünïcödé."), style=style))
    llm.push(Reply.text("Plain again."))
    res = env.session(*(f"turn {s}" for s in CHUNK_STYLES), "last")
    assert answers(res)[:6] == [f"Chunked {s} answer, ünïcödé." for s in CHUNK_STYLES] + ["Plain again."]


def test_connection_reset(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.reset(), Reply.reset(), Reply.text("Reconnected."))
    first, second = answers(env.session("first", "second"))[:2]
    assert first.startswith("[error]") and "127.0.0.1" in first
    assert second == "Reconnected."


def test_stall_past_the_read_timeout(env: Env, llm: LLMServer) -> None:
    llm.push(Reply.stall(4), Reply.stall(4, after_headers=True), Reply.text("Responsive again."))
    first, second = answers(env.session("first", "second"))[:2]
    assert first.startswith("[error]") and "timed out" in first.lower()
    assert second == "Responsive again."


def test_unknown_tool_and_invalid_arguments_go_back_to_the_model(env: Env, llm: LLMServer) -> None:
    llm.push(
        Reply.tool_calls(tool_call("no_such_tool", {}, "c1"), tool_call("add", '{"a": 1', "c2"),
                         tool_call("add", {"a": "one", "b": 2}, "c3"), tool_call("add", {"a": 2, "b": 3}, "c4")),
        Reply.text("Only one of those worked."),
        Reply.text("Next turn fine."),
    )
    res = env.session("use tools", "again")
    first, second = answers(res)[:2]
    assert first.endswith("Only one of those worked.") and "[tool] add" in first
    assert second == "Next turn fine."
    followup = chat_requests(llm)[1]["messages"]
    results = {m["tool_call_id"]: m["content"] for m in followup if m["role"] == "tool"}
    assert results["c1"].startswith("error: unknown tool 'no_such_tool'") and "add" in results["c1"]
    assert results["c2"] == "error: arguments are not valid JSON"
    assert results["c3"].startswith("error: invalid arguments for add")
    assert results["c4"] == "5"


def test_model_that_never_stops_calling_tools(env: Env, llm: LLMServer) -> None:
    for i in range(MAX_ITERATIONS):
        llm.push(Reply.tool_calls(tool_call("add", {"a": i, "b": 1}, f"loop{i}")))
    llm.push(Reply.text("Normal service."))
    res = env.session("loop forever", "hello")
    first, second = answers(res)[:2]
    assert "[stopped]" in first and f"max_iterations = {MAX_ITERATIONS}" in first
    assert second == "Normal service."
    last = chat_requests(llm)[-1]["messages"]
    # The stopped turn is kept as user line + its note; no half-finished tool exchange.
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
    assert "tool_calls" not in last[2] and last[1]["content"] == "loop forever"


def test_a_server_quoting_the_api_key_does_not_get_it_printed(env: Env, llm: LLMServer) -> None:
    key = API_KEY.decode()
    llm.push(Reply.error(401, f"Incorrect API key provided: {key}"), Reply.text("Fine."))
    first, second = answers(env.session("first", "second"))[:2]  # session() asserts the key is never shown
    assert first == "[error] HTTP 401 from 127.0.0.1 (test-model): Incorrect API key provided: *** -- check the API key"
    assert second == "Fine."


def test_secrets_are_not_in_the_generated_sources(env: Env) -> None:
    for p in (env.build / "app").glob("*.py"):
        assert API_KEY.decode() not in p.read_text()
    assert API_KEY not in json.dumps(json.loads((env.build / "build.json").read_text())).encode()
