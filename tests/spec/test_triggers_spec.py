"""Build-time side of triggers: and the rate limits (issue 10 items 5-6): the trigger table the plan
renders, the time-zone tables, what ships. Bad input: tests/spec/invalid/triggers_*; the device
side: tests/runtime/test_triggers_unix.py and test_limits_unix.py."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from clawgen.appmodules import app_modules
from clawgen.build import BuildOptions, load_and_plan
from clawgen.triggers import device_tz, parse_duration_ms, tz_table
from tests.build.helpers import SPEC, project


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def _plan(tmp_path: Path, extra: str):
    spec = project(tmp_path / "proj", spec=SPEC + extra)
    return load_and_plan(spec, BuildOptions(out_dir=tmp_path / "out", images=False))


def _shipped(planned) -> set[str]:
    return {m.name for m in app_modules(planned.plan)}


def test_durations() -> None:
    assert parse_duration_ms("200ms") == 200
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("2d") == 172_800_000
    assert parse_duration_ms("1x") is None
    assert parse_duration_ms("m5") is None
    assert parse_duration_ms("") is None


def test_berlin_switches_at_the_eu_dates() -> None:
    table = tz_table("Europe/Berlin")
    spring = calendar.timegm((2026, 3, 29, 1, 0, 0, 0, 0, 0))  # 02:00 CET -> 03:00 CEST
    autumn = calendar.timegm((2026, 10, 25, 1, 0, 0, 0, 0, 0))  # 03:00 CEST -> 02:00 CET
    assert (spring, 7200) in table and (autumn, 3600) in table
    assert table[0] == (0, 3600)
    assert len(table) == 1 + 2 * 27  # two changes a year, 2024 to 2050
    dev = device_tz(table)
    assert dev[:3] == (calendar.timegm((2024, 1, 1, 0, 0, 0, 0, 0, 0)) // 60, 0, 60)
    assert all(0 <= v < (1 << 30) for v in dev)  # small ints on a 32-bit port
    assert tz_table("UTC") == ((0, 0),)
    assert tz_table("Asia/Kolkata") == ((0, 19800),)  # no daylight saving: one offset
    with pytest.raises(KeyError):
        tz_table("Mars/Olympus")


def test_nothing_ships_without_triggers_but_the_limits(tmp_path: Path) -> None:
    planned = _plan(tmp_path, "")
    assert planned.plan.triggers == ()
    shipped = _shipped(planned)
    assert "claw_triggers" not in shipped and "clawreg" not in shipped
    assert "claw_limits" in shipped  # model_requests_per_hour / _per_day apply to every agent
    lim = planned.plan.limits
    assert (lim.model_requests_per_hour, lim.model_requests_per_day, lim.triggered_turns_per_hour) == (100, 1000, 20)
    assert (lim.boot_loop.reboots, lim.boot_loop.minutes) == (5, 10)
    assert planned.plan.sessions == 1


def test_the_trigger_table(tmp_path: Path) -> None:
    planned = _plan(tmp_path, """\
triggers:
  - {name: beat, prompt: Beat., to: log, every: 1h30m}
  - {name: morning, prompt: Report., to: console, at: "07:45", timezone: America/New_York}
  - {name: hello, prompt: Hi., to: console, on_boot: true}
  - name: pin
    prompt: Pin {value}.
    to: log
    watch: {field: "gpio.in.data_next[5]", when: "> 0", interval: 2s, debounce: 50ms}
""")
    beat, morning, hello, pin = planned.plan.triggers
    assert (beat.kind, beat.every_s, beat.to) == ("every", 5400, "log")
    assert (morning.kind, morning.at_minute, morning.timezone) == ("at", 7 * 60 + 45, "America/New_York")
    assert morning.tz == device_tz(tz_table("America/New_York"))
    assert hello.kind == "boot"
    assert (pin.field, pin.address, pin.lsb, pin.width, pin.op, pin.operand, pin.interval_ms, pin.debounce_ms) == (
        "GPIO.IN.DATA_NEXT[5]", 0x6000403C, 5, 1, ">", 0, 2000, 50)  # esp32c3 (the helper spec's board)
    shipped = _shipped(planned)
    # A watch reads through the register policy: clawreg and its tables ship without a register capability.
    assert {"claw_triggers", "claw_limits", "clawreg", "clawhw", "clawreg.tab"} <= shipped
    assert "claw_hwtools" not in shipped
    assert planned.plan.sessions == 2  # the console, and the one session of the to: log triggers
