"""Hooks (hooks:) on the MicroPython unix-port VM: each hook point is called with its documented
arguments; observers cannot change the turn; approve_tool denies with a reason the model receives as
the tool result; confirm: true still asks after the hook; a hook that raises or runs over
hooks.limit_ms is reported once and skipped from then on, and never ends the turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

HOOKS = '''
import time


def before_llm(channel, text, iteration):
    print("HOOK before_llm", channel, text, iteration)


def after_llm(channel, content, tools):
    print("HOOK after_llm", channel, content, tools)
    tools.append("sneaky")  # a copy: the turn does not see it


def before_tool(channel, tool, args):
    print("HOOK before_tool", channel, tool, sorted(args.items()))
    args["a"] = 1000  # a copy: the handler still gets the model's arguments


def after_tool(channel, tool, args, result):
    print("HOOK after_tool", channel, tool, sorted(args.items()), result)


def approve(channel, tool, args):
    print("HOOK approve_tool", channel, tool)
    if tool == "add" and args.get("a") == 13:
        return "13 is unlucky here"
    if tool == "add" and args.get("a") == 14:
        return False
    if tool == "set_relay" and not args["on"]:
        return "the relay stays on at night"
    return None


def boom(channel, tool, args, **kwargs):
    print("HOOK boom", tool)
    raise ValueError("hook bug")


def slow(channel, tool, args):
    print("HOOK slow", tool)
    time.sleep_ms(300)


def approve_boom(channel, tool, args):
    print("HOOK approve_boom", tool)
    raise RuntimeError("approver down")
'''


def _agent(tmp_path: Path, base_url: str, hooks: dict[str, Any]) -> Path:
    (tmp_path / "tools").mkdir(parents=True, exist_ok=True)
    (tmp_path / "tools" / "hooks.py").write_text(HOOKS)
    return build(tmp_path, make_spec(base_url, hooks=hooks))


def _tool_results(req) -> list[str]:
    return [m["content"] for m in req.messages if m["role"] == "tool"]


def _hook_lines(stdout: str) -> list[str]:
    return [line[line.index("HOOK "):] for line in stdout.splitlines() if "HOOK " in line]


def test_tool_hooks_see_the_call_and_cannot_change_it(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"before_tool": "tools/hooks.py:before_tool",
                                                 "after_tool": "tools/hooks.py:after_tool",
                                                 "approve_tool": "tools/hooks.py:approve"})
    llm_server.push(Reply.tool_calls(("add", {"a": 2, "b": 3})), Reply.text("five"))
    res = unix_run(out, stdin=["add 2 and 3", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _tool_results(llm_server.requests[1]) == ["5"]  # before_tool's change did not reach the handler
    assert _hook_lines(res.stdout) == [
        "HOOK approve_tool uart add",
        "HOOK before_tool uart add [('a', 2), ('b', 3)]",
        "HOOK after_tool uart add [('a', 2), ('b', 3)] 5",
    ]
    assert "five" in res.stdout


def test_approve_tool_denies_with_a_reason_the_model_receives(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"approve_tool": "tools/hooks.py:approve",
                                                 "before_tool": "tools/hooks.py:before_tool"})
    llm_server.push(Reply.tool_calls(("add", {"a": 13, "b": 1}), ("add", {"a": 14, "b": 1}),
                                     ("add", {"a": 1, "b": 1})), Reply.text("two of them were refused"))
    res = unix_run(out, stdin=["add things", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _tool_results(llm_server.requests[1]) == [
        "denied by approve_tool: 13 is unlucky here", "denied by approve_tool: no reason given", "2"]
    # A denied call never reaches before_tool or the handler.
    assert [h for h in _hook_lines(res.stdout) if h.startswith("HOOK before_tool")] == [
        "HOOK before_tool uart add [('a', 1), ('b', 1)]"]


def test_confirm_is_asked_after_the_approve_hook(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"approve_tool": "tools/hooks.py:approve"})
    llm_server.push(Reply.tool_calls(("set_relay", {"on": False})), Reply.text("not allowed"),
                    Reply.tool_calls(("set_relay", {"on": True})), Reply.text("left it off"))
    res = unix_run(out, stdin=["relay off", "relay on", "n", "/quit"])
    assert res.returncode == 0, res.stderr
    # The hook denied the first call: nobody was asked. It let the second through to confirm: true.
    assert _tool_results(llm_server.requests[1]) == ["denied by approve_tool: the relay stays on at night"]
    assert res.stdout.count("Allow tool set_relay") == 1 and 'Allow tool set_relay {"on": true}' in res.stdout
    assert _tool_results(llm_server.requests[3])[0].startswith("refused: the user declined to run set_relay")
    assert _hook_lines(res.stdout).count("HOOK approve_tool uart set_relay") == 2


def test_a_raising_hook_is_reported_once_and_skipped(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"after_tool": "tools/hooks.py:boom"})
    llm_server.push(Reply.tool_calls(("add", {"a": 1, "b": 2})), Reply.text("three"),
                    Reply.tool_calls(("add", {"a": 2, "b": 2})), Reply.text("four"))
    res = unix_run(out, stdin=["one", "two", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "three" in res.stdout and "four" in res.stdout  # the turn went on
    assert _tool_results(llm_server.requests[1]) == ["3"] and _tool_results(llm_server.requests[3]) == ["4"]
    report = "hook after_tool (tools/hooks.py:boom) raised ValueError: hook bug; skipped from now on"
    assert res.stdout.count(report) == 1 and res.stderr.count(report) == 1
    assert _hook_lines(res.stdout).count("HOOK boom add") == 1  # not called again


def test_a_slow_hook_is_reported_once_and_skipped(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"before_tool": "tools/hooks.py:slow", "limit_ms": 50})
    llm_server.push(Reply.tool_calls(("add", {"a": 1, "b": 2})), Reply.text("three"),
                    Reply.tool_calls(("add", {"a": 2, "b": 2})), Reply.text("four"))
    res = unix_run(out, stdin=["one", "two", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _tool_results(llm_server.requests[1]) == ["3"] and _tool_results(llm_server.requests[3]) == ["4"]
    reports = [line for line in res.stderr.splitlines() if "hook before_tool (tools/hooks.py:slow) took" in line]
    assert len(reports) == 1 and reports[0].endswith("more than hooks.limit_ms (50 ms); skipped from now on")
    assert _hook_lines(res.stdout).count("HOOK slow add") == 1


def test_a_failing_approver_denies_that_call_then_confirm_rules(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"approve_tool": "tools/hooks.py:approve_boom"})
    llm_server.push(Reply.tool_calls(("add", {"a": 1, "b": 2})), Reply.text("not run"),
                    Reply.tool_calls(("add", {"a": 2, "b": 2})), Reply.text("four"))
    res = unix_run(out, stdin=["one", "two", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _tool_results(llm_server.requests[1]) == [
        "denied: the approval hook failed, so add was not run; try again"]
    assert _tool_results(llm_server.requests[3]) == ["4"]
    assert res.stderr.count("hook approve_tool (tools/hooks.py:approve_boom) raised RuntimeError") == 1


def test_llm_hooks_observe_each_model_round(tmp_path: Path, llm_server, unix_run) -> None:
    out = _agent(tmp_path, llm_server.base_url, {"before_llm": "tools/hooks.py:before_llm",
                                                 "after_llm": "tools/hooks.py:after_llm"})
    llm_server.push(Reply.tool_calls(("add", {"a": 2, "b": 3}), content="let me add"), Reply.text("five"))
    res = unix_run(out, stdin=["add 2 and 3", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _hook_lines(res.stdout) == [
        "HOOK before_llm uart add 2 and 3 1",
        "HOOK after_llm uart let me add ['add']",
        "HOOK before_llm uart add 2 and 3 2",
        "HOOK after_llm uart five []",
    ]
    assert "five" in res.stdout
    # after_llm appended to its copy: the turn ran exactly the model's one call.
    assert [m["role"] for m in llm_server.requests[1].messages] == ["system", "user", "assistant", "tool"]
    assert json.loads(llm_server.requests[1].messages[2]["tool_calls"][0]["function"]["arguments"]) == {
        "a": 2, "b": 3}
