"""claw_http (the device HTTP/1.1 client) unit-tested on the MicroPython unix-port VM (real sockets)
against a raw TCP server that sends exact bytes: Content-Length, chunked (extensions, trailers, 1-byte chunks),
EOF-delimited bodies, keep-alive reuse, a closed idle connection, size caps and refusals."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import pytest

from clawgen.sim.tcpserver import ThreadedServer
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.httpscript import read_request


class RawServer(ThreadedServer):
    """Answers each request (read up to the blank line + Content-Length) with the next scripted bytes.
    A script entry of None closes the connection instead of answering."""

    def __init__(self, script: list[bytes | None], close_after_each: bool = False) -> None:
        self.script = list(script)
        self.close_after_each = close_after_each
        self.requests: list[bytes] = []
        super().__init__("127.0.0.1", 0, None, conn_timeout=30)

    def _converse(self, conn: socket.socket, number: int) -> None:
        buf = b""
        while self.script:
            got = read_request(conn, buf)
            if got is None:
                return
            head, body, buf = got
            self.requests.append(head + b"\r\n\r\n" + body)
            reply = self.script.pop(0)
            if reply is None:
                return
            conn.sendall(reply)
            if self.close_after_each or b"Connection: close" in reply:
                return


PROG = """
import json
import random
import claw_buf as B
import claw_http as H

out = B.Buf("t", %(cap)d)
conn = H.Conn("127.0.0.1", %(port)d, False, 2, 2)
for cap in %(caps)r:
    try:
        st, hd, n, cut = H.block(conn.request(b"POST /x HTTP/1.1\\r\\nHost: t\\r\\nContent-Length: 2\\r\\n\\r\\n", b"{}", out, cap))
        print(json.dumps({"status": st, "body": str(bytes(out.view()), "utf-8"), "cut": cut}))
    except H.HttpError as e:
        print(json.dumps({"error": e.kind, "msg": e.msg}))
conn.close()
"""


@pytest.fixture
def raw_server():
    made: list[RawServer] = []

    def make(script: list[bytes | None], close_after_each: bool = False) -> RawServer:
        made.append(RawServer(script, close_after_each))
        return made[-1]

    yield make
    for srv in made:
        srv.close()


@pytest.fixture(scope="module")
def runtime_build(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("http"), make_spec("http://127.0.0.1:9/v1"))


def run_client(unix_run, build_dir: Path, server: RawServer, caps: list[int], cap: int = 256) -> list[dict]:
    prog = PROG % {"port": server.port, "caps": caps, "cap": cap}
    res = unix_run(build_dir, modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def resp(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    return ("HTTP/1.1 {}\r\n{}\r\n".format(status, "".join(h + "\r\n" for h in headers))).encode() + body


def test_content_length_keep_alive_reuse(runtime_build, unix_run, raw_server):
    srv = raw_server([resp(b"hello", "Content-Length: 5"), resp(b"world!", "Content-Length: 6")])
    got = run_client(unix_run, runtime_build, srv, [0, 0])
    assert got == [{"status": 200, "body": "hello", "cut": False}, {"status": 200, "body": "world!", "cut": False}]
    assert srv.connections == 1  # the second request reused the connection
    assert srv.requests[0].endswith(b"\r\n\r\n{}")


@pytest.mark.parametrize("chunks", [
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"5;ext=1\r\nhello\r\n6;name=\"v\"\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n",
    b"".join(b"1\r\n%s\r\n" % bytes([c]) for c in b"hello world") + b"0\r\n\r\n",
    b"B\r\nhello world\r\n0\r\n\r\n",
], ids=["plain", "extensions+trailers", "one-byte", "upper-hex"])
def test_chunked_bodies(runtime_build, unix_run, raw_server, chunks):
    srv = raw_server([resp(chunks, "Transfer-Encoding: chunked"), resp(b"next", "Content-Length: 4")])
    got = run_client(unix_run, runtime_build, srv, [0, 0])
    assert got == [{"status": 200, "body": "hello world", "cut": False},
                   {"status": 200, "body": "next", "cut": False}]
    assert srv.connections == 1  # the chunked body was consumed exactly, so the connection was reused


def test_body_until_eof_and_closed_idle_connection(runtime_build, unix_run, raw_server):
    srv = raw_server([resp(b"to the end", "Connection: close"), resp(b"again", "Content-Length: 5"),
                     None, resp(b"fresh", "Content-Length: 5")])
    got = run_client(unix_run, runtime_build, srv, [0, 0, 0])
    assert [g["body"] for g in got] == ["to the end", "again", "fresh"]
    # 1st closes by design; 3rd request finds the kept-alive connection closed and reconnects once.
    assert srv.connections == 3


def test_oversize_body_refused_or_capped(runtime_build, unix_run, raw_server):
    big = b"x" * 1000
    srv = raw_server([resp(big, "Content-Length: 1000"), resp(big, "Content-Length: 1000"),
                     resp(b"3E8\r\n" + big + b"\r\n0\r\n\r\n", "Transfer-Encoding: chunked"),
                     resp(b"3E8\r\n" + big + b"\r\n0\r\n\r\n", "Transfer-Encoding: chunked")],
                    close_after_each=True)
    got = run_client(unix_run, runtime_build, srv, [0, 100, 0, 100], cap=512)
    assert got[0] == {"error": "size", "msg": "response from 127.0.0.1 is 1000 bytes, larger than the 512-byte buffer"}
    assert got[1] == {"status": 200, "body": "x" * 100, "cut": True}
    assert got[2]["error"] == "size" and "larger than the 512-byte buffer" in got[2]["msg"]
    assert got[3] == {"status": 200, "body": "x" * 100, "cut": True}


def test_cut_body_and_error_status(runtime_build, unix_run, raw_server):
    srv = raw_server([resp(b'{"error": {"message": "no such model"}}', "Content-Length: 39",
                          status="404 Not Found"),
                     resp(b"only part", "Content-Length: 50")])
    got = run_client(unix_run, runtime_build, srv, [0, 0])
    assert got[0] == {"status": 404, "body": '{"error": {"message": "no such model"}}', "cut": False}
    assert got[1]["error"] == "net"
    assert "closed the connection after 9 of 50 body bytes" in got[1]["msg"]


def test_connection_refused_is_a_clear_error(runtime_build, unix_run, raw_server):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    srv = raw_server([])
    srv.port = port
    got = run_client(unix_run, runtime_build, srv, [0])
    assert got == [{"error": "net", "msg": "connect 127.0.0.1: connection refused"}]


def test_large_error_page_keeps_the_status(runtime_build, unix_run, raw_server):
    page = b"<html>" + b"bad gateway " * 200 + b"</html>"
    srv = raw_server([resp(page, f"Content-Length: {len(page)}", status="502 Bad Gateway")])
    got = run_client(unix_run, runtime_build, srv, [0], cap=512)
    assert got[0]["status"] == 502 and got[0]["cut"] is True
    assert got[0]["body"] == page[:512].decode()


def test_malformed_numbers_in_the_head_and_chunks_are_protocol_errors(runtime_build, unix_run, raw_server):
    """A status that is not three digits, a negative Content-Length (it made the body's length -1
    with status 200) and a negative chunk size are the peer's protocol errors, each named; found by
    mutating responses at random (the client never raised anything but HttpError there)."""
    srv = raw_server([resp(b"x", "Content-Length: 1", status="99999999999999999999 Big"),
                      resp(b"x", "Content-Length: 1", status="-200 Negative"),
                      resp(b"x", "Content-Length: -1"),
                      resp(b"-5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked"),
                      resp(b"fine", "Content-Length: 4")], close_after_each=True)
    got = run_client(unix_run, runtime_build, srv, [0, 0, 0, 0, 0])
    assert got == [{"error": "proto", "msg": "malformed HTTP status line from 127.0.0.1"},
                   {"error": "proto", "msg": "malformed HTTP status line from 127.0.0.1"},
                   {"error": "proto", "msg": "bad Content-Length from 127.0.0.1"},
                   {"error": "proto", "msg": "bad chunk size from 127.0.0.1"},
                   {"status": 200, "body": "fine", "cut": False}], got


FUZZ = """
import json, gc
import claw_buf as B
import claw_http as H

out = B.Buf("t", 256)
base = None
for i in range(%(n)d):
    conn = H.Conn("127.0.0.1", %(port)d, False, 1, 1)
    try:
        st, hd, n, cut = H.block(conn.request(b"POST /x HTTP/1.1\\r\\nHost: t\\r\\nContent-Length: 2\\r\\n\\r\\n", b"{}", out, 256))
        print(json.dumps({"status": st, "n": n, "len": len(out.view()), "cut": cut}))
    except H.HttpError as e:
        print(json.dumps({"error": e.kind}))
    conn.close()
    conn = None
    gc.collect()
    if i == %(n)d // 4:
        base = gc.mem_alloc()
print("HEAP", base, gc.mem_alloc())
"""


def test_mutated_responses_end_in_a_status_or_an_http_error(runtime_build, unix_run, raw_server):
    """300 seeded mutations of good responses (tests/mutate.py: status lines, headers added, mangled
    or removed, bodies cut or spliced, chunk framing, bare LF line ends), each on its own connection:
    every request ends in a three-digit status with a body length within the buffer, or in the
    client's HttpError (no other exception), and nothing stays in the heap."""
    from tests.mutate import good_http_response, mutate_http_message

    rng = random.Random(20261205)
    script = [mutate_http_message(*good_http_response(rng, json.dumps({"ok": True, "x": "y" * rng.randint(0, 50)})
                                                       .encode()), rng) for _ in range(300)]
    srv = raw_server(script, close_after_each=True)
    res = unix_run(runtime_build, modules={"prog": FUZZ % {"n": len(script), "port": srv.port}}, entry="import prog",
                   timeout=300)
    assert res.returncode == 0 and "Traceback" not in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]
    rows = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(rows) == len(script)
    answers = [r for r in rows if "status" in r]
    assert all(100 <= r["status"] <= 999 and 0 <= r["n"] == r["len"] <= 256 for r in answers), answers
    kinds = {r.get("error") for r in rows}
    assert {None, "proto", "size", "net"} <= kinds, kinds  # answered, and refused each way
    base, end = (int(x) for x in res.stdout.split("HEAP ")[1].split())
    assert end - base < 512, (base, end)
