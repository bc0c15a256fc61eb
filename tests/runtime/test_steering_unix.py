"""Steering on the MicroPython unix-port VM: a line that arrives in a session during its turn waits
in the session; after each tool call the turn looks at that queue, the response's remaining tool
calls get the result `skipped: a newer user message arrived`, and the queued line goes into the
next model request. The scripted model server holds each reply until the test releases it, so the
order of events is fixed by causality, not by timing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from clawgen.sim.llmserver import LLMServer, Reply, tool_call, wait_for
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient, free_port

HOST = "127.0.0.1"
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22"}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}
SKIPPED = "skipped: a newer user message arrived"


def test_a_line_during_the_turn_skips_the_remaining_calls_and_goes_into_the_next_request(
        tmp_path: Path, llm_server: LLMServer, unix_device: Any) -> None:
    gate = threading.Semaphore(0)
    replies = [Reply.tool_calls(tool_call("add", {"a": 1, "b": 2}, "c1"), tool_call("add", {"a": 3, "b": 4}, "c2"),
                                tool_call("add", {"a": 5, "b": 6}, "c3")),
               Reply.text("Stopped after the first sum, as you asked."), Reply.text("Nothing else.")]

    def held(_req: Any) -> Reply:
        gate.acquire(timeout=60)
        return replies.pop(0) if replies else Reply.error(500, "no scripted reply left")

    llm_server.responder = held
    port = free_port()
    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": port}}, network=WIFI)
    spec["model"]["read_timeout"] = 60
    dev = unix_device(build(tmp_path, spec, secrets=SECRETS), secrets=NVS)
    run = dev.start(open_stdin=True)
    try:
        c = TelnetClient(HOST, port, wait=20, alive=lambda: run.proc.poll() is None)
        c.read_until(b"\n> ")
        c.send_line("add three pairs of numbers")
        assert wait_for(lambda: len(llm_server.requests) == 1, 20)
        c.send_line("actually, stop after the first sum")
        c.send_line("/status")  # answered at once; by then the line before it waits in the session
        assert "session telnet: in a turn, 1 waiting" in c.read_until(b"\n> ")
        gate.release()  # the model asks for three calls; the first runs, then the queue is seen
        assert wait_for(lambda: len(llm_server.requests) == 2, 20)
        second = llm_server.requests[1].messages
        assert [(m["role"], m.get("tool_call_id"), m.get("content")) for m in second[-4:]] == [
            ("tool", "c1", "3"), ("tool", "c2", SKIPPED), ("tool", "c3", SKIPPED),
            ("user", None, "actually, stop after the first sum")]
        assert second[-5]["role"] == "assistant" and len(second[-5]["tool_calls"]) == 3
        gate.release()
        text = c.read_until(b"\n> ")
        assert "[tool] add" in text and "-> 3" in text and "[tool] add skipped: a newer message arrived" in text
        assert text.count("skipped") == 2 and "Stopped after the first sum, as you asked." in text
        # One turn answered both lines: the history holds them as one user message, then the answer.
        c.send_line("anything else?")
        assert wait_for(lambda: len(llm_server.requests) == 3, 20)
        third = llm_server.requests[2].messages[1:]
        assert [(m["role"], m["content"]) for m in third] == [
            ("user", "add three pairs of numbers\nactually, stop after the first sum"),
            ("assistant", "Stopped after the first sum, as you asked."), ("user", "anything else?")]
        gate.release()
        assert "Nothing else." in c.read_until(b"\n> ")
        c.send_line("/quit")
        c.read_until(b"bye")
        run.end_input()
        res = run.wait(20)
        assert res.returncode == 0, res.stderr
    finally:
        for _ in range(3):
            gate.release()
        run.kill()


def test_without_a_waiting_line_every_call_runs(tmp_path: Path, llm_server: LLMServer, unix_run) -> None:
    llm_server.push(Reply.tool_calls(tool_call("add", {"a": 1, "b": 2}, "c1"), tool_call("add", {"a": 3, "b": 4}, "c2")),
                    Reply.text("3 and 7."))
    res = unix_run(build(tmp_path, make_spec(llm_server.base_url)), stdin=["add two pairs", "/quit"])
    assert res.returncode == 0, res.stderr
    tools = [(m["tool_call_id"], m["content"]) for m in llm_server.requests[1].messages if m["role"] == "tool"]
    assert tools == [("c1", "3"), ("c2", "7")]
    assert "skipped" not in res.stdout
