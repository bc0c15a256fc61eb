"""Slash commands and the debug trace, on the MicroPython unix-port VM."""

from __future__ import annotations

import re
from pathlib import Path

from clawgen.sim.unixvm import DEFAULT_HEAPSIZE
from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec


def test_help_tools_status_unknown(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url))
    llm_server.push(Reply.error(500, "boom"), Reply.error(500, "boom again"))
    res = unix_run(out, stdin=["/help", "/tools", "hello", "/status", "/nope", "/quit"], timeout=60)
    assert res.returncode == 0, res.stderr
    for cmd in ("/help", "/status", "/tools", "/reset", "/quit"):
        assert cmd in res.stdout
    assert "set_relay (asks first)" in res.stdout and "system_reboot (asks first)" in res.stdout
    assert "[error] HTTP 500 from 127.0.0.1 (test-model): boom" in res.stdout
    status = res.stdout[res.stdout.index("agent rt-agent on esp32s3"):]
    assert "free heap " in status and "uptime " in status and "model test-model" in status
    # The unix port's GC heap is real and bounded by the run's -X heapsize.
    free, used = map(int, re.search(r"free heap (\d+) bytes \(allocated (\d+)\)", status).groups())
    assert 0 < used and 0 < free and free + used <= DEFAULT_HEAPSIZE
    assert re.search(r"turns 1, history 0/\d+ messages", status)
    assert "last error: HTTP 500" in status
    assert "unknown command /nope; /help lists them" in res.stdout
    assert res.stdout.rstrip().endswith("bye")


def test_reset_clears_history(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url))
    llm_server.push(Reply.text("one"), Reply.text("two"), Reply.text("three"))
    res = unix_run(out, stdin=["a", "b", "/reset", "c", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "history cleared" in res.stdout
    assert [m["role"] for m in llm_server.requests[1].messages] == ["system", "user", "assistant", "user"]
    assert [(m["role"], m["content"]) for m in llm_server.requests[2].messages[1:]] == [("user", "c")]


def test_end_of_input_stops_the_agent(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url))
    res = unix_run(out, stdin=["/help"])
    assert res.returncode == 0 and res.reason == "exit", res.stderr
    assert llm_server.requests == []


def test_debug_trace_redacts_secrets(tmp_path: Path, llm_server, unix_run):
    key = "sk-test-very-secret-0123456789"
    spec = make_spec(llm_server.base_url, debug={"trace": True})
    spec["model"]["api_key"] = "!secret llm_key"
    out = build(tmp_path, spec, secrets={"llm_key": key})
    assert key not in "".join(p.read_text() for p in (out / "app").glob("*.py"))
    llm_server.push(Reply.text("traced answer"))
    res = unix_run(out, stdin=["hello trace", "/quit"], secrets={"m0_key": key.encode()})
    assert res.returncode == 0, res.stderr
    assert llm_server.requests[0].headers["authorization"] == "Bearer " + key
    assert "[trace] >>> request to 127.0.0.1" in res.stderr
    assert "Authorization: ***" in res.stderr
    assert '"content":"hello trace"' in res.stderr  # the body is traced
    assert "[trace] <<< response 200 from 127.0.0.1" in res.stderr and "traced answer" in res.stderr
    assert key not in res.stderr and key not in res.stdout
