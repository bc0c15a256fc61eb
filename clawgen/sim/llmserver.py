"""A scripted model server on 127.0.0.1 (real HTTP over TCP): OpenAI-compatible chat completions,
or, with ``api="anthropic"``, the Anthropic Messages API (replies from ``Reply.message``,
``Reply.tool_use``, ``Reply.anthropic_error``, ``Reply.overloaded``; ``message()``/``tool_use()``
build the bodies).

Used by ``clawgen sim --model mock`` (with a responder function) and by the tests (with a
queue of scripted replies, including transport faults: error statuses, Retry-After, malformed
or cut bodies, oversize bodies, chunked-encoding variants, connection resets, stalls).
Every request is recorded (method, path, headers, body, parsed JSON).

HTTP is written by hand on purpose: the faults need byte-level control that http.server
does not give.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clawgen.sim.tcpserver import ThreadedServer

if TYPE_CHECKING:  # (ssl is imported when a server speaks TLS: `clawgen sim --model mock` starts faster)
    import ssl

MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any = None  # the parsed body, None when it is not JSON

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages", []))

    @property
    def system(self) -> Any:
        """The Anthropic top-level system prompt (None in an OpenAI request)."""
        return (self.json or {}).get("system")


def completion(content: str | None = None, tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str | None = None, model: str = "mock-model") -> dict[str, Any]:
    """A chat.completion response body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-clawsim",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> dict[str, Any]:
    """One tool call; arguments as a dict (JSON-encoded here) or a raw string (may be invalid)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def message(content: str | None = None, tool_uses: list[dict[str, Any]] | None = None,
            stop_reason: str | None = None, model: str = "mock-model") -> dict[str, Any]:
    """An Anthropic Messages response body: a text block (when content) and tool_use blocks."""
    blocks: list[dict[str, Any]] = []
    if content is not None:
        blocks.append({"type": "text", "text": content})
    blocks += tool_uses or []
    return {
        "id": "msg_clawsim", "type": "message", "role": "assistant", "model": model, "content": blocks,
        "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"), "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def tool_use(name: str, arguments: dict[str, Any], call_id: str = "toolu_1") -> dict[str, Any]:
    """One Anthropic tool_use content block."""
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


@dataclass
class Reply:
    """One scripted response. Build with the class methods."""

    kind: str = "body"  # body | chunked | truncated | reset | stall | close
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunk_style: str = "plain"
    stall_seconds: float = 0.0
    stall_after_headers: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status=status, body=json.dumps(obj).encode(),
                   headers={"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        return cls.json(completion(content, **kw))

    @classmethod
    def tool_calls(cls, *calls: dict[str, Any] | tuple[str, Any], content: str | None = None) -> Reply:
        built = [c if isinstance(c, dict) else tool_call(c[0], c[1], f"call_{i + 1}")
                 for i, c in enumerate(calls)]
        return cls.json(completion(content, built))

    @classmethod
    def error(cls, status: int, message: str = "upstream error", headers: dict[str, str] | None = None) -> Reply:
        return cls.json({"error": {"message": message, "type": "server_error", "code": status}},
                        status=status, headers=headers)

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        return cls.error(429, "rate limited", headers={"Retry-After": str(retry_after)})

    @classmethod
    def message(cls, content: str | None, stop_reason: str | None = None) -> Reply:
        """Anthropic: a text answer (stop_reason end_turn unless given, e.g. max_tokens)."""
        return cls.json(message(content, stop_reason=stop_reason))

    @classmethod
    def tool_use(cls, *calls: dict[str, Any] | tuple[str, dict[str, Any]], content: str | None = None) -> Reply:
        """Anthropic: tool_use blocks (ids toolu_1, toolu_2, ... for (name, input) tuples)."""
        built = [c if isinstance(c, dict) and "type" in c else tool_use(c[0], c[1], f"toolu_{i + 1}")
                 for i, c in enumerate(calls)]
        return cls.json(message(content, built))

    @classmethod
    def anthropic_error(cls, status: int, kind: str, message: str,
                        headers: dict[str, str] | None = None) -> Reply:
        """Anthropic's error body: {"type": "error", "error": {"type": kind, "message": message}}."""
        return cls.json({"type": "error", "error": {"type": kind, "message": message}}, status=status,
                        headers=headers)

    @classmethod
    def overloaded(cls, status: int = 529, headers: dict[str, str] | None = None) -> Reply:
        return cls.anthropic_error(status, "overloaded_error", "Overloaded", headers)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "application/json") -> Reply:
        return cls(status=status, body=body, headers={"Content-Type": content_type})

    @classmethod
    def malformed(cls) -> Reply:
        return cls.raw(b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"')

    @classmethod
    def truncated(cls, obj: Any | None = None, keep: float = 0.5) -> Reply:
        """Content-Length says the whole body, only part of it is sent, then the connection closes."""
        body = json.dumps(obj if obj is not None else completion("this answer is cut off " * 8)).encode()
        r = cls(kind="truncated", body=body, headers={"Content-Type": "application/json"})
        r.stall_seconds = keep  # reused as the fraction kept
        return r

    @classmethod
    def oversize(cls, size: int) -> Reply:
        """A valid completion whose body is at least `size` bytes."""
        return cls.text("x" * size)

    @classmethod
    def chunked(cls, obj: Any, style: str = "plain") -> Reply:
        """Chunked transfer encoding; style: plain | extensions | trailers | one_byte | upper_hex."""
        return cls(kind="chunked", body=json.dumps(obj).encode(), chunk_style=style,
                   headers={"Content-Type": "application/json"})

    @classmethod
    def reset(cls) -> Reply:
        """Read the request, then reset the connection (RST) without answering."""
        return cls(kind="reset")

    @classmethod
    def close(cls) -> Reply:
        """Read the request, then close the connection cleanly without answering."""
        return cls(kind="close")

    @classmethod
    def stall(cls, seconds: float, after_headers: bool = False, then: Reply | None = None) -> Reply:
        """Send nothing (or only the status line and headers) for `seconds`, then close."""
        return cls(kind="stall", stall_seconds=seconds, stall_after_headers=after_headers,
                   body=(then or cls.text("too late")).body, headers={"Content-Type": "application/json"})


Responder = Callable[[Request], Reply]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 529: "Overloaded"}


class LLMServer(ThreadedServer):
    """Serve scripted replies; `push()` queues them, `responder` answers when the queue is empty."""

    def __init__(self, responder: Responder | None = None, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None, api: str = "openai") -> None:
        """tls: a server-side SSLContext to speak HTTPS (base_url then says https://localhost);
        api: "openai" or "anthropic", the wire format of the server's own error replies."""
        self.responder = responder
        self.api = api
        self.requests: list[Request] = []
        self.unexpected = 0  # requests that found neither a scripted reply nor a responder
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        super().__init__(host, port, tls, conn_timeout=30)

    @property
    def base_url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}/v1"  # the name test certificates are made for
        return f"http://{self.host}:{self.port}/v1"

    def push(self, *replies: Reply) -> LLMServer:
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self, req: Request) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(req)
        self.unexpected += 1
        if self.api == "anthropic":
            return Reply.anthropic_error(500, "api_error", "no scripted reply left in the test LLM server")
        return Reply.error(500, "no scripted reply left in the test LLM server")

    def _converse(self, conn: socket.socket, number: int) -> None:
        buf = b""
        while not self._closing.is_set():
            req, buf = _read_request(conn, buf)
            if req is None:
                return
            self.requests.append(req)
            reply = self._next_reply(req)
            keep_alive = req.headers.get("connection", "").lower() == "keep-alive"
            if not self._send(conn, reply, keep_alive) or not keep_alive:
                return

    def _send(self, conn: socket.socket, r: Reply, keep_alive: bool) -> bool:
        """Write one reply; False when the connection must end after it."""
        if r.kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if r.kind == "close":
            return False
        head = [f"HTTP/1.1 {r.status} {_REASONS.get(r.status, 'Status')}"]
        headers = dict(r.headers)
        if r.kind == "chunked":
            headers["Transfer-Encoding"] = "chunked"
            if r.chunk_style == "trailers":
                headers["Trailer"] = "X-Checksum"
        else:
            headers["Content-Length"] = str(len(r.body))
        headers["Connection"] = "keep-alive" if keep_alive and r.kind in ("body", "chunked") else "close"
        head += [f"{k}: {v}" for k, v in headers.items()]
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode()
        if r.kind == "stall":
            if r.stall_after_headers:
                conn.sendall(head_bytes)
            self._closing.wait(r.stall_seconds)
            return False
        if r.kind == "truncated":
            keep = max(1, int(len(r.body) * r.stall_seconds))
            conn.sendall(head_bytes + r.body[:keep])
            return False
        if r.kind == "chunked":
            conn.sendall(head_bytes)
            for piece in _chunks(r.body, r.chunk_style):
                conn.sendall(piece)
            return True
        conn.sendall(head_bytes + r.body)
        return True


def _chunks(body: bytes, style: str) -> list[bytes]:
    if style == "one_byte":
        parts = [body[i:i + 1] for i in range(len(body))]
    else:
        step = max(1, len(body) // 3 + 1)
        parts = [body[i:i + step] for i in range(0, len(body), step)]
    out = []
    for p in parts:
        size = f"{len(p):X}" if style == "upper_hex" else f"{len(p):x}"
        ext = ';name="value";x=1' if style == "extensions" else ""
        out.append(f"{size}{ext}\r\n".encode() + p + b"\r\n")
    if style == "trailers":
        out.append(b"0\r\nX-Checksum: abc123\r\nX-Other: 1\r\n\r\n")
    elif style == "extensions":
        out.append(b"0;final=yes\r\n\r\n")
    else:
        out.append(b"0\r\n\r\n")
    return out


def _read_request(conn: socket.socket, buf: bytes) -> tuple[Request | None, bytes]:
    while b"\r\n\r\n" not in buf:
        if len(buf) > 65536:
            return None, b""
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None, b""
    method, path = parts[0], parts[1]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunked = _read_chunked_body(conn, rest)
        if chunked is None:
            return None, b""
        body, rest = chunked
    else:
        text = headers.get("content-length", "0") or "0"
        if not text.isdigit():  # (a negative or malformed length: the request cannot be framed)
            return None, b""
        length = min(int(text), MAX_REQUEST_BYTES)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, rest = rest[:length], rest[length:]
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return Request(method, path, headers, body, parsed), rest


def _read_chunked_body(conn: socket.socket, rest: bytes) -> tuple[bytes, bytes] | None:
    """(body, what follows it) of a chunked request body; None when it cannot be read: a chunk
    size that is not hex, a body over MAX_REQUEST_BYTES, or the peer gone before its end."""

    def more() -> bool:
        nonlocal rest
        if len(rest) > MAX_REQUEST_BYTES + 65536:
            return False
        chunk = conn.recv(65536)
        rest += chunk
        return bool(chunk)

    body = b""
    while True:
        while b"\r\n" not in rest:
            if not more():
                return None
        line, rest = rest.split(b"\r\n", 1)
        text = line.split(b";")[0].strip()
        if not text or text.strip(b"0123456789abcdefABCDEF"):
            return None
        size = int(text, 16)
        if size == 0:
            while b"\r\n\r\n" not in b"\r\n" + rest:
                if not more():
                    return None
            _, rest = (b"\r\n" + rest).split(b"\r\n\r\n", 1)
            return body, rest
        if len(body) + size > MAX_REQUEST_BYTES:
            return None
        while len(rest) < size + 2:
            if not more():
                return None
        body += rest[:size]
        rest = rest[size + 2:]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until predicate() holds (used by tests for server-side effects)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
