"""The device's own files on flash (the session log, the memory notes, the audit ring, the limits'
counters) damaged at random between two boots, seeded: bytes flipped, random bytes inserted, the
file cut, or replaced by random bytes (what a worn or half-written flash can hold). The device boots,
restores what it can, answers /status, /audit and a line, and never prints an internal error or a
traceback. (Torn writes at every offset: test_persistence_cuts.py, test_memory_unix.py.)"""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

CASES = int(os.environ.get("CLAWGEN_FUZZ_CASES", "40"))  # (240 over four seeds on 2026-12-05: all booted)
FILES = ("/claw_audit.log", "/claw_history.log", "/claw_limits.dat", "/claw_memory.log")


def _damage(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    op = rng.randrange(4)
    if op == 0 and out:
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif op == 1:
        out = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 600)))
    elif op == 2 and out:
        i = rng.randrange(len(out))
        out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 50)))
    else:
        out = out[:rng.randint(0, len(out))]
    return bytes(out)


def test_damaged_files_on_flash_never_stop_the_device(tmp_path: Path, llm_server, unix_device) -> None:
    spec = make_spec(llm_server.base_url, persistence={"mode": "flash", "max_bytes": 4096},
                     memory={"max_bytes": 2048}, audit={"enabled": True, "entries": 8},
                     capabilities=["system", "memory"])
    out = build(tmp_path / "b", spec)
    llm_server.responder = lambda _req: Reply.text("fine")
    dev = unix_device(out)
    llm_server.push(Reply.tool_calls(("memory_save", {"text": "the relay is on pin 5"})), Reply.text("saved"),
                    Reply.tool_calls(("system_uptime", {})), Reply.text("up"))
    first = dev.run(stdin=["remember the pin", "uptime?", "hello", "/quit"])
    assert first.returncode == 0, first.stdout + first.stderr
    good = dev.files()
    assert set(FILES) <= set(good), sorted(good)
    rng = random.Random(20261205)
    logs = ""
    for case in range(CASES):
        for name in FILES:
            dev.write_file(name, _damage(good[name], rng))
        res = dev.run(stdin=["/status", "/audit 3", "hello", "/quit"])
        text = res.stdout + res.stderr
        shown = f"case {case}:\n{text[-2000:]}"
        assert res.returncode == 0 and "Traceback" not in text and "[error] internal" not in text, shown
        assert "agent rt-agent on esp32s3" in text and "> fine" in text, shown
        logs += res.stderr
        for name in FILES:
            dev.write_file(name, good[name])
    # The damage reached the readers: torn records were found and dropped.
    assert "session log: dropped a torn record" in logs and "memory: dropped a torn record" in logs
