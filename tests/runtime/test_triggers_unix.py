"""Triggers on the MicroPython unix-port VM (claw_triggers), driven by a controllable clock.

The device program replaces claw_loop.now() (ticks) and claw_limits.wall() (the NTP wall clock)
and calls the scheduler's step() as the loop's trigger task does; a watched register changes
through clawhw.read32, the hardware edge under clawreg's policy checks.
"""

from __future__ import annotations

import calendar
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.agent_builds import build, make_spec

MODEL = "http://127.0.0.1:9/v1"  # never called: these tests drive the scheduler alone

# The device side of every test: a fake clock, a run() that prints what would start, and step_to()
# advancing the clock in 100 ms steps as the loop would resume the trigger task.
PRELUDE = """
import claw_loop, claw_limits as L, claw_triggers as T
clock = [0]
claw_loop.now = lambda: clock[0]
W = [None]
claw_loop.wall = lambda: (W[0] or 0) + clock[0] // 1000  # below 2024 (W None): the clock is not set
BUSY = set()
def run(name, to, prompt):
    print("RUN %d %s %s %r" % (clock[0], name, to, prompt))
def step_to(ms):
    while clock[0] < ms:
        clock[0] += 100
        T.step(lambda to: to in BUSY, run)
T.start()  # at clock 0, as the loop starts the trigger task after boot
"""


def _utc(y: int, mo: int, d: int, h: int, mi: int) -> int:
    return calendar.timegm((y, mo, d, h, mi, 0, 0, 0, 0))


def _build(tmp: Path, triggers: list[dict[str, Any]], **limits: Any) -> Path:
    spec = make_spec(MODEL, triggers=triggers)
    if limits:
        spec["limits"] = limits
    return build(tmp, spec)


def _runs(stdout: str) -> list[tuple[int, str, str, str]]:
    out = []
    for line in stdout.splitlines():
        if line.startswith("RUN "):
            _, t, name, to, prompt = line.split(" ", 4)
            out.append((int(t), name, to, prompt))
    return out


def _go(unix_run: Any, out: Path, body: str) -> str:
    """stdout, then the log (stderr)."""
    res = unix_run(out, modules={"prog": PRELUDE + body}, entry="import prog")
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def test_every_runs_each_period_and_waits_while_its_session_is_busy(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "beat", "prompt": "Heartbeat.", "to": "console", "every": "1m"}])
    stdout = _go(unix_run, out, """
step_to(59900)
print("A")
step_to(60000)
BUSY.add("console")
step_to(125000)
print("B")
BUSY.discard("console")
step_to(185000)
""")
    runs = _runs(stdout)
    assert [r[0] for r in runs] == [60000, 125100, 180000]  # busy at 120 s: started once the turn ended
    assert all(r[1:] == ("beat", "console", "'Heartbeat.'") for r in runs)
    assert stdout.index("A") < stdout.index("RUN 60000")
    assert stdout.index("RUN 60000") < stdout.index("B") < stdout.index("RUN 125100")


def test_at_follows_the_time_zone_and_waits_for_the_clock(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "morning", "prompt": "Report.", "to": "log", "at": "08:00",
                             "timezone": "Europe/Berlin"}])
    winter = _utc(2026, 1, 15, 6, 58)  # 07:58 CET (UTC+1): due at 07:00 UTC
    summer = _utc(2026, 7, 15, 5, 58)  # 07:58 CEST (UTC+2): due at 06:00 UTC
    stdout = _go(unix_run, out, f"""
step_to(600000)  # ten minutes without a wall clock: nothing, whatever the time
print("SET")
W[0] = {winter} - 600
step_to(900000)
W[0] = {summer} - 900
print("SUMMER")
step_to(1200000)
print(T.status())
""")
    runs = _runs(stdout)
    assert stdout.index("SET") < stdout.index("RUN")
    assert runs[0][0] == 720000  # W + 720 s = 07:00:00 UTC = 08:00 CET
    assert runs[0][1:3] == ("morning", "log")
    # In July the same trigger is due at 06:00 UTC: 900 s + 120 s after the summer clock was set.
    assert [r[0] for r in runs] == [720000, 1020000]
    assert "morning -> log: daily at 08:00, next in" in stdout


def test_at_never_runs_while_the_clock_is_unset(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "noon", "prompt": "x", "to": "log", "at": "12:00"}])
    stdout = _go(unix_run, out, """
step_to(3000000)
print(T.status())
""")
    assert _runs(stdout) == []
    assert "noon -> log: daily at 12:00, waiting for the clock (NTP)" in stdout


def test_on_boot_runs_once_at_the_first_step(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "hello", "prompt": "Booted.", "to": "console", "on_boot": True}])
    stdout = _go(unix_run, out, "step_to(5000)\n")
    assert _runs(stdout) == [(100, "hello", "console", "'Booted.'")]


WATCH_PROG = """
import clawhw
SEQ = %r  # (from ms, register value)
READS = []
def read32(addr):
    READS.append(clock[0])
    assert addr == 0x6000403C, hex(addr)
    v = 0
    for since, x in SEQ:
        if clock[0] >= since:
            v = x
    return v
clawhw.read32 = read32
step_to(%d)
print("READS", ",".join(str(r) for r in READS))
"""


def test_watch_is_edge_triggered_with_debounce(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "door", "prompt": "Door input is {value} (was {previous}).", "to": "console",
                             "watch": {"field": "GPIO.IN.DATA_NEXT[4]", "when": "== 1", "interval": "1s",
                                       "debounce": "300ms"}}])
    seq = [
        (0, 0x10),  # bit 4 already 1 at start: the baseline, no run
        (1500, 0x00),  # 0 from 1.5 s (read at 2.1 s, confirmed 300 ms later: a falling edge, no run)
        (4300, 0x10), (4500, 0x00),  # a 200 ms glitch, seen by the 4.4 s read: debounced away at 4.7 s
        (5000, 0x10),  # 1 for good: seen at 5.7 s, confirmed 300 ms later: a run
        (6000, 0x13),  # other bits change: the field stays 1, no run
        (8000, 0x00), (10000, 0x10),  # falls, rises again (seen at 10.3 s): a second run
    ]
    stdout = _go(unix_run, out, WATCH_PROG % (seq, 12000))
    runs = _runs(stdout)
    assert runs == [(6000, "door", "console", "'Door input is 1 (was 0).'"),
                    (10600, "door", "console", "'Door input is 1 (was 0).'")]
    # Read every interval (1 s) and again when a debounce time is over, never at every 100 ms step.
    reads = [int(x) for x in stdout.split("READS ")[1].split()[0].split(",")]
    assert reads == [100, 1100, 2100, 2400, 3400, 4400, 4700, 5700, 6000, 7000, 8000, 8300, 9300, 10300, 10600,
                     11600]


def test_watch_changes_puts_the_value_into_the_prompt(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "pins", "prompt": "Inputs changed.", "to": "log",
                             "watch": {"field": "GPIO.IN.DATA_NEXT", "interval": "1s"}}])
    stdout = _go(unix_run, out, WATCH_PROG % ([(0, 5), (2500, 7)], 5000))
    assert _runs(stdout) == [(3100, "pins", "log", "'Inputs changed.\\n(GPIO.IN.DATA_NEXT is now 7, was 5)'")]


def test_a_read_the_policy_refuses_is_reported_once(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "pins", "prompt": "x", "to": "log",
                             "watch": {"field": "GPIO.IN.DATA_NEXT", "interval": "1s"}}])
    # The table row points at GPIO.IN; make it point at a register the policy does not allow.
    stdout = _go(unix_run, out, """
T.TABLE = (T.TABLE[0][:4] + ((T.TABLE[0][4][0], 0x60004074) + T.TABLE[0][4][2:], None),)
step_to(5000)
""")
    assert _runs(stdout) == []
    assert stdout.count("[claw] [trigger pins] cannot read GPIO.IN.DATA_NEXT: denied: GPIO+0x74 (0x60004074) is "
                        "not in this build's register allowlist") == 1


def test_triggered_turns_per_hour_skips_with_a_log_line(tmp_path: Path, unix_run: Any) -> None:
    out = _build(tmp_path, [{"name": "beat", "prompt": "x", "to": "log", "every": "1m"}], triggered_turns_per_hour=2)
    stdout = _go(unix_run, out, f"W[0] = {_utc(2026, 3, 1, 10, 0)}\nstep_to(200000)\n")
    assert [r[0] for r in _runs(stdout)] == [60000, 120000]
    assert ("[claw] [trigger beat] skipped: 2 triggered turns this hour: limits.triggered_turns_per_hour is reached; "
            "triggers resume in 57 min") in stdout


@pytest.mark.parametrize("suspend", [True, False])
def test_suspended_triggers_do_not_run_until_resumed(tmp_path: Path, unix_run: Any, suspend: bool) -> None:
    out = _build(tmp_path, [{"name": "hello", "prompt": "Booted.", "to": "console", "on_boot": True}],
                 boot_loop={"reboots": 2, "minutes": 5})
    body = ("print(L.boot())\nprint(L.boot())\n" if suspend else "") + """
step_to(3000)
print("RESUME", L.resume())
step_to(4000)
"""
    stdout = _go(unix_run, out, body)
    runs = _runs(stdout)
    if suspend:
        assert ("boot loop: 2 boots within 5 min of run time (they ran 0 s together); triggers suspended until "
                "/triggers resume" in stdout)
        assert runs == [(3100, "hello", "console", "'Booted.'")]
        assert "RESUME triggers resumed" in stdout
    else:
        assert runs == [(100, "hello", "console", "'Booted.'")]
        assert "RESUME triggers were not suspended" in stdout


# A whole device under a fake clock: the console task replaced by one that only waits (nothing is
# waited on, so each idle round advances the clock by its wait), the loop stopped at END ms.
DEVICE_PROG = """
import claw_loop as L
T = [0]
L.now = lambda: T[0]
L.wall = lambda: %d + T[0] // 1000
END = %d
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


def test_every_runs_whole_turns_whose_answers_go_to_the_log(tmp_path: Path, llm_server: Any, unix_run: Any) -> None:
    from clawgen.sim.llmserver import Reply

    out = build(tmp_path, make_spec(llm_server.base_url, tools=[], capabilities=[], limits={"triggered_turns_per_hour": 2},
                                    triggers=[{"name": "beat", "prompt": "Heartbeat: all well?", "to": "log",
                                               "every": "1m"}]))
    for i in range(3):
        llm_server.push(Reply.text(f"all well {i + 1}"))
    start = _utc(2026, 3, 1, 10, 0)
    res = unix_run(out, modules={"prog": DEVICE_PROG % (start, 200000)}, entry="import prog")
    assert res.returncode == 0, res.stdout + res.stderr
    log = res.stderr
    assert "[claw] [trigger beat] all well 1" in log and "[claw] [trigger beat] all well 2" in log
    assert "all well 3" not in log
    assert ("[claw] [trigger beat] skipped: 2 triggered turns this hour: limits.triggered_turns_per_hour is "
            "reached; triggers resume in 57 min") in log
    assert len(llm_server.requests) == 2
    assert [r.messages[-1]["content"] for r in llm_server.requests] == ["Heartbeat: all well?"] * 2
    # The log session keeps its own history: the second run saw the first.
    assert any(m.get("content") == "all well 1" for m in llm_server.requests[1].messages)
    assert "all well" not in res.stdout  # not on the console


def test_on_boot_turn_on_the_console_and_triggers_command(tmp_path: Path, llm_server: Any, unix_device: Any) -> None:
    from clawgen.sim.llmserver import Reply, wait_for

    out = build(tmp_path, make_spec(llm_server.base_url, tools=[], capabilities=[],
                                    triggers=[{"name": "hello", "prompt": "You just booted.", "to": "console",
                                               "on_boot": True},
                                              {"name": "noon", "prompt": "Lunch.", "to": "log", "at": "12:00"}]))
    llm_server.push(Reply.text("Hello, I am up."))
    run = unix_device(out).start(open_stdin=True)
    assert wait_for(lambda: len(llm_server.requests) == 1, 20), "the on_boot turn never came"
    run.send("/triggers\n")
    run.end_input()
    res = run.wait(20)
    assert res.returncode == 0, res.stderr
    assert "[trigger hello]\nHello, I am up." in res.stdout
    status = res.stdout[res.stdout.index("hello -> console"):]
    assert status.startswith("hello -> console: at boot (done)\nnoon -> log: daily at 12:00, next in ")
    assert ("model requests: 1/100 this hour, 1/1000 today; triggered turns: 1/20 this hour; boot-loop guard: "
            "1/5 boots, 0 s run time") in status


def test_a_trigger_answers_in_its_telegram_chat(tmp_path: Path, ca: Any, botapi: Any, llm_server: Any,
                                               unix_device: Any) -> None:
    from tests.llm_server import Reply
    from tests.runtime.telegram_device import ME, Device, agent

    bot = botapi()
    out = agent(tmp_path / "b", llm_server.base_url, bot, ca, tools=[], capabilities=[],
                triggers=[{"name": "hello", "prompt": "You just booted: tell my phone.", "to": ME, "on_boot": True}])
    llm_server.push(Reply.text("Booted and watching."))
    dev = Device(unix_device, out)
    assert bot.wait_sent(1) == ["Booted and watching."]
    dev.end()
    assert llm_server.requests[0].messages[-1]["content"] == "You just booted: tell my phone."


def test_a_command_prompt_runs_the_command(tmp_path: Path, unix_run: Any) -> None:
    out = build(tmp_path, make_spec(MODEL, tools=[], capabilities=[],
                                    triggers=[{"name": "stat", "prompt": "/status", "to": "log", "every": "1m"}]))
    res = unix_run(out, modules={"prog": DEVICE_PROG % (_utc(2026, 3, 1, 10, 0), 70000)}, entry="import prog")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[claw] [trigger stat] agent rt-agent on esp32s3" in res.stderr  # the /status reply, logged


def test_a_triggered_turn_asks_its_chat_to_confirm(tmp_path: Path, ca: Any, botapi: Any, llm_server: Any,
                                                   unix_device: Any) -> None:
    import json

    from tests.llm_server import Reply
    from tests.runtime.telegram_device import ME, Device, agent

    bot = botapi()
    out = agent(tmp_path / "b", llm_server.base_url, bot, ca,
                triggers=[{"name": "relay", "prompt": "Switch the relay on.", "to": ME, "on_boot": True}])
    llm_server.push(Reply.tool_calls(("set_relay", {"on": True})), Reply.text("Relay is on."))
    dev = Device(unix_device, out)
    # The chat never wrote before: the trigger made it the session's owner, so it can answer.
    assert bot.wait_for(lambda: any(t.startswith("Allow tool set_relay") for t in bot.texts(ME)))
    bot.say(ME, "y")
    assert bot.wait_for(lambda: "Relay is on." in bot.texts(ME))
    dev.end()
    tool = [m for m in llm_server.requests[1].messages if m.get("role") == "tool"]
    assert json.loads(tool[0]["content"]) == {"relay": "on", "calls": 1}


def test_triggers_resume_is_refused_from_telegram(tmp_path: Path, ca: Any, botapi: Any, llm_server: Any,
                                                  unix_device: Any) -> None:
    from tests.runtime.telegram_device import ME, Device, agent

    bot = botapi()
    out = agent(tmp_path / "b", llm_server.base_url, bot, ca,
                triggers=[{"name": "beat", "prompt": "x", "to": "log", "every": "1h"}])
    dev = Device(unix_device, out)
    bot.say(ME, "/triggers resume")
    bot.say(ME, "/triggers")
    assert bot.wait_sent(2)[0] == "/triggers resume works on the console (UART or Telnet) only"
    assert bot.texts(ME)[1].startswith("beat -> log: every 3600 s, next in ")
    dev.end()
    assert llm_server.requests == []
