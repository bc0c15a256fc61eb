"""The fixed buffers' layout on the MicroPython unix-port VM, as the build decides it
(clawgen.heapplan.tool_buffers_share_http, one rule for claw_buf and the heap estimate): the tool
buffers share the request/response bytearray unless something uses that memory during a tool call
(MCP server, web tools, hooks) or they do not fit in it; and a turn's tool calls work on the shared
memory (arguments parsed from it, a long result cut in it, the next request built after)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.sim.llmserver import Reply, tool_call
from tests.runtime.agent_builds import build, make_spec

PROBE = ("import claw_buf as B\n"
         "print('LAYOUT', B.tool_args.b is B.request.b, B.tool_result.b is B.tool_args.b, "
         "B.response.b is B.request.b, len(B.request.b), len(B.tool_args.b))\n")


@pytest.mark.parametrize(("name", "overrides", "shared"), [
    ("plain", {}, True),
    ("web", {"capabilities": ["system", "web_browsing"]}, False),
    ("hooks", {"hooks": {"before_tool": "tools/hooks.py:seen"}}, False),
    ("big-tools", {"limits": {"request_bytes": 4096, "response_bytes": 4096, "tool_result_bytes": 6144}}, False),
])
def test_tool_buffers_share_the_http_memory_only_when_nothing_else_uses_it(tmp_path: Path, llm_server, unix_run,
                                                                           name, overrides, shared):
    spec = make_spec(llm_server.base_url, **overrides)
    if "hooks" in overrides:
        (tmp_path / "tools").mkdir(parents=True, exist_ok=True)
        (tmp_path / "tools" / "hooks.py").write_text("def seen(channel, tool, args):\n    pass\n")
    out = build(tmp_path, spec)
    heap = json.loads((out / "build.json").read_text())["heap"]
    r = unix_run(out, entry=PROBE)
    assert r.returncode == 0, r.stdout + r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("LAYOUT ")]
    tool_shares, pair, http_pair, http_len, tool_len = line.split()[1:]
    assert (tool_shares, pair, http_pair) == (str(shared), "True", "True"), line
    # The build report's estimate counts the tool pair only when it has memory of its own.
    lim = spec.get("limits", {})
    http = max(lim.get("request_bytes", 8192), lim.get("response_bytes", 8192))
    tools = max(lim.get("tool_args_bytes", 1024), lim.get("tool_result_bytes", 1536))
    assert int(http_len) == http and int(tool_len) == (http if shared else tools)
    assert heap["buffers_bytes"] == http + 2048 + 2048 + (0 if shared else tools)  # + content, UART line


def test_a_turn_with_tool_calls_on_the_shared_memory(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url))
    llm_server.push(Reply.tool_calls(tool_call("big_text", {"n": 500}, "c1"), tool_call("add", {"a": 1, "b": 2}, "c2")),
                    Reply.text("done"))
    r = unix_run(out, stdin=["go"])
    assert r.returncode == 0 and "[error]" not in r.stdout, r.stdout + r.stderr
    assert "done" in r.stdout and len(llm_server.requests) == 2
    # The second request carries both results intact: the first cut in tool_result (the shared
    # memory), the second computed from arguments parsed out of it; the body was built after both.
    msgs = llm_server.requests[1].messages
    results = [m["content"] for m in msgs if m.get("role") == "tool"]
    assert len(results) == 2, msgs
    assert results[0].endswith("[truncated: 5000 bytes, limits.tool_result_bytes = 1536]")
    assert len(results[0].encode()) == 1536
    assert results[1] == "3", results
