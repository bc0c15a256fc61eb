"""Seeded random mutations of structured input, for the tests that feed hostile variants of good input
to the toolchain (tests/spec/test_mutated_specs.py) and to the device (tests/runtime/test_mutated_*_unix.py:
JSON values of model replies and Bot API answers; HTTP responses and requests, mutate_http_message).
The same seed gives the same inputs on every run: a failure names its case and reproduces."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

# Values a peer may send where another type is expected: nothing, numbers no C int holds, text the
# device prints or looks up (long, NUL, a line separator), containers, a deep array.
ODD_SCALARS: tuple[Any, ...] = (None, 0, -1, 2**70, 1.5e308, True, "", "x" * 3000, "\u0000\ud7ff\u2028é", "add",
                                '{"a":1,"b":2}', "tool_calls", "stop")
ODD_KEYS = ("id", "type", "function", "name", "arguments", "content", "role", "text", "x")


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.45:
        return rng.choice(ODD_SCALARS)
    if r < 0.6 and depth < 3:
        return [odd_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if r < 0.75 and depth < 3:
        return {rng.choice(ODD_KEYS): odd_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if r < 0.8:
        return json.loads("[" * 300 + "]" * 300)
    return rng.choice([{"a": 1, "b": 2}, [], {}, "null"])


def _paths(obj: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*path, i))


def mutate_json(obj: Any, rng: random.Random) -> Any:
    """A copy of ``obj`` with one to three of its values replaced by odd ones or (in a dict) removed."""
    out = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(out) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = out
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and rng.random() < 0.25:
            del parent[path[-1]]
        else:
            parent[path[-1]] = odd_value(rng)
    return out


# What a YAML value of a spec may be replaced by: wrong types, huge and odd numbers, tags that point
# nowhere or are not ours, anchors, a block where a scalar was.
ODD_YAML = ("0", "-1", "99999999999999999999", "1.5", "''", "null", "[]", "{}", "[1, 2]", "{a: b}", "true",
            '"\\x00"', "'${X}'", "!secret nope", "!include nope.yaml", "!!binary aGk=", "&a x", "*a", "1e309",
            "0x10", "'%s'", '"\\u2028"', "~", "!secret", "- x", "2026-01-01", ".inf", "!!python/object:os.system x",
            # names no file system takes (a handler, an include, a CA file...)
            "x" * 300, "tools/" + "y" * 300 + ".py:f", "!include " + "z" * 300 + ".yaml", "a/" * 2000,
            # URLs the schema's pattern takes but a URL parser refuses
            "http://[x/v1", "'https://h\uff0fx/v1'", "http://h:99999/v1")


def mutate_yaml_lines(text: str, rng: random.Random) -> str:
    """``text`` with one to three lines changed: a value replaced, a line deleted, duplicated,
    re-indented or swapped with another."""
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(lines))
        op = rng.random()
        line = lines[k]
        if op < 0.35 and ":" in line:
            lines[k] = line.partition(":")[0] + ": " + rng.choice(ODD_YAML)
        elif op < 0.5 and len(lines) > 1:
            del lines[k]
        elif op < 0.65:
            lines.insert(k, lines[rng.randrange(len(lines))])
        elif op < 0.8:
            lines[k] = " " * rng.randint(0, 8) + line.lstrip()
        else:
            j = rng.randrange(len(lines))
            lines[k], lines[j] = lines[j], lines[k]
    return "\n".join(lines) + "\n"


# What an HTTP peer may put where a number, a header or a chunk size line belongs.
ODD_HTTP_VALUES = (b"-1", b"99999999999999999999999", b"abc", b"", b" 5", b"5 5", b"0x10", b"\x00", b"1e3", b"+3",
                   b"\xff\xfe", b"x" * 5000, b"chunked", b"chunked, gzip", b"identity")
ODD_STATUS_LINES = (b"HTTP/1.1 abc OK", b"HTTP/9.9 200 OK", b"HTTP/1.1 200", b"HTTP/1.1", b"", b"ICY 200 OK",
                    b"HTTP/1.1 99999999999999999999 X", b"HTTP/1.1 -200 X", b"HTTP/1.1 100 Continue",
                    b"HTTP/1.1 204 No Content", b"HTTP/1.1 301 Moved", b"x" * 4000)
ODD_HEADER_LINES = (b"no colon here", b":", b"X: " + b"a" * 9000, b"\x00\x01: \x02", b" folded")
ODD_CHUNK_LINES = (b"ffffffffffffffffffff\r\n", b"-5\r\n", b"zz\r\n", b"5;" + b"e" * 3000 + b"\r\n", b"\r\n",
                   b"0\r\n" + b"T: x\r\n" * 500)


def good_http_response(rng: random.Random, body: bytes) -> tuple[list[bytes], bytes]:
    """(head lines, body bytes) of a good 200 answer: by Content-Length, chunked or until EOF."""
    kind = rng.randrange(3)
    if kind == 0:
        return [b"HTTP/1.1 200 OK", b"Content-Type: application/json", b"Content-Length: %d" % len(body)], body
    if kind == 1:
        parts = []
        i = 0
        while i < len(body):
            piece = body[i:i + rng.randint(1, 16)]
            parts.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
            i += len(piece)
        return [b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked"], b"".join(parts) + b"0\r\n\r\n"
    return [b"HTTP/1.1 200 OK", b"Connection: close"], body


ODD_REQUEST_LINES = (b"POST /mcp HTTP/9.9", b"POST /mcp", b"POST  /mcp HTTP/1.1", b"GET /mcp HTTP/1.1", b"",
                     b"POST /mcp?x=\xff HTTP/1.1", b"POST " + b"/" * 3000 + b" HTTP/1.1", b"\x00\x01\x02",
                     b"PRI * HTTP/2.0")
ODD_REQUEST_HEADERS = (b"Content-Length", b"Transfer-Encoding", b"Authorization", b"Origin",
                       b"Mcp-Protocol-Version", b"Expect", b"Mcp-Session-Id")


def mutate_http_message(lines: list[bytes], body: bytes, rng: random.Random, *, request: bool = False) -> bytes:
    """A good response (or request) with one to three changes: the status (request) line, a
    header added, mangled or removed, the body's bytes or its chunk framing, the line ends."""
    lines = list(lines)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        if op == 0:
            lines[0] = rng.choice(ODD_REQUEST_LINES if request else ODD_STATUS_LINES)
        elif op == 1:
            names = ODD_REQUEST_HEADERS if request else (b"Content-Length", b"Transfer-Encoding", b"Retry-After",
                                                         b"Connection", b"Location")
            lines.append(rng.choice(names) + b": " + rng.choice(ODD_HTTP_VALUES))
        elif op == 2:
            odd = rng.choice([*ODD_HEADER_LINES, b"X-" + bytes(rng.randrange(256) for _ in range(10)) + b": v"])
            lines.insert(rng.randint(1, len(lines)), odd)
        elif op == 3 and len(lines) > 1:
            del lines[rng.randint(1, len(lines) - 1)]
        elif op == 4 and body:
            i = rng.randrange(len(body))
            body = body[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 10))) + body[i:]
        elif op == 5 and body:
            body = body[:rng.randrange(len(body))]
        elif op == 6:
            body = body.replace(b"\r\n", rng.choice([b"\n", b"\r", b"\r\n\r\n", b""]), 1)
        elif op == 7:
            body = rng.choice(ODD_CHUNK_LINES) + body
        else:
            lines = [x.replace(b": ", rng.choice([b":", b":   ", b" : ", b":\t"]), 1) for x in lines]
    end = rng.choice([b"\r\n", b"\r\n", b"\r\n", b"\n"])
    return end.join(lines) + end + end + body
