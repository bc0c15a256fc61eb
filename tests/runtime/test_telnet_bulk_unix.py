"""Telnet input in bulk on the MicroPython unix-port VM (issue 9, item 12): a pasted 60 KB line is
read in chunks into the fixed content buffer within one poll of the serving loop (it used to be
read 256 bytes per poll and handled one byte at a time, stalling the agent for seconds), cut at the
bound with the usual marker; Telnet commands, line ends, NUL, backspace and other control bytes
inside a bulk chunk are handled as before."""

from __future__ import annotations

import json
from pathlib import Path

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient, free_port

HOST = "127.0.0.1"
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22"}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}

# Drives claw_transport.Telnet with a client socket that has `data` waiting (the hardware edge is a
# plain object with the socket's recv/send/close; EAGAIN when drained). Prints one JSON line.
PROG = """
import json
import claw_buf as B
import claw_transport as T


class Cli:
    def __init__(self, data):
        self.data = data
        self.recvs = 0

    def recv(self, n):
        if not self.data:
            raise OSError(11)
        self.recvs += 1
        d = self.data[:n]
        self.data = self.data[n:]
        return d

    def send(self, b):
        return len(b)

    def close(self):
        pass


def run(data):
    t = T.Telnet(0)
    t.cli = Cli(data)
    B.content.reset()
    first = t.poll()
    rest = []
    while True:
        line = t.poll()
        if line is None:
            break
        rest.append(line)
    t.srv.close()
    return {"first": first, "rest": rest, "recvs": t.cli.recvs}


big = b"x" * 60000 + b"\\r\\n"
mixed = (b"ab\\xff\\xfb\\x01cd\\x00e\\x1b[Af\\tg" + b"h" * 700 + b"\\x08\\x08i\\r\\n"
         + b"\\xff\\xf4j\\x7fk\\r" + b"\\nl\\n")
print("RESULT " + json.dumps({"big": run(big), "mixed": run(mixed)}))
"""


def test_bulk_line_is_read_in_one_poll_and_cut(tmp_path: Path, llm_server, unix_run):
    out = build(tmp_path, make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": 2323}},
                                    network=WIFI, limits={"content_bytes": 1024}), secrets=SECRETS)
    res = unix_run(out, modules={"prog": PROG}, entry="import prog")
    assert res.returncode == 0, res.stderr
    (line,) = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    got = json.loads(line[len("RESULT "):])
    big = got["big"]
    # The whole pasted line arrived in the first poll, cut to the 1024-byte buffer with the marker.
    assert big["first"] == "x" * (1024 - 48) + " ...[truncated: kept 976 of 60000 bytes]"
    assert big["rest"] == []
    assert big["recvs"] == 60002 // 512 + 1
    mixed = got["mixed"]
    # IAC WILL 1 and IAC IP skipped, NUL and other control bytes dropped, backspace erases,
    # DEL erases, CR LF is one line end, a lone LF ends a line.
    assert mixed["first"] == "abcde[Afg" + "h" * 698 + "i"  # ESC and TAB dropped
    assert mixed["rest"] == ["k", "l"]


def test_60k_line_over_real_telnet_then_the_agent_answers(tmp_path: Path, llm_server, unix_device):
    port = free_port()
    out = build(tmp_path, make_spec(llm_server.base_url, transports={"uart": True, "telnet": {"port": port}},
                                    network=WIFI), secrets=SECRETS)
    dev = unix_device(out, secrets=NVS)
    with dev.start(open_stdin=True) as run:
        llm_server.push(Reply.text("that was long"), Reply.text("short one"))
        c = TelnetClient(HOST, port, wait=20)
        c.read_until(b"\n> ")
        c.sock.sendall(b"y" * 60000 + b"\r\nsecond line\r\n")
        assert "that was long" in c.read_until(b"that was long", timeout=30)
        assert "short one" in c.read_until(b"short one", timeout=30)
        c.send_line("/quit")
        c.read_until(b"bye")
        c.close()
        run.end_input()
        res = run.wait(20)
    assert res.returncode == 0, res.stderr
    first, second = llm_server.requests
    # Cut to the content buffer (2000 bytes + the marker), then by the agent to the history bound.
    user = first.messages[-1]["content"]
    assert user.startswith("y" * 900) and "...[truncated: kept " in user and len(user) < 1100
    assert second.messages[-1]["content"] == "second line"
