"""The simulator's mock model server (clawgen/sim/llmserver.py, behind `clawgen sim --model mock`)
listens on a host port: a request it cannot frame ends that connection quietly; none crashes its
thread with a traceback on the sim's console or keeps a thread spinning."""

from __future__ import annotations

import json
import random
import socket
import time

import pytest

from clawgen.sim.mockmodel import start_mock_model
from tests.mutate import mutate_http_message

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
HEAD = [b"POST /v1/chat/completions HTTP/1.1", b"Host: x", b"Content-Type: application/json",
        b"Content-Length: %d" % len(BODY)]
ODD = [
    # Each raised ValueError out of the connection's thread ("Exception in thread ..." on stderr):
    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n{}",
    b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    # A chunked body cut off by the client's close: the thread read b"" forever.
    b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\n",
    b"\xff\xfe\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"POST http://[x/ HTTP/1.1\r\n\r\n",
]


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass


def test_requests_it_cannot_frame_end_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    srv = start_mock_model()
    try:
        for data in [*ODD, *(mutate_http_message(HEAD, BODY, rng, request=True) for _ in range(150))]:
            _send(srv.port, data)
        deadline = time.monotonic() + 10
        while any(t.is_alive() for t in srv._handlers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(t.is_alive() for t in srv._handlers)  # (no thread left reading an ended connection)
        # And it still answers.
        _send(srv.port, b"\r\n".join(HEAD) + b"\r\n\r\n" + BODY)
        assert srv.requests and srv.requests[-1].json is not None
    finally:
        srv.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err, err
