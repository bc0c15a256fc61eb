"""The memory capability on the MicroPython unix-port VM: memory_save / memory_search / memory_delete
over the notes log on the device's flash, its bounds (memory.note_bytes, memory.max_bytes with
compaction), a torn write across a power cycle, and the newest notes in the system prompt within
memory.prompt_bytes."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

LOG = "/claw_memory.log"
MAGIC = b"\xc1\x0b"


def decode_log(data: bytes) -> list[tuple[str, int, str]]:
    """Independent reader of the documented record format (templates/app/claw_memory.py.j2)."""
    out, off = [], 0
    while off < len(data):
        magic, n, crc = struct.unpack_from("<2sII", data, off)
        payload = data[off + 10:off + 10 + n]
        assert magic == MAGIC and len(payload) == n and zlib.crc32(payload) == crc
        out.append((payload[:1].decode(), struct.unpack("<I", payload[1:5])[0], payload[5:].decode()))
        off += 10 + n
    return out


def _agent(tmp_path: Path, base_url: str, **memory: Any) -> Path:
    spec = make_spec(base_url, capabilities=["memory"], tools=[])
    if memory:
        spec["memory"] = memory
    return build(tmp_path, spec)


def _results(req) -> list[str]:
    return [m["content"] for m in req.messages if m["role"] == "tool"]


def _calls(*calls: tuple[str, dict[str, Any]]) -> list[Reply]:
    """One model round per call, each followed by a text answer: a turn per call."""
    out = []
    for c in calls:
        out += [Reply.tool_calls(c), Reply.text("ok")]
    return out


def test_save_search_delete(tmp_path: Path, llm_server, unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url))
    llm_server.push(*_calls(("memory_save", {"text": "The cat is called Tom."}),
                            ("memory_save", {"text": "The user prefers Celsius."}),
                            ("memory_save", {"text": "The CAT likes fish."}),
                            ("memory_search", {"query": "cat"}),
                            ("memory_search", {"query": "cat fish"}),
                            ("memory_delete", {"id": 1}),
                            ("memory_delete", {"id": 1}),
                            ("memory_search", {"query": ""}),
                            ("memory_search", {"query": "dog"}),
                            ("memory_save", {"text": "   "})))
    res = dev.run(stdin=[f"q{i}" for i in range(10)] + ["/quit"])
    assert res.returncode == 0, res.stderr
    got = [_results(llm_server.requests[2 * i + 1])[0] for i in range(10)]
    assert got[0].startswith("saved note 1 (") and got[1].startswith("saved note 2 (")
    assert got[2].startswith("saved note 3 (")
    assert got[3] == "[3] The CAT likes fish.\n[1] The cat is called Tom."  # newest first, any case
    assert got[4] == "[3] The CAT likes fish."  # every word
    assert got[5] == "deleted note 1"
    assert got[6] == "error: there is no note 1; memory_search lists the notes with their ids"
    assert got[7] == "[3] The CAT likes fish.\n[2] The user prefers Celsius."
    assert got[8] == "no notes match"
    assert got[9] == "error: the note is empty"
    recs = decode_log(res.files[LOG])
    assert recs == [("s", 1, "The cat is called Tom."), ("s", 2, "The user prefers Celsius."),
                    ("s", 3, "The CAT likes fish."), ("d", 1, "")]
    # A power cycle: the same notes, and new ids go on from the highest.
    llm_server.push(*_calls(("memory_search", {"query": ""}), ("memory_save", {"text": "fourth"})))
    again = dev.run(stdin=["list", "save", "/quit"])
    assert again.returncode == 0, again.stderr
    assert _results(llm_server.requests[21]) == ["[3] The CAT likes fish.\n[2] The user prefers Celsius."]
    assert _results(llm_server.requests[23])[0].startswith("saved note 4 (")


def test_bounds_note_size_and_full_memory_with_compaction(tmp_path: Path, llm_server, unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url, max_bytes=1024, note_bytes=400))
    big = "n" * 400
    llm_server.push(*_calls(("memory_save", {"text": "x" * 401}),
                            ("memory_save", {"text": big}),
                            ("memory_save", {"text": big}),
                            ("memory_save", {"text": big}),  # 3 records of 415 bytes > 1024: refused
                            ("memory_delete", {"id": 1}),
                            ("memory_save", {"text": big})))  # fits once the log is compacted
    res = dev.run(stdin=[f"q{i}" for i in range(6)] + ["/quit"])
    assert res.returncode == 0, res.stderr
    got = [_results(llm_server.requests[2 * i + 1])[0] for i in range(6)]
    assert got[0] == "error: the note has 401 bytes, more than memory.note_bytes (400); save a shorter one"
    assert got[1].startswith("saved note 1 (415 of 1024 bytes")
    assert got[2].startswith("saved note 2 (830 of 1024 bytes")
    assert got[3] == ("error: memory is full (830 of 1024 bytes, memory.max_bytes); delete notes with "
                      "memory_delete first")
    assert got[4] == "deleted note 1"
    assert got[5].startswith("saved note 3 (830 of 1024 bytes")
    log = res.files[LOG]
    assert len(log) <= 1024 and decode_log(log) == [("s", 2, big), ("s", 3, big)]


@pytest.mark.parametrize("cut", [1, 9, 12, 20])
def test_a_torn_save_is_dropped_at_the_next_boot(tmp_path: Path, llm_server, unix_device, cut: int) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url))
    llm_server.push(*_calls(("memory_save", {"text": "first note"}), ("memory_save", {"text": "second note"})))
    first = dev.run(stdin=["a", "b", "/quit"])
    assert first.returncode == 0, first.stderr
    log = first.files[LOG]
    whole = len(decode_log(log)[0][2]) + 15
    dev.write_file(LOG, log[:whole + cut])  # the power went off while the second note was written
    llm_server.push(*_calls(("memory_search", {"query": "note"}), ("memory_save", {"text": "third note"})))
    second = dev.run(stdin=["list", "save", "/quit"])
    assert second.returncode == 0, second.stderr
    assert _results(llm_server.requests[5]) == ["[1] first note"]
    assert f"memory: dropped a torn record at the end of {LOG} ({cut} bytes)" in second.stderr
    assert _results(llm_server.requests[7])[0].startswith("saved note 2 (")
    assert decode_log(dev.files()[LOG]) == [("s", 1, "first note"), ("s", 2, "third note")]


def test_a_corrupt_record_ends_the_log(tmp_path: Path, llm_server, unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url))
    llm_server.push(*_calls(("memory_save", {"text": "one"}), ("memory_save", {"text": "two"}),
                            ("memory_save", {"text": "three"})))
    first = dev.run(stdin=["a", "b", "c", "/quit"])
    assert first.returncode == 0, first.stderr
    log = bytearray(first.files[LOG])
    log[18 + 15 + 2] ^= 0x20  # a bit of the second note's text: its crc fails
    dev.write_file(LOG, bytes(log))
    llm_server.push(*_calls(("memory_search", {"query": ""})))
    res = dev.run(stdin=["list", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _results(llm_server.requests[7]) == ["[1] one"]  # what follows a bad record is not trusted
    assert f"memory: dropped a torn record at the end of {LOG} ({len(log) - 18} bytes)" in res.stderr
    assert decode_log(res.files[LOG]) == [("s", 1, "one")]


def test_a_cut_compaction_leaves_the_log_intact(tmp_path: Path, llm_server, unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url))
    llm_server.push(*_calls(("memory_save", {"text": "kept"})))
    assert dev.run(stdin=["a", "/quit"]).returncode == 0
    dev.write_file(LOG + ".tmp", b"\xc1\x0b half a compaction")
    llm_server.push(*_calls(("memory_search", {"query": ""})))
    res = dev.run(stdin=["list", "/quit"])
    assert res.returncode == 0, res.stderr
    assert _results(llm_server.requests[3]) == ["[1] kept"]
    assert LOG + ".tmp" not in res.files


def _system(req) -> str:
    return req.messages[0]["content"]


def test_newest_notes_go_into_the_system_prompt_within_the_budget(tmp_path: Path, llm_server,
                                                                   unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url, prompt_bytes=200))
    llm_server.push(Reply.tool_calls(("memory_save", {"text": 'the "door" code\nis kept elsewhere'})),
                    Reply.text("saved"), Reply.text("plain"))
    res = dev.run(stdin=["remember", "hello", "/quit"])
    assert res.returncode == 0, res.stderr
    base = _system(llm_server.requests[0])
    assert "saved notes" not in base  # no notes yet at the start of the first turn
    assert _system(llm_server.requests[1]) == base  # a note saved during a turn shows from the next one
    notes = _system(llm_server.requests[2])[len(base):]
    assert notes == '\n\nYour saved notes (memory), newest first:\n[1] the "door" code\nis kept elsewhere'
    # More notes than the budget: the newest ones that fit, whole, newest first.
    saves = [("memory_save", {"text": f"note number {i:02d} " + "z" * 20}) for i in range(2, 8)]
    llm_server.push(Reply.tool_calls(*saves[:3]), Reply.tool_calls(*saves[3:]), Reply.text("saved"),
                    Reply.text("plain"))
    res = dev.run(stdin=["remember more", "hello", "/quit"])
    assert res.returncode == 0, res.stderr
    notes = _system(llm_server.requests[6])[len(base):]
    assert len(json.dumps(notes)) - 2 <= 200  # escaped, as it is in the request
    assert notes.startswith("\n\nYour saved notes (memory), newest first:\n[7] note number 07")
    ids = [int(line[1:line.index("]")]) for line in notes.splitlines() if line.startswith("[")]
    assert ids == [7, 6, 5]


def test_notes_reach_the_anthropic_system_prompt(tmp_path: Path, unix_device) -> None:
    from clawgen.sim.llmserver import LLMServer

    with LLMServer(api="anthropic") as ant:
        spec = make_spec(ant.base_url, capabilities=["memory"], tools=[])
        spec["model"]["api"] = "anthropic"
        dev = unix_device(build(tmp_path, spec))
        ant.push(Reply.tool_use(("memory_save", {"text": "prefers tea"})), Reply.message("saved"),
                 Reply.message("hello"))
        res = dev.run(stdin=["remember", "hi", "/quit"])
        assert res.returncode == 0, res.stderr
        base = ant.requests[0].system
        assert isinstance(base, str) and "saved notes" not in base
        assert ant.requests[2].system == base + "\n\nYour saved notes (memory), newest first:\n[1] prefers tea"
