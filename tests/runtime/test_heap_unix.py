"""Heap of the register-assistant example on a real GC (the MicroPython unix port, ``-X heapsize``):
the smallest heap for boot plus one full turn (3 model requests, 4 register tool calls), checked
against the build report's heap estimate (clawgen/heapplan.py) and the board's turn budget; the live
heap stays flat once the history is full. Figures, not timings; bench/runtime_heap_unix.py prints
them for every example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clawgen.boards import load_board
from clawgen.heapplan import WORD_RATIO, heap_limit
from clawgen.sim.llmserver import Reply
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.heap_runs import LINE, build_example, reset, script_turn, turn_ok

BOOT = "import claw_main\nS = []\nclaw_main.serve = lambda *a: S.extend(a)\nclaw_main.main()\n"
TURNS = ("import gc\nfor _ in range({n}):\n"
         f"    claw_main.handle({LINE!r}, S[2], S[0], S[1], S[4])\n"
         "    gc.collect()\n    print('LIVE', gc.mem_alloc())\n")


@pytest.fixture
def register_assistant(tmp_path: Path, llm_server, monkeypatch):
    from clawgen.resources import chips_dir

    monkeypatch.setenv("CLAWGEN_CHIP_PATH", str(chips_dir()))
    return build_example("register-assistant", tmp_path, llm_server.base_url)


def test_boot_and_turn_fit_the_estimate_and_the_turn_budget(register_assistant, llm_server, unix_run):
    # Success is not monotonic in the heap size on a real GC (fragmentation, socket reads that
    # split differently from run to run), so the claims are checked over a range of sizes: from
    # the build report's estimate up, and from the boot heap plus the board's turn budget up,
    # every size works.
    res = register_assistant
    secrets = dict(res.nvs_values)

    def ok(kb: int) -> bool:
        reset(llm_server)
        script_turn(llm_server)
        return turn_ok(unix_run(res.out_dir, stdin=[LINE], heapsize=kb * 1024, secrets=secrets), llm_server)

    reset(llm_server)
    booted = unix_run(res.out_dir, entry=BOOT, steps=["pass"], secrets=secrets)
    assert booted.returncode == 0, booted.stderr
    harness = booted.heap["heap_at_start"]  # the VM's own start is not the app's
    boot_live = booted.steps[0]["heap"]["mem_alloc"] - harness
    estimate = json.loads((res.out_dir / "build.json").read_text())["heap"]["estimate_bytes"]
    # The build report's estimate (32-bit, x WORD_RATIO on this 64-bit VM) is enough.
    at_estimate = -(-(harness + int(estimate * WORD_RATIO)) // 1024)
    failed = [kb for kb in range(at_estimate, at_estimate + 6) if not ok(kb)]
    assert failed == [], (at_estimate, failed)
    # A turn needs no more than the board's turn budget beyond the boot heap.
    turn_budget = load_board("esp32s3").heap["turn_budget"]
    at_budget = -(-(harness + boot_live + int(turn_budget * WORD_RATIO)) // 1024)
    failed = [kb for kb in range(at_budget, at_budget + 6) if not ok(kb)]
    assert failed == [], (at_budget, failed)


def test_live_heap_is_flat_once_the_history_is_full(register_assistant, llm_server, unix_run):
    res = register_assistant
    turns = 16
    for _ in range(turns):
        script_turn(llm_server)
    run = unix_run(res.out_dir, entry=BOOT, steps=[TURNS.format(n=turns)], secrets=dict(res.nvs_values),
                   timeout=120)
    assert run.returncode == 0, run.stderr
    live = [int(x) for x in re.findall(r"^LIVE (\d+)$", run.stdout, re.M)]
    assert len(live) == turns and llm_server.pending == 0
    history_turns = 10 // 2  # limits.history_messages (the board default) holds 5 turns
    steady = live[history_turns + 1:]
    assert max(steady) - min(steady) <= 512, live


def test_build_report_gives_the_heap_estimate(register_assistant):
    info = register_assistant.info["heap"]
    assert info["estimate_bytes"] == (info["buffers_bytes"] + info["history_bytes"] + info["code_bytes"]
                                      + info["turn_bytes"])
    assert info["board_heap_bytes"] == load_board("esp32s3").heap["gc_heap"]
    assert info["heap_limit_bytes"] == heap_limit(load_board("esp32s3"), False, info["tls_connections"])
    assert info["fits"] is (info["estimate_bytes"] <= info["heap_limit_bytes"])
    assert "heap: boot + one turn needs at most about" in register_assistant.report
    assert ("warning: the heap estimate exceeds" in register_assistant.report) is not info["fits"]


def test_shared_request_and_response_memory_keeps_a_resent_body_whole(tmp_path: Path, llm_server, unix_run):
    # request and response share one bytearray (claw_buf): the body resent by the transparent
    # reconnect (the server closed the kept-alive connection without answering) must be the very
    # body of the first attempt, and the answers must come back whole.
    out = build(tmp_path, make_spec(llm_server.base_url, tools=[], capabilities=[]))
    long = ("one " * 200).strip()  # longer than the request: the response overwrites all of it
    llm_server.push(Reply.text(long), Reply.close(), Reply.text("two"))
    res = unix_run(out, stdin=["first line", "second line"])
    assert res.returncode == 0, res.stderr
    assert long in res.stdout and "> two\n" in res.stdout, res.stdout
    _first, sent, resent = llm_server.requests
    assert sent.body == resent.body and resent.json is not None
    assert [m["content"] for m in resent.messages[1:]] == ["first line", long, "second line"]


def _qstr_pools(out: str) -> tuple[int, int]:
    """(pools, interned names) from micropython.qstr_info()'s last report in out."""
    m = re.findall(r"qstr pool: n_pool=(\d+), n_qstr=(\d+)", out)
    assert m, out
    return int(m[-1][0]), int(m[-1][1])


def test_a_register_turn_stays_below_the_next_qstr_pool(register_assistant, llm_server, unix_run):
    # The VM interns names in pools on the GC heap, each twice the last: 20 + 40 + ... + 320 = 620
    # names in 5 pools, and the 621st allocates a 640-entry pool (7.5 KB on this 64-bit VM) at once.
    # Boot plus a register turn (which loads claw_hwtools, clawreg and clawsheet) crossed that line
    # until 2026-12-04 and it set the smallest heap (docs/runtime.md, "A smaller device"): the
    # harness's names, the device's, and each new module's global, function, argument and
    # attribute names and short strings all count.
    res = register_assistant
    reset(llm_server)
    script_turn(llm_server)
    info = "import micropython\nmicropython.qstr_info()\n"
    r = unix_run(res.out_dir, stdin=[LINE], entry=info + "import claw_main\nclaw_main.main()\n", steps=[info],
                 secrets=dict(res.nvs_values))
    assert turn_ok(r, llm_server), r.stdout
    start = _qstr_pools(r.stdout.split("clawgen agent", 1)[0])
    pools, names = _qstr_pools(r.stdout)
    assert start[1] < names  # the device's names came on top of the harness's
    assert pools <= 5, (f"boot + one register turn interned {names} names ({start[1]} of them the harness's "
                        f"before boot): the VM allocated pool {pools}; see docs/runtime.md, 'A smaller device'")


def test_the_devices_own_console_runs_the_turn_and_holds_no_line_buffer_between_lines(register_assistant,
                                                                                      llm_server, unix_run):
    """UnixDevice(device_console=True) (bench/runtime_heap_unix.py's "dev console" figure) runs the
    build's own claw_console on the VM's stdin instead of the simulators' shim: the turn works, the
    typed line is echoed as the UART echoes it, and after boot the heap holds the module's code but
    not its limits.content_bytes line buffer, which exists only while a line is typed
    (tests/runtime/test_device_console.py)."""
    res = register_assistant
    secrets = dict(res.nvs_values)
    reset(llm_server)
    script_turn(llm_server)
    own = unix_run(res.out_dir, stdin=[LINE], secrets=secrets, device_console=True)
    assert turn_ok(own, llm_server), own.stdout[-2000:]
    assert LINE in own.stdout  # echoed character by character by claw_console.readline
    boots = []
    for device_console in (False, True):
        reset(llm_server)
        r = unix_run(res.out_dir, entry=BOOT, steps=["pass"], secrets=secrets, device_console=device_console)
        assert r.returncode == 0, r.stderr
        boots.append(r.steps[0]["heap"]["mem_alloc"])
    line_bytes = json.loads((res.out_dir / "build.json").read_text())["buffers"]["console_line"]
    assert 0 < boots[1] - boots[0] < line_bytes, boots
