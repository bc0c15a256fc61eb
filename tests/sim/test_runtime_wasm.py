"""The device runtime on the WebAssembly VM, the one `clawgen sim` uses: an agent turn with a tool
call, persistence across two runs (the files of the first fed back into the second) and a Telnet
session through the simulator's port mapping. The runtime's own behaviour is tested in depth on the
unix-port VM (tests/runtime); these keep the simulator's socket, file and server paths proven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.sim import vm
from tests.llm_server import LLMServer, Reply
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient

LOG = "/claw_history.log"
TELNET_PORT = 2323
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}


def test_tool_turn_and_history_across_a_power_cycle(tmp_path: Path, llm_server: LLMServer, sim_run) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url, persistence={"mode": "flash", "max_bytes": 4096}))
    llm_server.push(Reply.tool_calls(("add", {"a": 2, "b": 40})), Reply.text("The sum is 42."))
    first = sim_run(out, stdin=["add 2 and 40", "/quit"])
    assert first.returncode == 0, first.stderr
    assert "[tool] add" in first.stdout and "The sum is 42." in first.stdout
    follow = llm_server.requests[1].messages
    assert [m["role"] for m in follow] == ["system", "user", "assistant", "tool"]
    assert follow[3]["content"] == "42" and json.loads(follow[2]["tool_calls"][0]["function"]["arguments"]) == {
        "a": 2, "b": 40}
    assert LOG in first.files
    # Power cycle: the same flash (the first run's files) under a fresh VM.
    llm_server.push(Reply.text("You asked me to add."))
    second = sim_run(out, stdin=["what did I ask?", "/quit"], extra_files=first.files)
    assert second.returncode == 0, second.stderr
    assert "session: restored 2 messages" in second.stdout
    assert [(m["role"], m["content"]) for m in llm_server.requests[2].messages[1:]] == [
        ("user", "add 2 and 40"), ("assistant", "The sum is 42."), ("user", "what did I ask?")]


def _quit_and_wait(c: TelnetClient, sim: vm.Simulation) -> vm.SimResult:
    """End the Telnet session with /quit, then the UART's input, and wait for the run's result."""
    c.send_line("/quit")
    c.read_until(b"bye")
    c.close()
    sim.end_input()
    return sim.wait(20)


@pytest.mark.usefixtures("mpvm")
def test_telnet_session_through_the_port_map(tmp_path: Path, llm_server: LLMServer) -> None:
    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": TELNET_PORT}},
                     network={"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"})
    out = build(tmp_path, spec, secrets={"wifi_ssid": "lab-net", "wifi_password": "hunter22"})
    llm_server.push(Reply.text("Nice to meet you, Ada."), Reply.text("Your name is Ada."))
    with vm.Simulation(out, stdin=vm.OPEN, port_map={TELNET_PORT: 0}, secrets=NVS) as sim:
        ev = sim.wait_event("listening", timeout=20)
        assert ev["device_port"] == TELNET_PORT
        c = TelnetClient(ev["host"], ev["port"])
        assert "/help for commands" in c.read_until(b"\n> ")
        c.send_line("my name is Ada")
        assert "Nice to meet you, Ada." in c.read_until(b"\n> ")
        c.close()  # drop the connection without /quit: the session stays with the agent
        c = TelnetClient(ev["host"], ev["port"])
        c.read_until(b"\n> ")
        c.send_line("what is my name?")
        assert "Your name is Ada." in c.read_until(b"\n> ")
        res = _quit_and_wait(c, sim)
    assert res.returncode == 0, res.stderr
    assert f"telnet: listening on port {TELNET_PORT}" in res.stdout
    assert "hunter22" not in res.stdout + res.stderr


@pytest.mark.usefixtures("mpvm")
def test_telnet_password_through_the_port_map(tmp_path: Path, llm_server: LLMServer) -> None:
    """transports.telnet.password on the WebAssembly VM (`clawgen sim`): asked, refused, accepted."""
    password = "correct horse 42"
    spec = make_spec(llm_server.base_url, network={"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"},
                     transports={"uart": True, "telnet": {"port": TELNET_PORT, "password": "!secret telnet_pw"}})
    out = build(tmp_path, spec, secrets={"wifi_ssid": "lab-net", "wifi_password": "hunter22", "telnet_pw": password})
    llm_server.push(Reply.text("hello over telnet"))
    with vm.Simulation(out, stdin=vm.OPEN, port_map={TELNET_PORT: 0},
                       secrets={**NVS, "telnet_pw": password.encode()}) as sim:
        ev = sim.wait_event("listening", timeout=20)
        c = TelnetClient(ev["host"], ev["port"])
        assert c.read_until(b"password: ") == "password: "
        c.send_line("swordfish")
        assert "[error] wrong password" in c.read_until(b"password\r\n")
        c.close()
        c = TelnetClient(ev["host"], ev["port"])
        c.read_until(b"password: ")
        c.send_line(password)
        assert "/help for commands" in c.read_until(b"\n> ")
        c.send_line("hi")
        assert "hello over telnet" in c.read_until(b"\n> ")
        res = _quit_and_wait(c, sim)
    assert res.returncode == 0, res.stderr
    text = res.stdout + res.stderr
    assert f"telnet: listening on port {TELNET_PORT} (password required)" in text
    assert "telnet: 127.0.0.1: wrong password (1 in a row)" in text and "telnet: password accepted" in text
    assert password not in text and "[error] task" not in text
