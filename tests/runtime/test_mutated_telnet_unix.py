"""Hostile bytes on the device's Telnet console (claw_transport on the MicroPython unix-port VM, a
real host port, after the password): seeded random lines of Telnet commands (IAC, options,
subnegotiations cut short), control characters, escape sequences, NUL, BS/DEL runs, invalid or cut
UTF-8, 3,000-byte runs, commands with odd arguments, random bytes. After each, /status is answered;
the device never prints an internal error or a traceback."""

from __future__ import annotations

import os
import random
import time

from tests.llm_server import Reply
from tests.runtime.test_telnet_password import device, logged_in  # noqa: F401

CASES = int(os.environ.get("CLAWGEN_FUZZ_CASES", "150"))  # (2,400 over six seeds on 2026-12-05: all answered)
PIECES = (b"\xff", b"\xff\xfb\x01", b"\xff\xfd\x03", b"\xff\xfa\x18\x01", b"\xff\xf0", b"\xff\xff", b"\x00",
          b"\x1b[2J", b"\x1b]0;title\x07", b"\x03", b"\x04", b"\x08" * 5, b"\x7f" * 5, b"\r", b"\n", b"\r\x00",
          b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xc2\x85", b"\xfe", b"\t",
          b"hello", b"/", b"/status x", b"/audit 99999999999999999999", b"/audit -1", b"/triggers", b"/tools",
          b"/reset", b"/help", b"a" * 3000)
END = b"last error:"  # the last line of /status


def test_mutated_console_lines_never_break_the_device(device, llm_server):  # noqa: F811
    run, port = device
    llm_server.responder = lambda _req: Reply.text("fine")
    c = logged_in(run, port, wait=10)
    rng = random.Random(20261205)
    refused_utf8 = 0
    for case in range(CASES):
        raw = b"".join(rng.choice(PIECES) if rng.random() < 0.8 else bytes(rng.randrange(256) for _ in range(8))
                       for _ in range(rng.randint(1, 8)))
        c.sock.sendall(raw + b"\r\n/status\r\n")
        end = time.monotonic() + 20
        while END not in c.buf:  # (bytes: the device echoes the invalid UTF-8 it was sent)
            assert time.monotonic() < end, f"case {case}: {raw!r}: no /status answer: {c.buf[-800:]!r}"
            chunk = c.sock.recv(4096)
            assert chunk, f"case {case}: {raw!r}: the device closed the connection: {c.buf[-800:]!r}"
            c.buf += chunk
        refused_utf8 += c.buf.count(b"[error] that line is not UTF-8 text")
        c.buf = c.buf[c.buf.index(END) + len(END):]
    c.send_line("/quit")
    run.end_input()
    res = run.wait(30)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Traceback" not in out and "[error] internal" not in out, out[-3000:]
    assert refused_utf8 and llm_server.requests  # the lines reached the UTF-8 check and the model both
