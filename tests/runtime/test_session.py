"""Sessions on the MicroPython unix-port VM: bounded history, the persistence log's record format,
restore at boot, a torn or corrupt tail dropped, compaction at the bound. The log is a real file on
the device's filesystem; a power cycle is a second run of the same device (same files, same NVS)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

LOG = "/claw_history.log"
MAGIC = b"\xc1\x0a"


def decode_log(data: bytes) -> list[tuple[str, dict]]:
    """Independent reader of the documented record format (docs/runtime.md)."""
    out, off = [], 0
    while off < len(data):
        magic, n, crc = struct.unpack_from("<2sII", data, off)
        payload = data[off + 10:off + 10 + n]
        assert magic == MAGIC and len(payload) == n and zlib.crc32(payload) == crc
        out.append((payload[:1].decode(), json.loads(payload[1:])))
        off += 10 + n
    return out


@pytest.fixture
def persistent(tmp_path: Path, llm_server):
    return build(tmp_path, make_spec(llm_server.base_url, persistence={"mode": "flash", "max_bytes": 4096},
                                     limits={"history_messages": 6}))


def _history(req) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in req.messages[1:-1]]


def test_log_written_and_restored(persistent, llm_server, unix_device):
    dev = unix_device(persistent)
    llm_server.push(Reply.text("A1"), Reply.text("A2"))
    first = dev.run(stdin=["Q1", "Q2", "/quit"])
    assert first.returncode == 0, first.stderr
    log = first.files[LOG]
    assert [(r, m["role"], m["content"]) for r, m in decode_log(log)] == [
        ("u", "user", "Q1"), ("a", "assistant", "A1"), ("u", "user", "Q2"), ("a", "assistant", "A2")]
    llm_server.push(Reply.text("A3"))
    second = dev.run(stdin=["Q3", "/quit"])  # power cycle: the same flash
    assert second.returncode == 0, second.stderr
    assert "session: restored 4 messages" in second.stdout
    assert _history(llm_server.requests[2]) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2"),
                                                 ("assistant", "A2")]


@pytest.mark.parametrize("cut", [1, 5, 11])
def test_torn_last_record_dropped(persistent, llm_server, unix_device, cut):
    dev = unix_device(persistent)
    llm_server.push(Reply.text("A1"), Reply.text("A2"))
    log = dev.run(stdin=["Q1", "Q2", "/quit"]).files[LOG]
    dev.write_file(LOG, log[:-cut])  # power cut while writing the last record (the answer A2)
    llm_server.push(Reply.text("A3"))
    res = dev.run(stdin=["Q3", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "dropped a torn record" in res.stderr
    # Q2 lost its answer, so the pair goes; everything before stays.
    assert _history(llm_server.requests[2]) == [("user", "Q1"), ("assistant", "A1")]
    assert [m["content"] for _, m in decode_log(res.files[LOG])] == ["Q1", "A1", "Q3", "A3"]


def test_corrupt_record_ends_the_log(persistent, llm_server, unix_device):
    dev = unix_device(persistent)
    llm_server.push(Reply.text("A1"), Reply.text("A2"))
    log = bytearray(dev.run(stdin=["Q1", "Q2", "/quit"]).files[LOG])
    first_len = 10 + struct.unpack_from("<I", log, 2)[0]
    second_len = 10 + struct.unpack_from("<I", log, first_len + 2)[0]
    log[first_len + second_len + 12] ^= 0xFF  # flip a byte inside the third record (Q2)
    dev.write_file(LOG, bytes(log))
    llm_server.push(Reply.text("A3"))
    res = dev.run(stdin=["Q3", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _history(llm_server.requests[2]) == [("user", "Q1"), ("assistant", "A1")]


def test_history_bounded_and_log_compacted(persistent, llm_server, unix_device):
    dev = unix_device(persistent)
    n = 12
    answers = [f"answer {i} " + "x" * 300 for i in range(n)]
    llm_server.push(*[Reply.text(a) for a in answers])
    res = dev.run(stdin=[f"question {i}" for i in range(n)] + ["/quit"], timeout=60)
    assert res.returncode == 0, res.stderr
    # In RAM: at most history_messages (6) earlier messages are sent.
    assert len(llm_server.requests[-1].messages) == 1 + 6 + 1
    assert _history(llm_server.requests[-1])[0] == ("user", f"question {n - 4}")
    log = res.files[LOG]
    assert len(log) <= 4096
    records = decode_log(log)
    assert records[-1][1]["content"] == answers[-1]
    assert [r for r, _ in records] == ["u", "a"] * (len(records) // 2)
    # After a power cycle the compacted log gives back the newest history (at most 6 messages).
    llm_server.push(Reply.text("after reboot"))
    again = dev.run(stdin=["one more", "/quit"])
    assert again.returncode == 0, again.stderr
    kept = [m["content"] for _, m in records][-6:]
    assert [c for _, c in _history(llm_server.requests[-1])] == kept
    assert kept[-1] == answers[-1]


def test_reset_empties_the_log(persistent, llm_server, unix_device):
    dev = unix_device(persistent)
    llm_server.push(Reply.text("A1"))
    res = dev.run(stdin=["Q1", "/reset", "/quit"])
    assert res.returncode == 0, res.stderr
    assert res.files[LOG] == b""
    # After a power cycle nothing comes back.
    llm_server.push(Reply.text("A2"))
    res = dev.run(stdin=["Q2", "/quit"])
    assert res.returncode == 0, res.stderr
    assert [(m["role"], m["content"]) for m in llm_server.requests[1].messages[1:]] == [("user", "Q2")]
