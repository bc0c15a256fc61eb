"""A scripted Telegram Bot API server on 127.0.0.1 (real HTTP, or HTTPS with a given SSLContext).

It serves what the device's Telegram channel (claw_telegram) uses: ``getUpdates`` (``offset``
confirms earlier updates, ``timeout`` long-polls until a message arrives, ``limit``) and
``sendMessage`` (records what the device sent; refuses an empty text or one longer than 4,096
characters, as Telegram does), both as GET with a query string or POST with a JSON or form body.
Paths are ``/bot<token>/<method>``; another token gets 401 like Telegram's (``token=None``
accepts any: the interactive server of ``python -m clawgen.sim.botapi``).

Tests (and ``clawgen sim --telegram-api``) play the user with ``say(chat_id, text)``, read the
bot's answers with ``sent`` / ``wait_sent()``, and script faults for the next requests of a
method with ``fail(method, Fault...)``: an error status with Telegram's error body (401, 409,
429 with ``parameters.retry_after``, 5xx), a garbage body, a stall, a reset. (An oversize answer
is a user's long message: ``say(chat, "x" * 20000)``.)

HTTP is written by hand, like clawgen.sim.llmserver: faults need byte-level control.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from clawgen.sim.tcpserver import ThreadedServer

if TYPE_CHECKING:
    import ssl

MAX_TEXT = 4096  # Telegram's limit on a message's text (characters)
MAX_REQUEST_BYTES = 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


@dataclass
class Call:
    """One request the device made: the Bot API method, its parameters, the raw request."""

    method: str
    params: dict[str, Any]
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Sent:
    """One sendMessage the server accepted."""

    chat_id: int
    text: str
    message_id: int


@dataclass(frozen=True)
class Fault:
    """A scripted answer instead of the normal one. Build with the class methods."""

    kind: str  # status | garbage | stall | reset | raw
    status: int = 200
    description: str = ""
    retry_after: int | None = None
    size: int = 0
    seconds: float = 0.0
    body: bytes = b""

    @classmethod
    def status_code(cls, status: int, description: str = "", retry_after: int | None = None) -> Fault:
        """Telegram's error body {"ok": false, "error_code": status, "description": ...}."""
        words = {401: "Unauthorized", 404: "Not Found",
                 409: "Conflict: terminated by other getUpdates request; make sure that only one bot "
                      "instance is running",
                 429: f"Too Many Requests: retry after {retry_after or 0}"}
        return cls("status", status=status, description=description or words.get(status, "Internal Server Error"),
                   retry_after=retry_after)

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls.status_code(401)

    @classmethod
    def conflict(cls) -> Fault:
        return cls.status_code(409)

    @classmethod
    def too_many(cls, retry_after: int) -> Fault:
        return cls.status_code(429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 502) -> Fault:
        return cls.status_code(status, "Bad Gateway" if status == 502 else "Internal Server Error")

    @classmethod
    def garbage(cls) -> Fault:
        """200 with a body that is not JSON (a captive portal's page, a proxy's error)."""
        return cls("garbage", body=b"<html><body>\x00\xff not json {{{ </body>")

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """Read the request, answer nothing for ``seconds``, then close."""
        return cls("stall", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then reset the connection (RST)."""
        return cls("reset")

    @classmethod
    def raw(cls, body: bytes, status: int = 200) -> Fault:
        """Exactly this body (with Content-Length), e.g. JSON of the wrong shape."""
        return cls("raw", status=status, body=body)


class BotApiServer(ThreadedServer):
    """A Bot API for one bot token. ``say()`` queues a user's message; the device's getUpdates
    long poll receives it; its sendMessage calls land in ``sent``."""

    def __init__(self, token: str | None, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None,
                 on_message: Callable[[BotApiServer, Sent], None] | None = None) -> None:
        self.token = token
        self.on_message = on_message
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.rejected: list[tuple[str, str]] = []  # (method, description) of requests answered 400/401/404
        self._updates: deque[dict[str, Any]] = deque()
        self._next_update = 1000
        self._next_message = 1
        self._faults: dict[str, deque[Fault]] = {}
        self._cond = threading.Condition()
        super().__init__(host, port, tls, conn_timeout=None)

    # -- the test's side ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL for transports.telegram.api (https://localhost:PORT with TLS: the name the
        test certificates are made for)."""
        if self.tls is not None:
            return f"https://localhost:{self.port}"
        return f"http://{self.host}:{self.port}"

    def say(self, chat_id: int, text: str | None, *, first_name: str = "Tester", chat_type: str = "private",
            extra: dict[str, Any] | None = None) -> int:
        """A user writes ``text`` in chat ``chat_id`` (text None: a photo); returns the update_id."""
        message: dict[str, Any] = {
            "message_id": self._next_message, "date": int(time.time()),
            "from": {"id": abs(chat_id), "is_bot": False, "first_name": first_name},
            "chat": {"id": chat_id, "type": chat_type, "first_name": first_name},
        }
        self._next_message += 1
        if text is None:
            message["photo"] = [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90}]
        else:
            message["text"] = text
        message.update(extra or {})
        return self.update({"message": message})

    def update(self, body: dict[str, Any]) -> int:
        """Queue a raw update (its update_id is assigned here)."""
        with self._cond:
            uid = self._next_update
            self._next_update += 1
            self._updates.append({"update_id": uid, **body})
            self._cond.notify_all()
        return uid

    def fail(self, method: str, *faults: Fault) -> BotApiServer:
        """The next requests of ``method`` ("getUpdates", "sendMessage") get these faults, in order."""
        with self._cond:
            self._faults.setdefault(method, deque()).extend(faults)
        return self

    @property
    def pending(self) -> int:
        """Updates not yet confirmed by the device (a getUpdates offset past them)."""
        with self._cond:
            return len(self._updates)

    def faults_left(self, method: str) -> int:
        with self._cond:
            return len(self._faults.get(method, ()))

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [s.text for s in list(self.sent) if chat_id is None or s.chat_id == chat_id]

    def wait_sent(self, count: int, timeout: float = 20.0, chat_id: int | None = None) -> list[str]:
        """Wait until at least ``count`` messages were sent (to ``chat_id``); returns their texts."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.texts(chat_id)) < count:
            time.sleep(0.02)
        return self.texts(chat_id)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def _wake(self) -> None:
        with self._cond:  # a getUpdates long poll waiting for a message
            self._cond.notify_all()

    # -- serving ------------------------------------------------------------------------------

    def _converse(self, conn: socket.socket, number: int) -> None:
        buf = b""
        while not self._closing.is_set():
            got = _read_request(conn, buf)
            if got is None:
                return
            method_line, headers, body, buf = got
            keep = headers.get("connection", "").lower() != "close"
            if not self._answer(conn, method_line, headers, body, keep) or not keep:
                return

    def _answer(self, conn: socket.socket, line: str, headers: dict[str, str], body: bytes, keep: bool) -> bool:
        parts = line.split(" ")
        target = parts[1] if len(parts) > 1 else "/"
        url = urlsplit(target)
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ctype = headers.get("content-type", "")
        if body and "json" in ctype:
            try:
                data = json.loads(body)
                if isinstance(data, dict):
                    params.update(data)
            except ValueError:
                pass
        elif body:
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        segs = url.path.strip("/").split("/")
        method = segs[-1] if len(segs) >= 2 else ""
        self.calls.append(Call(method, params, url.path, headers, body))
        if len(segs) < 2 or not segs[-2].startswith("bot") or (
                self.token is not None and segs[-2] != f"bot{self.token}"):
            self.rejected.append((method, "Unauthorized"))
            return self._send_json(conn, 401, _error(401, "Unauthorized"), keep)
        with self._cond:
            q = self._faults.get(method)
            fault = q.popleft() if q else None
        if fault is not None:
            return self._send_fault(conn, fault, keep)
        if method == "getUpdates":
            return self._send_json(conn, 200, {"ok": True, "result": self._get_updates(params)}, keep)
        if method == "sendMessage":
            return self._send_message(conn, params, keep)
        if method == "getMe":
            return self._send_json(conn, 200, {"ok": True, "result": {"id": 1, "is_bot": True,
                                                                      "first_name": "clawgen test bot"}}, keep)
        self.rejected.append((method, "Not Found"))
        return self._send_json(conn, 404, _error(404, "Not Found"), keep)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            offset = int(params.get("offset", 0))
            timeout = max(0.0, float(params.get("timeout", 0)))
            limit = max(1, min(100, int(params.get("limit", 100))))
        except (TypeError, ValueError):
            offset, timeout, limit = 0, 0.0, 100
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                if offset:
                    while self._updates and self._updates[0]["update_id"] < offset:
                        self._updates.popleft()  # confirmed by the offset
                if self._updates or self._closing.is_set():
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            return [dict(u) for u in list(self._updates)[:limit]]

    def _send_message(self, conn: socket.socket, params: dict[str, Any], keep: bool) -> bool:
        text = params.get("text")
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.rejected.append(("sendMessage", "chat not found"))
            return self._send_json(conn, 400, _error(400, "Bad Request: chat not found"), keep)
        if not isinstance(text, str) or not text.strip():
            self.rejected.append(("sendMessage", "message text is empty"))
            return self._send_json(conn, 400, _error(400, "Bad Request: message text is empty"), keep)
        if _utf16_len(text) > MAX_TEXT:
            self.rejected.append(("sendMessage", "message is too long"))
            return self._send_json(conn, 400, _error(400, "Bad Request: message is too long"), keep)
        with self._cond:
            mid = self._next_message
            self._next_message += 1
            sent = Sent(chat_id, text, mid)
            self.sent.append(sent)
        if self.on_message is not None:
            self.on_message(self, sent)
        msg = {"message_id": mid, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
               "from": {"id": 1, "is_bot": True, "first_name": "clawgen test bot"}, "text": text}
        return self._send_json(conn, 200, {"ok": True, "result": msg}, keep)

    def _send_fault(self, conn: socket.socket, f: Fault, keep: bool) -> bool:
        if f.kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if f.kind == "stall":
            self._closing.wait(f.seconds)
            return False
        if f.kind == "status":
            err = _error(f.status, f.description)
            extra = {}
            if f.retry_after is not None:
                err["parameters"] = {"retry_after": f.retry_after}
                extra["Retry-After"] = str(f.retry_after)
            return self._send_json(conn, f.status, err, keep, extra)
        return self._send_raw(conn, f.status, f.body, "text/html" if f.kind == "garbage" else "application/json",
                              keep)

    def _send_json(self, conn: socket.socket, status: int, obj: Any, keep: bool,
                   extra: dict[str, str] | None = None) -> bool:
        return self._send_raw(conn, status, json.dumps(obj, ensure_ascii=False).encode(), "application/json",
                              keep, extra)

    def _send_raw(self, conn: socket.socket, status: int, body: bytes, ctype: str, keep: bool,
                  extra: dict[str, str] | None = None) -> bool:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Server: clawgen-botapi",
                f"Content-Type: {ctype}", f"Content-Length: {len(body)}",
                f"Connection: {'keep-alive' if keep else 'close'}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return True


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


def _utf16_len(text: str) -> int:
    """Telegram counts a message's length in UTF-16 code units."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _read_request(conn: socket.socket, buf: bytes) -> tuple[str, dict[str, str], bytes, bytes] | None:
    while b"\r\n\r\n" not in buf:
        if len(buf) > 65536:
            return None
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    try:
        length = min(int(headers.get("content-length", "0") or 0), MAX_REQUEST_BYTES)
    except ValueError:
        return None
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return lines[0], headers, rest[:length], rest[length:]



def main(argv: list[str] | None = None) -> int:
    """`python -m clawgen.sim.botapi [--port P] [--chat ID]`: a local Bot API for `clawgen sim
    --telegram-api URL`. Each line typed here is a message from chat ID (or `ID: text` from that
    chat); what the bot sends is printed as it arrives. Any bot token is accepted."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m clawgen.sim.botapi", description=main.__doc__)
    ap.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--chat", type=int, default=123456789, help="the chat id of lines typed without one")
    args = ap.parse_args(argv)

    def show(_server: BotApiServer, sent: Sent) -> None:
        for line in sent.text.splitlines() or [""]:
            print(f"bot -> {sent.chat_id}: {line}", flush=True)

    try:
        server = BotApiServer(None, port=args.port, on_message=show)
    except OSError as e:
        print(f"botapi: cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"botapi: a Bot API on {server.url}: run `clawgen sim SPEC --telegram-api {server.url}`; type a "
          f"line to send it from chat {args.chat} (or 'CHAT_ID: text'); Ctrl-D ends", file=sys.stderr, flush=True)
    try:
        for raw in sys.stdin:
            line = raw.rstrip("\n")
            head, sep, rest = line.partition(":")
            if sep and head.strip().lstrip("-").isdigit():
                server.say(int(head), rest.strip())
            elif line.strip():
                server.say(args.chat, line)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
