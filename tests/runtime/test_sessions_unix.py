"""Sessions per conversation on the MicroPython unix-port VM: the console and the Telnet client slot
each have their own bounded history, persisted in their own torn-safe log (/claw_history.log and
/claw_history.telnet.log), restored after a power cycle (two runs of the same unix_device); /reset
clears only the history of the channel it was typed on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clawgen.sim.llmserver import LLMServer, Reply, wait_for
from clawgen.sim.unixvm import UnixRun
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient, free_port

HOST = "127.0.0.1"
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22"}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}


def _convo(req: Any) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in req.messages[1:]]


def _connect(run: UnixRun, port: int) -> TelnetClient:
    try:
        c = TelnetClient(HOST, port, wait=20, alive=lambda: run.proc.poll() is None)
    except ConnectionRefusedError:
        res = run.wait(5)
        raise AssertionError(f"the device does not listen on port {port}:\n{res.stdout}{res.stderr}") from None
    c.read_until(b"\n> ")
    return c


def _end(run: UnixRun, c: TelnetClient) -> str:
    c.send_line("/quit")
    c.read_until(b"bye")
    c.close()
    run.end_input()
    res = run.wait(30)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_console_and_telnet_sessions_are_separate_and_survive_a_power_cycle(
        tmp_path: Path, llm_server: LLMServer, unix_device: Any) -> None:
    port = free_port()
    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": port}}, network=WIFI,
                     persistence={"mode": "flash", "max_bytes": 16384})
    dev = unix_device(build(tmp_path, spec, secrets=SECRETS), secrets=NVS)
    llm_server.push(Reply.text("Hello Ada."), Reply.text("Hello Bob."))

    # First power-on: the console says it is Ada, the Telnet user that he is Bob.
    run = dev.start(open_stdin=True)
    c = _connect(run, port)
    run.send("I am Ada\n")
    assert wait_for(lambda: len(llm_server.requests) == 1, 20)
    c.send_line("I am Bob")
    assert "Hello Bob." in c.read_until(b"\n> ")
    _end(run, c)
    assert _convo(llm_server.requests[0]) == [("user", "I am Ada")]
    assert _convo(llm_server.requests[1]) == [("user", "I am Bob")]  # not the console's conversation
    files = dev.files()
    assert "/claw_history.log" in files and "/claw_history.telnet.log" in files
    assert b"Ada" in files["/claw_history.log"] and b"Bob" not in files["/claw_history.log"]
    assert b"Bob" in files["/claw_history.telnet.log"] and b"Ada" not in files["/claw_history.telnet.log"]

    # Power cycle: each channel gets its own conversation back; /reset on Telnet clears only Telnet's.
    llm_server.push(Reply.text("You are Bob."), Reply.text("I do not know."), Reply.text("You are Ada."))
    run = dev.start(open_stdin=True)
    c = _connect(run, port)
    c.send_line("who am I?")
    assert "You are Bob." in c.read_until(b"\n> ")
    c.send_line("/reset")
    assert "history cleared" in c.read_until(b"\n> ")
    c.send_line("who am I now?")
    assert "I do not know." in c.read_until(b"\n> ")
    run.send("who am I?\n")
    assert wait_for(lambda: len(llm_server.requests) == 5, 20)
    out = _end(run, c)
    assert "session: restored 2 messages from /claw_history.log" in out
    assert _convo(llm_server.requests[2]) == [("user", "I am Bob"), ("assistant", "Hello Bob."), ("user", "who am I?")]
    assert _convo(llm_server.requests[3]) == [("user", "who am I now?")]
    assert _convo(llm_server.requests[4]) == [("user", "I am Ada"), ("assistant", "Hello Ada."), ("user", "who am I?")]
    assert "You are Ada." in out


def test_one_turn_at_a_time_per_session_and_a_bounded_queue(tmp_path: Path, llm_server: LLMServer,
                                                             unix_device: Any) -> None:
    """Lines typed on Telnet while its turn runs wait in the session (at most 4); the fifth is
    refused with a note; a line that waited becomes the next turn (the model answered with text,
    so there was no tool call to steer)."""
    import threading

    gate = threading.Semaphore(0)
    replies = [Reply.text("first answer"), Reply.text("second answer")]

    def held(_req: Any) -> Reply:
        gate.acquire(timeout=60)
        return replies.pop(0) if replies else Reply.text("a later answer")

    llm_server.responder = held
    port = free_port()
    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": port}}, network=WIFI)
    spec["model"]["read_timeout"] = 60
    dev = unix_device(build(tmp_path, spec, secrets=SECRETS), secrets=NVS)
    run = dev.start(open_stdin=True)
    try:
        c = _connect(run, port)
        c.send_line("one")
        assert wait_for(lambda: len(llm_server.requests) == 1, 20)
        for k in range(2, 7):
            c.send_line(f"line {k}")
        assert "[busy] 4 lines of this conversation are waiting already; this one was not sent" in c.read_until(
            b"\n> ")
        c.send_line("/status")
        assert "session telnet: in a turn, 4 waiting" in c.read_until(b"\n> ")
        gate.release()
        assert "first answer" in c.read_until(b"\n> ")
        assert wait_for(lambda: len(llm_server.requests) == 2, 20)  # the next turn: the first line that waited
        assert _convo(llm_server.requests[1]) == [("user", "one"), ("assistant", "first answer"), ("user", "line 2")]
        c.send_line("/reset")  # a command is answered during the turn, and the queue is the session's
        assert "history cleared" in c.read_until(b"\n> ")
        gate.release()
        assert "second answer" in c.read_until(b"\n> ")
    finally:
        for _ in range(4):
            gate.release()
        run.kill()
