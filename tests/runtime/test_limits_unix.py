"""Rate limits and the boot-loop guard on the MicroPython unix-port VM (claw_limits).

Whole devices: turns against the scripted model server, power cycles as several runs of one
unix_device (its filesystem persists), the wall clock fixed by the entry program
(claw_loop.wall), the boot-loop guard through the console's /triggers commands.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

from clawgen.sim.llmserver import LLMServer, Reply, wait_for
from tests.runtime.agent_builds import build, make_spec

W0 = 1764835200 + 600  # 2025-12-04 08:10:00 UTC: 50 minutes left in the hour, 15 h 50 min in the day
PATH = "/claw_limits.dat"


# The entry program: the wall clock is the number in /wall.txt (a test changes it between runs).
PROG = """
import claw_loop
with open("/wall.txt") as f:
    W = int(f.read())
claw_loop.wall = lambda: W
import claw_main
claw_main.main()
"""


def _entry(wall: int) -> dict[str, Any]:
    return {"modules": {"prog": PROG}, "extra_files": {"/wall.txt": str(wall).encode()}}


def _build(tmp: Path, base_url: str, **spec: Any) -> Path:
    return build(tmp, make_spec(base_url, tools=[], capabilities=[], **spec))


def _answers(llm_server: LLMServer, n: int) -> None:
    for i in range(n):
        llm_server.push(Reply.text(f"answer {i + 1}"))


def test_hourly_limit_is_reported_and_survives_a_power_cycle(tmp_path: Path, llm_server: LLMServer,
                                                              unix_device: Any) -> None:
    out = _build(tmp_path, llm_server.base_url, limits={"model_requests_per_hour": 2})
    _answers(llm_server, 3)
    dev = unix_device(out, **_entry(W0))
    res = dev.run(stdin=["one", "two", "three"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    assert "answer 1" in res.stdout and "answer 2" in res.stdout
    msg = ("[error] rate limit: 2 model requests this hour (limits.model_requests_per_hour); requests "
           "resume in 50 min")
    assert msg in res.stdout
    assert len(llm_server.requests) == 2  # the third line never reached the model
    # A power cycle in the same hour: the count is still there.
    res = dev.run(stdin=["four"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    assert msg in res.stdout
    assert len(llm_server.requests) == 2
    # An hour later: allowed again.
    dev.write_file("/wall.txt", str(W0 + 3600).encode())
    res = dev.run(stdin=["five"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    assert "answer 3" in res.stdout
    assert "rate limit" not in res.stdout
    assert len(llm_server.requests) == 3


def test_daily_limit_names_the_time_to_midnight(tmp_path: Path, llm_server: LLMServer, unix_run: Any) -> None:
    out = _build(tmp_path, llm_server.base_url, limits={"model_requests_per_day": 1})
    _answers(llm_server, 2)
    res = unix_run(out, stdin=["one", "two"], entry="import prog", **_entry(W0))
    assert res.returncode == 0, res.stderr
    assert "answer 1" in res.stdout
    assert ("[error] rate limit: 1 model requests today (limits.model_requests_per_day); requests resume in "
            "15 h 50 min") in res.stdout
    assert len(llm_server.requests) == 1


def test_a_torn_counter_write_keeps_the_previous_counts(tmp_path: Path, llm_server: LLMServer,
                                                        unix_device: Any) -> None:
    out = _build(tmp_path, llm_server.base_url, limits={"model_requests_per_hour": 3})
    _answers(llm_server, 4)
    dev = unix_device(out, **_entry(W0))
    res = dev.run(stdin=["one", "two"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    data = bytearray(dev.files()[PATH])
    assert len(data) == 64  # two 32-byte slots
    seqs = [struct.unpack_from("<I", data, k)[0] for k in (0, 32)]
    assert sorted(seqs) == [1, 2]
    newest = 32 * seqs.index(2)
    data[newest + 6] ^= 0xFF  # a power cut in the middle of the last save: that slot's crc fails
    dev.write_file(PATH, bytes(data))
    # The other slot holds the count before the last request (1): two more are allowed, not one.
    res = dev.run(stdin=["three", "four", "five"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    assert "answer 3" in res.stdout and "answer 4" in res.stdout
    assert "rate limit: 3 model requests this hour" in res.stdout
    assert len(llm_server.requests) == 4


def test_no_clock_yet_the_counts_go_on_across_a_reboot(tmp_path: Path, llm_server: LLMServer,
                                                       unix_device: Any) -> None:
    out = _build(tmp_path, llm_server.base_url, limits={"model_requests_per_hour": 1})
    _answers(llm_server, 2)
    dev = unix_device(out, **_entry(0))  # the wall clock never set (no NTP)
    res = dev.run(stdin=["one"], entry="import prog", timeout=30)
    assert "answer 1" in res.stdout
    res = dev.run(stdin=["two"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    assert "rate limit: 1 model requests this hour" in res.stdout
    assert len(llm_server.requests) == 1


TRIGGER = [{"name": "hello", "prompt": "Booted: say hi.", "to": "console", "on_boot": True}]


def _boot_with_trigger(dev: Any, llm_server: LLMServer, want_requests: int) -> str:
    """One boot whose on_boot trigger runs: the console stays open until the model was asked (at the
    end of its input the console waits for its session's turn, the trigger's)."""
    run = dev.start(entry="import prog", open_stdin=True)
    assert wait_for(lambda: len(llm_server.requests) == want_requests, 20), "the trigger's turn never came"
    run.end_input()
    res = run.wait(20)
    assert res.returncode == 0, res.stderr
    assert "[trigger hello]\nhi there" in res.stdout
    return res.stdout + res.stderr


def test_boot_loop_guard_suspends_triggers_until_resumed(tmp_path: Path, llm_server: LLMServer,
                                                         unix_device: Any) -> None:
    out = _build(tmp_path, llm_server.base_url, triggers=TRIGGER,
                 limits={"boot_loop": {"reboots": 2, "minutes": 1}})
    llm_server.push(Reply.text("hi there"))
    llm_server.push(Reply.text("hi there"))
    dev = unix_device(out, **_entry(W0))
    first = _boot_with_trigger(dev, llm_server, 1)
    assert "boot loop" not in first
    assert llm_server.requests[0].messages[-1]["content"] == "Booted: say hi."
    # The second short boot in a row: the guard suspends the triggers; the console resumes them.
    res = dev.run(stdin=["/triggers", "/triggers resume"], entry="import prog", timeout=30)
    assert res.returncode == 0, res.stderr
    assert ("boot loop: 2 boots within 1 min of run time (they ran 0 s together); triggers suspended until "
            "/triggers resume") in res.stdout
    assert "triggers SUSPENDED by the boot-loop guard: /triggers resume" in res.stdout
    assert "triggers resumed" in res.stdout
    assert "[trigger hello] started" not in res.stderr
    assert len(llm_server.requests) == 1
    # Resumed: the next boot is the first of a new streak, and the trigger runs.
    third = _boot_with_trigger(dev, llm_server, 2)
    assert "boot loop" not in third
    assert "[trigger hello] started" in third


# A whole device under a fake clock (as in test_triggers_unix): the console only waits, each idle
# round of the loop advances the clock by its wait, the run ends (a power cut) at END ms of run time.
CLOCK_PROG = """
import claw_loop as L
T = [0]
L.now = lambda: T[0]
L.wall = lambda: %d + T[0] // 1000
with open("/end.txt") as f:
    END = int(f.read())
def pause(ms):
    T[0] += max(ms, 1)
    if T[0] >= END:
        L.stop()
L.pause = pause
import claw_main
def quiet_console(uart, s):
    s.owner = L.current()
    while True:
        yield (None, 0, None)
claw_main._console = quiet_console
claw_main.main()
"""
HOURLY = [{"name": "beat", "prompt": "x", "to": "log", "every": "1h"}]  # never due in these runs


def _device(unix_device: Any, out: Path) -> Any:
    return unix_device(out, modules={"prog": CLOCK_PROG % W0})


def _run_for(dev: Any, ms: int) -> str:
    """One boot that runs for ms of (fake) run time, then loses power."""
    dev.write_file("/end.txt", str(ms).encode())
    res = dev.run(entry="import prog", timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def _run_times(data: bytes, n: int) -> tuple[int, list[int]]:
    """(boots recorded, run times of the last n boots in seconds, this one first)."""
    rec = _newest(data, n)
    return rec[7], list(rec[9:])


def _newest(data: bytes, n: int) -> tuple[int, ...]:
    """Independent reader of the documented record (claw_limits.py.j2): the newest valid slot."""
    fmt = f"<IiHiHiHBB{n}H"
    size = struct.calcsize(fmt)
    slot = len(data) // 2
    best = None
    for k in (0, slot):
        body = data[k:k + size]
        if len(body) == size and zlib.crc32(body) == struct.unpack_from("<I", data, k + size)[0]:
            rec = struct.unpack(fmt, body)
            if best is None or rec[0] > best[0]:
                best = rec
    assert best is not None
    return best


def test_five_quick_reboots_suspend_the_triggers(tmp_path: Path, unix_device: Any) -> None:
    out = _build(tmp_path, "http://127.0.0.1:9/v1", triggers=HOURLY,
                 limits={"boot_loop": {"reboots": 5, "minutes": 10}})
    dev = _device(unix_device, out)
    for _ in range(4):
        assert "boot loop" not in _run_for(dev, 20_000)  # 20 s of run time each
    # Each run's time saved once, at 12 s (every tenth of 10 min over 5 boots); the fifth slot is unused.
    assert _run_times(dev.files()[PATH], 5) == (4, [12, 12, 12, 12, 0])
    fifth = _run_for(dev, 20_000)
    assert ("boot loop: 5 boots within 10 min of run time (they ran 48 s together); triggers suspended until "
            "/triggers resume") in fifth
    # Still suspended at the next boot (the flag is in the file), without a second message.
    assert "boot loop" not in _run_for(dev, 1_000)
    assert _newest(dev.files()[PATH], 5)[8] == 1


def test_five_long_runs_do_not_trip_it_but_quick_reboots_after_them_do(tmp_path: Path, unix_device: Any) -> None:
    out = _build(tmp_path, "http://127.0.0.1:9/v1", triggers=HOURLY,
                 limits={"boot_loop": {"reboots": 5, "minutes": 10}})
    dev = _device(unix_device, out)
    # Five runs of 3 min 5 s: none reaches 10 min alone (the old rule, "none ran M minutes", tripped
    # here), but together they ran far longer.
    for _ in range(5):
        assert "boot loop" not in _run_for(dev, 185_000)
    boots, runs = _run_times(dev.files()[PATH], 5)
    # Saved as the run time grew, every 12 s (a tenth of 10 min over 5 boots): short by less than that.
    assert boots == 5 and all(173 <= r <= 185 for r in runs), runs
    # Quick reboots now: the window of the last five boots slides past the long runs.
    assert "boot loop" not in _run_for(dev, 1_000)  # 0 + 4 long runs >= 10 min
    boots, runs = _run_times(dev.files()[PATH], 5)
    assert boots == 5 and runs[0] == 0 and all(173 <= r <= 185 for r in runs[1:]), runs
    second = _run_for(dev, 1_000)  # 0 + 0 + 3 long runs: under 10 min
    m = re.search(r"boot loop: 5 boots within 10 min of run time \(they ran (\d+) s together\); triggers "
                  r"suspended until /triggers resume", second)
    assert m is not None and int(m.group(1)) == sum(runs[1:4]), second
