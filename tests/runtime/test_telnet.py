"""The Telnet transport on the MicroPython VM: one client at a time (the newest wins), a reconnect
resumes the session, confirmations are asked on the transport the request came from."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

PORT = 2323


class TelnetClient:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def read_until(self, marker: bytes, timeout: float = 10) -> str:
        end = time.monotonic() + timeout
        while marker not in self.buf:
            if time.monotonic() > end:
                raise AssertionError(f"no {marker!r} in {self.buf!r}")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed; got {self.buf!r}")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        text, self.buf = self.buf[:i], self.buf[i:]
        return text.decode()

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def telnet_agent(tmp_path: Path, llm_server, mpvm):
    from clawgen.sim import vm

    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": PORT}},
                     network={"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"})
    out = build(tmp_path, spec, secrets={"wifi_ssid": "lab-net", "wifi_password": "hunter22"})
    sim = vm.Simulation(out, stdin=vm.OPEN, port_map={PORT: 0},
                        secrets={"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"})
    try:
        ev = sim.wait_event("listening", timeout=20)
        yield sim, ev["host"], ev["port"]
    finally:
        sim.kill()


def test_reconnect_resumes_session(telnet_agent, llm_server):
    sim, host, port = telnet_agent
    llm_server.push(Reply.text("Nice to meet you, Ada."), Reply.text("Your name is Ada."))
    c = TelnetClient(host, port)
    assert "/help for commands" in c.read_until(b"\n> ")
    c.send_line("my name is Ada")
    assert "Nice to meet you, Ada." in c.read_until(b"\n> ")
    c.close()  # drop the connection without /quit
    c = TelnetClient(host, port)
    c.read_until(b"\n> ")
    c.send_line("what is my name?")
    assert "Your name is Ada." in c.read_until(b"\n> ")
    second = llm_server.requests[1]
    assert [(m["role"], m["content"]) for m in second.messages[1:]] == [
        ("user", "my name is Ada"), ("assistant", "Nice to meet you, Ada."), ("user", "what is my name?")]
    c.send_line("/quit")
    assert "bye" in c.read_until(b"bye")
    sim.end_input()  # the console's input ends too: the agent stops
    res = sim.wait(20)
    assert res.returncode == 0, res.stderr


def test_new_client_takes_over(telnet_agent, llm_server):
    sim, host, port = telnet_agent
    llm_server.push(Reply.text("first answer"), Reply.text("second answer"))
    first = TelnetClient(host, port)
    first.read_until(b"\n> ")
    first.send_line("one")
    first.read_until(b"first answer")
    second = TelnetClient(host, port)
    second.read_until(b"\n> ")
    assert "[session moved to a new Telnet connection]" in first.read_until(b"connection]")
    second.send_line("/status")
    assert "turns 1, history 2/" in second.read_until(b"\n> ")
    second.send_line("/quit")
    second.read_until(b"bye")
    first.close()
    sim.end_input()
    assert sim.wait(20).returncode == 0


def test_confirm_is_asked_on_telnet(telnet_agent, llm_server):
    sim, host, port = telnet_agent
    llm_server.push(Reply.tool_calls(("set_relay", {"on": True})), Reply.text("Relay on."))
    c = TelnetClient(host, port)
    c.read_until(b"\n> ")
    c.send_line("relay on please")
    assert "Allow tool set_relay" in c.read_until(b"[y/N] ")
    c.send_line("y")
    text = c.read_until(b"\n> ")
    assert "[tool] set_relay" in text and "Relay on." in text
    assert '"relay": "on"' in llm_server.requests[1].messages[-1]["content"]
    c.send_line("/quit")
    c.read_until(b"bye")
    sim.end_input()  # the console's input ends too: the agent stops
    res = sim.wait(20)
    assert res.returncode == 0, res.stderr
    assert "Allow tool" not in res.stdout  # nothing was asked on the UART
    assert "wifi: connected" in res.stdout and "telnet: listening on port 2323" in res.stdout
    assert "hunter22" not in res.stdout + res.stderr


def test_long_and_non_utf8_telnet_lines(tmp_path: Path, llm_server, mpvm):
    from clawgen.sim import vm

    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": PORT}},
                     network={"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"},
                     limits={"content_bytes": 256})
    out = build(tmp_path, spec, secrets={"wifi_ssid": "lab-net", "wifi_password": "hunter22"})
    sim = vm.Simulation(out, stdin=vm.OPEN, port_map={PORT: 0},
                        secrets={"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"})
    try:
        ev = sim.wait_event("listening", timeout=20)
        llm_server.push(Reply.text("got it"))
        c = TelnetClient(ev["host"], ev["port"])
        c.read_until(b"\n> ")
        c.sock.sendall(b"\xc3\x28 not utf-8\r\n")
        assert "[error] that line is not UTF-8 text; nothing was sent" in c.read_until(b"\n> ")
        # Longer than the content buffer, cut mid-character: cut on a character boundary, with a marker.
        c.send_line("é" * 400)
        assert "got it" in c.read_until(b"\n> ")
        (req,) = llm_server.requests
        user = req.messages[-1]["content"]
        assert user == "é" * 104 + " ...[truncated: kept 208 of 800 bytes]"
        c.send_line("/quit")
        c.read_until(b"bye")
        c.close()
    finally:
        sim.kill()


def test_telnet_port_in_use_is_reported(tmp_path: Path, llm_server, sim_run):
    spec = make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": PORT}},
                     network={"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"})
    out = build(tmp_path, spec, secrets={"wifi_ssid": "lab-net", "wifi_password": "hunter22"})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        res = sim_run(out, stdin=["/status", "/quit"], port_map={PORT: busy.getsockname()[1]},
                      secrets={"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"})
    assert res.returncode == 0, res.stderr
    assert "telnet: cannot listen on port 2323: the port is in use (EADDRINUSE)" in res.stdout
    assert "agent rt-agent on esp32s3" in res.stdout  # the UART still works
