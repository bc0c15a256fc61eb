"""The OpenAI wire-format adapter (claw_openai) on the MicroPython unix-port VM: messages it writes are the
JSON the server expects; responses from different servers parse to the same calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.agent_builds import build, make_spec

PROG = r"""
import json
import claw_buf as B
import claw_config as C
import claw_openai as P

def show(x):
    print(json.dumps(x))

# Messages are compact JSON bytes; control characters and non-ASCII survive.
show(str(P.user_msg('tab\there "quoted" \u00e9\u2603 \x01'), 'utf-8'))
show(str(P.calls_msg(None, [('c1', 'add', '{"a":1}')]), 'utf-8'))
show(str(P.tool_msg('c1', 'add', 'result'), 'utf-8'))
# A whole body: prefix, system message, history, tools suffix.
buf = B.Buf('t', 8192)
P.write_body(buf, P.prefix(C.MODELS[0]), [P.user_msg('hi')])
show(str(buf.view(), 'utf-8'))
# Response variants.
for body in (
    b'{"choices":[{"message":{"role":"assistant","content":"plain"},"finish_reason":"stop"}]}',
    b'{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"add","arguments":{"a":1,"b":2}}}]}}]}',
    b'{"choices":[{"message":{"role":"assistant","content":"","tool_calls":[{"id":"x9","type":"function","function":{"name":"add","arguments":"{\\"a\\":1}"}}]},"finish_reason":"tool_calls"}]}',
    b'{"error":{"message":"quota exceeded"}}',
    b'{"choices":[]}',
    b'[1,2]',
    b'{"choices":[{"message":',
    # Mistral's reasoning models: content chunks, the answer in the "text" ones.
    b'{"choices":[{"message":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]},{"type":"text","text":"an"},{"type":"text","text":"swer"},7]},"finish_reason":"stop"}]}',
    # A tool name that is not a string, an empty one; an id that is not a string (replaced).
    b'{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":{},"arguments":"{}"}}]}}]}',
    b'{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":"","arguments":"{}"}}]}}]}',
    b'{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":7,"function":{"name":"add","arguments":"{}"}}]}}]}',
):
    try:
        show(list(P.parse(memoryview(body))))
    except P.ProviderError as e:
        show('ProviderError: %s' % e)
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, unixvm) -> list:
    from clawgen.sim import unixvm as uvm

    out: Path = build(tmp_path_factory.mktemp("oa"), make_spec("http://127.0.0.1:9/v1"))
    res = uvm.run(out, modules={"prog": PROG}, entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_messages_are_valid_compact_json(outputs):
    user, calls, tool, body = (json.loads(x) for x in outputs[:4])
    assert user == {"role": "user", "content": 'tab\there "quoted" é☃ \x01'}
    assert calls == {"role": "assistant", "content": "",
                     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}]}
    assert tool == {"role": "tool", "tool_call_id": "c1", "name": "add", "content": "result"}
    assert ", " not in outputs[0] and '": ' not in outputs[0]  # compact separators
    assert body["model"] == "test-model" and body["stream"] is False and body["tool_choice"] == "auto"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert [t["function"]["name"] for t in body["tools"]][:3] == ["system_uptime", "system_free_heap", "system_reboot"]


def test_response_variants_parse(outputs):
    plain, ollama, openai, err, empty, notobj, cut = outputs[4:11]
    assert plain == ["plain", [], "stop"]
    assert ollama == [None, [["call_1", "add", '{"a":1,"b":2}']], None]
    assert openai == ["", [["x9", "add", '{"a":1}']], "tool_calls"]
    assert err == "ProviderError: model error: quota exceeded"
    assert empty == "ProviderError: unexpected response: no choices[0].message"
    assert notobj == "ProviderError: unexpected response: not a JSON object"
    assert cut.startswith("ProviderError: malformed JSON in the model's response")


def test_odd_content_and_tool_calls(outputs):
    # Content chunks read as their text; a tool call without a string name is a malformed response
    # (it was passed on and failed the turn with "[error] internal: TypeError" at the tool table);
    # an id that is not a string is replaced as a missing one is.
    chunks, dict_name, empty_name, number_id = outputs[11:]
    assert chunks == ["answer", [], "stop"]
    assert dict_name == empty_name == "ProviderError: unexpected response: malformed tool_calls entry"
    assert number_id == [None, [["call_1", "add", "{}"]], None]
