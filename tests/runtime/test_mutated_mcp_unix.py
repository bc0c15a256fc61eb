"""Hostile HTTP requests to the device's MCP server (claw_mcp on the MicroPython unix-port VM, real
sockets): seeded mutations (tests/mutate.py) of good requests (the request line, headers added with
odd values (non-UTF-8 bytes, negative or huge lengths, 5,000-byte values), mangled or removed, the
body cut, spliced or framed as chunks, bare LF line ends), each on its own connection. Every one
gets an HTTP answer with a three-digit status, or the connection closed; the server answers a good
ping after them all, no request ends in its catch-all, the heap in use does not grow and the device
never prints a traceback.
$CLAWGEN_FUZZ_CASES runs more."""

from __future__ import annotations

import json
import os
import random
import socket
from collections import Counter

import pytest

from tests.mutate import mutate_http_message
from tests.runtime.test_mcp_unix import HOST, TOKEN, boot, chips, finish, free_port, mcp_build, rpc  # noqa: F401

CASES = int(os.environ.get("CLAWGEN_FUZZ_CASES", "200"))  # (1,500 on 2026-12-05: 2 s)


def _good_request(rng: random.Random) -> tuple[list[bytes], bytes]:
    body = json.dumps(rng.choice([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ])).encode()
    return [b"POST /mcp HTTP/1.1", b"Host: device", b"Content-Type: application/json",
            b"Accept: application/json, text/event-stream", b"Authorization: Bearer " + TOKEN.encode(),
            b"Content-Length: %d" % len(body)], body


def _exchange(port: int, raw: bytes) -> str:
    """Send raw, end the sending side, read until the device closes: the status, or 'closed'."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        try:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return "closed"  # the device refused it before reading it all (a reset)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return "closed"
    line = data.split(b"\r\n", 1)[0].split()
    assert len(line) >= 2 and line[0] == b"HTTP/1.1" and len(line[1]) == 3 and line[1].isdigit(), data[:300]
    return line[1].decode()


def _allocated(port: int) -> int:
    """The device's heap in use, from its system_free_heap tool (it collects first)."""
    reply = rpc(port, {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "system_free_heap", "arguments": {}}})
    return int(json.loads(reply["result"]["content"][0]["text"])["allocated"])


@pytest.mark.filterwarnings("ignore:ping is removed")
def test_mutated_requests_get_an_http_answer_and_the_server_goes_on(tmp_path, unix_device, chips):  # noqa: F811
    port = free_port()
    out = mcp_build(tmp_path, port)
    _, run = boot(unix_device, out, port)
    # Found by this fuzzing: a protocol version header that is not UTF-8 ended in the catch-all
    # (UnicodeError) and the connection closed unanswered; it is an unsupported version (400).
    lines, body = _good_request(random.Random(1))
    assert _exchange(port, b"\r\n".join([*lines, b"MCP-Protocol-Version: \xff\xfe"]) + b"\r\n\r\n" + body) == "400"
    rng = random.Random(20261205)
    seen: Counter[str] = Counter()
    allocated: list[int] = []
    for case in range(CASES):
        if case in (CASES // 4, CASES - 1):  # after a warm-up, and at the end: the heap in use (after a collect)
            allocated.append(_allocated(port))
        raw = mutate_http_message(*_good_request(rng), rng, request=True)
        try:
            seen[_exchange(port, raw)] += 1
        except (TimeoutError, AssertionError) as e:
            raise AssertionError(f"case {case}: {raw[:400]!r}: {e}") from None
    assert rpc(port, {"jsonrpc": "2.0", "id": 9, "method": "ping"}) == {"jsonrpc": "2.0", "id": 9, "result": {}}
    assert allocated[1] - allocated[0] < 1024, allocated  # nothing the requests did stays in the heap
    res = finish(run)  # exit 0, no traceback, no token in the output
    # No request ended in the server's catch-all (a non-UTF-8 MCP-Protocol-Version did: UnicodeError).
    assert "request dropped" not in res.stdout + res.stderr, res.stdout[-3000:]
    # The mutations reach the server's refusals and its answers both.
    assert {"200", "400"} <= set(seen) and len(seen) >= 4, seen
