"""A scripted HTTP(S) server on 127.0.0.1 for the device HTTP client tests on the unix-port VM.

Each request (read up to the blank line, then Content-Length bytes) is answered by the next
scripted reply, a list of actions run in order on the connection:

- ``bytes``: send them;
- ``Drip(data, every)``: send one byte every ``every`` seconds (a slow server);
- ``Pause(seconds)``: wait;
- ``Stall(seconds)``: wait, then close (a server that hangs mid-reply);
- ``CLOSE``: close the connection now; ``RESET``: reset it (RST).

After a reply that did not close, the connection stays open for the next request (keep-alive).
``connections`` counts accepted TCP connections, ``handshakes`` the completed TLS handshakes,
``requests`` holds (connection number, head, body) of every request.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from clawgen.sim.llmserver import completion
from clawgen.sim.tcpserver import ThreadedServer


@dataclass(frozen=True)
class Drip:
    data: bytes
    every: float = 0.1


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Stall:
    seconds: float


CLOSE = "close"
RESET = "reset"
Action = bytes | Drip | Pause | Stall | str


@dataclass
class Seen:
    conn: int  # 1-based number of the TCP connection the request came on
    head: bytes
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name.lower().encode():
                return v.strip().decode("latin-1")
        return None


def response(body: bytes, *headers: str, status: str = "200 OK", length: bool = True) -> bytes:
    """Status line, headers (+ Content-Length unless length=False), blank line, body."""
    hs = list(headers)
    if length:
        hs.append(f"Content-Length: {len(body)}")
    return ("HTTP/1.1 {}\r\n{}\r\n".format(status, "".join(h + "\r\n" for h in hs))).encode() + body


def chunked(body: bytes, size: int = 7) -> bytes:
    """body as chunks of `size` bytes plus the last chunk (no trailers)."""
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def answer(text: str) -> bytes:
    """A compact chat-completions body whose answer is `text`."""
    return json.dumps(completion(text), separators=(",", ":")).encode()


def read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """One request from ``conn`` (``buf``: bytes already read): (head, body, what follows), its
    body Content-Length bytes; None when the peer closes first."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(buf) < n:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    return head, buf[:n], buf[n:]


class ScriptServer(ThreadedServer):
    def __init__(self, *replies: list[Action], tls: ssl.SSLContext | None = None) -> None:
        self.replies: deque[list[Action]] = deque(replies)
        self.requests: list[Seen] = []
        self.unexpected = 0
        self._lock = threading.Lock()
        super().__init__("127.0.0.1", 0, tls, conn_timeout=30)

    def url(self, path: str = "/v1", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def push(self, *replies: list[Action]) -> None:
        with self._lock:
            self.replies.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self.replies)

    def _converse(self, conn: socket.socket, number: int) -> None:
        buf = b""
        while not self._closing.is_set():
            got = read_request(conn, buf)
            if got is None:
                return
            head, body, buf = got
            with self._lock:
                self.requests.append(Seen(number, head, body))
                reply = self.replies.popleft() if self.replies else None
            if reply is None:
                self.unexpected += 1
                reply = [response(b"no scripted reply left", status="500 Internal Server Error"), CLOSE]
            if not self._play(conn, reply):
                return

    def _play(self, conn: socket.socket, reply: list[Action]) -> bool:
        """Run one reply's actions; False when the connection was closed."""
        for act in reply:
            if isinstance(act, bytes):
                conn.sendall(act)
            elif isinstance(act, Drip):
                for i in range(len(act.data)):
                    conn.sendall(act.data[i:i + 1])
                    if self._closing.wait(act.every):
                        return False
            elif isinstance(act, Pause):
                if self._closing.wait(act.seconds):
                    return False
            elif isinstance(act, Stall):
                self._closing.wait(act.seconds)
                return False
            elif act == RESET:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
            elif act == CLOSE:
                return False
            else:
                raise ValueError(f"unknown action {act!r}")
        return True

    def wait_idle(self, timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.pending:
                return True
            time.sleep(0.01)
        return False
