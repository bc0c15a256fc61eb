"""Plan stage, triggers: the spec's ``triggers:`` checked and turned into the static trigger table
the device's claw_triggers runs (docs/spec.md, Triggers; docs/runtime.md, Triggers and limits).

Checks (each at the FILE:LINE:COL of the value): exactly one of every/at/on_boot/watch; durations
and their bounds; times of day; time zones (IANA names, from Python's zoneinfo database); where
the answer goes (a chat of transports.telegram.allow_chats, console, log); a watched field exists
in the chip's SVD, can be read without side effects, and the register policy allows reading it.

A time zone becomes a table of (UTC second from which, offset in seconds) over TZ_YEARS, computed
from the tz database at build time: the device has no tz database, and a fixed range keeps the
build reproducible (no dependence on the build's date).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from clawgen.diagnostics import Diagnostic, did_you_mean
from clawgen.loader import PathT
from clawgen.records import record
from clawgen.spec import Trigger

if TYPE_CHECKING:
    from clawgen.chips.policy import PolicyTable
    from clawgen.resolve import Resolved

TZ_YEARS = (2024, 2051)  # the time-zone tables cover 2024-01-01 up to (not including) 2051
MIN_EVERY_S = 60  # every: at least a minute (each run is a model turn)
MAX_EVERY_S = 86400  # at most a day (ticks arithmetic on the device; at: is the daily schedule)
MIN_INTERVAL_MS = 1000  # watch.interval: at least 1 s
MAX_INTERVAL_MS = 3600 * 1000
MAX_DEBOUNCE_MS = 3600 * 1000
READABLE = ("read-only", "read-write", "read-writeOnce")  # SVD access types a watch may read
Say = Callable[..., None]  # say(path, message, severity="error")
OPS = ("changes", "==", "!=", ">", ">=", "<", "<=")

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")


@record
class TriggerDef:
    """One row of the device's trigger table (claw_triggers.TABLE)."""

    name: str
    prompt: str
    to: int | str  # a Telegram chat id, "console" or "log"
    kind: str  # "every" | "at" | "boot" | "watch"
    every_s: int = 0
    at_minute: int = 0  # minutes after local midnight
    tz: tuple[int, ...] = (0, 0, 0)  # device_tz(): (base, minute from which, offset minutes, ...)
    timezone: str = "UTC"
    field: str = ""  # the watched field as the device reports it: "GPIO.IN.DATA_NEXT[4]"
    address: int = 0
    lsb: int = 0
    width: int = 0
    op: str = ""  # one of OPS
    operand: int = 0
    interval_ms: int = 0
    debounce_ms: int = 0


def parse_duration_ms(text: str) -> int | None:
    """ "1h30m" -> 5400000; None when it is not a sequence of <number><unit>."""
    pos = total = 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * _UNITS_MS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and text else None


@functools.cache
def tz_table(name: str) -> tuple[tuple[int, int], ...]:
    """The offsets of IANA zone ``name`` over TZ_YEARS: ((unix second from which, offset s), ...).
    Raises KeyError for an unknown zone."""
    if name.upper() in ("UTC", "GMT", "ETC/UTC", "Z"):
        return ((0, 0),)
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise KeyError(name) from e

    def offset(t: int) -> int:
        u = datetime.fromtimestamp(t, tz=timezone.utc).astimezone(zone).utcoffset()
        return int(u.total_seconds()) if u is not None else 0

    start = int(datetime(TZ_YEARS[0], 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(TZ_YEARS[1], 1, 1, tzinfo=timezone.utc).timestamp())
    out = [(0, offset(start))]
    day = 86400
    t = start
    while t < end:
        nxt = t + day
        if offset(nxt) != offset(t):
            lo, hi = t, nxt  # the change lies in (lo, hi]: bisect to the second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) == offset(lo):
                    lo = mid
                else:
                    hi = mid
            out.append((hi, offset(hi)))
        t = nxt
    return tuple(out)


def device_tz(table: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """A tz_table as the device reads it, small integers only (no long ints on a 32-bit port):
    (Unix minute of TZ_YEARS' start, then pairs of minutes after it from which an offset holds
    and that offset in minutes)."""
    base = int(datetime(TZ_YEARS[0], 1, 1, tzinfo=timezone.utc).timestamp()) // 60
    out = [base]
    for since, off in table:
        out += [max(0, since // 60 - base), off // 60]
    return tuple(out)


@functools.cache
def _zone_names() -> tuple[str, ...]:
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


def _field_problem(table: PolicyTable | None, chip_name: str, search_dirs: list[Path], text: str
                   ) -> tuple[str | None, tuple[str, int, int, int]]:
    """(problem, (shown name, address, lsb, width)) of a watched field."""
    from clawgen.chips import load_chip

    none = ("", 0, 0, 0)
    m = re.fullmatch(r"(.+)\.([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9]+)\])?", text)
    if m is None or "." not in m.group(1):
        return "expected PERIPHERAL.REGISTER.FIELD or PERIPHERAL.REGISTER.FIELD[bit]", none
    reg_path, fname, bit = m.group(1), m.group(2), m.group(3)
    chip = load_chip(chip_name, search_dirs)
    ri = chip.find_register(reg_path)
    if ri is None:
        periph = chip.peripheral(reg_path.split(".")[0])
        if periph is None:
            return (f"{chip.name} has no peripheral {reg_path.split('.')[0]}"
                    + did_you_mean(reg_path.split(".")[0], [p.name for p in chip.peripherals])), none
        names = [r.path for r in chip.iter_peripheral_registers(periph)]
        return f"{chip.name} has no register {reg_path}" + did_you_mean(reg_path.upper(), names), none
    f = next((x for x in ri.fields if x.name.upper() == fname.upper()), None)
    if f is None:
        fields = [x.name for x in ri.fields]
        return (f"{ri.path} has no field {fname}" + did_you_mean(fname.upper(), fields)
                + (f"; its fields: {', '.join(fields[:12])}" if fields else "")), none
    access = f.access or ri.access
    if access not in READABLE:
        return f"{ri.path}.{f.name} is {access} in the SVD: a watch can only read a readable field", none
    if f.read_action or ri.register.read_action:
        return (f"reading {ri.path}.{f.name} has a side effect ({f.read_action or ri.register.read_action}): "
                "a watch polls it, so it cannot be watched"), none
    lsb, width, shown = f.lsb, f.width, f"{ri.path}.{f.name}"
    if bit is not None:
        if int(bit) >= f.width:
            return f"{ri.path}.{f.name} is {f.width} bit{'s' if f.width > 1 else ''} wide: bit {bit} does not exist " \
                   f"(use 0..{f.width - 1})", none
        lsb, width, shown = f.lsb + int(bit), 1, f"{shown}[{bit}]"
    if table is None:
        return "internal: no register policy planned for a watch", none
    entry = table.entry_at(ri.address)
    if entry is None or not entry.readable:
        return (f"the register policy does not allow reading {ri.path}: add "
                f"{{match: {ri.path}, access: read}} to registers.allow"), none
    return None, (shown, ri.address, lsb, width)


def plan_triggers(res: Resolved, table: PolicyTable | None, chip_dirs: list[Path], out: list[Diagnostic]
                  ) -> tuple[TriggerDef, ...]:
    """The trigger table; problems go to ``out`` at the place they are written. ``table``: the
    register policy (planned whenever a trigger watches a field), ``chip_dirs``: where chips are found."""
    spec = res.spec
    seen: dict[str, int] = {}
    rows: list[TriggerDef] = []

    def diag(path: PathT, msg: str, severity: str = "error") -> None:
        out.append(res.locator.diag(path, msg, severity=severity))

    for i, t in enumerate(spec.triggers):
        base: PathT = ("triggers", i)
        if t.name in seen:
            diag((*base, "name"), f"trigger name '{t.name}' is used twice (first at triggers[{seen[t.name]}])")
        seen.setdefault(t.name, i)
        kinds = [k for k in ("every", "at", "on_boot", "watch") if getattr(t, k) not in (None, False)]
        if len(kinds) != 1:
            diag(base, "a trigger needs exactly one of every, at, on_boot: true or watch"
                 + (f" (it has {' and '.join(kinds)})" if kinds else ""))
            continue
        to = _check_to(res, t, base, diag)
        if t.timezone != "UTC" and t.at is None:
            diag((*base, "timezone"), "timezone is only used with at: remove it", severity="warning")
        row = _row(res, t, kinds[0], to, base, table, chip_dirs, diag)
        if row is not None:
            rows.append(row)
    if any(r.kind == "at" for r in rows) and spec.network.ssid is None:
        diag(("triggers",), "at: triggers need the clock, set over NTP: without network.ssid they wait until "
             "something else sets it", severity="warning")
    return tuple(rows)


def _check_to(res: Resolved, t: Trigger, base: PathT, diag: Say) -> int | str:
    to = t.to
    if isinstance(to, int) and not isinstance(to, bool):
        if res.spec.transports.telegram is None:
            diag((*base, "to"), f"to: {to} is a Telegram chat, but the agent has no transports.telegram; "
                 "use console or log, or add the Telegram channel")
        elif to not in res.spec.transports.telegram.allow_chats:
            diag((*base, "to"), f"chat {to} is not in transports.telegram.allow_chats: add it there, "
                 "or send the answer to another chat")
    elif to == "console" and not res.spec.transports.uart.enabled:
        diag((*base, "to"), "to: console, but transports.uart is off: the answer will only be logged",
             severity="warning")
    return to


def _row(res: Resolved, t: Trigger, kind: str, to: int | str, base: PathT, table: PolicyTable | None,
         dirs: list[Path], diag: Say) -> TriggerDef | None:
    say = diag  # (path, message, severity="error")
    if kind == "every":
        ms = parse_duration_ms(str(t.every))
        if ms is None or not MIN_EVERY_S * 1000 <= ms <= MAX_EVERY_S * 1000 or ms % 1000:
            say((*base, "every"), f"every {t.every} is out of range: use whole seconds from 1m to 24h (each run "
                "is a model turn); for a daily run use at:")
            return None
        return TriggerDef(t.name, t.prompt, to, "every", every_s=ms // 1000)
    if kind == "at":
        hh, mm = (int(x) for x in str(t.at).split(":"))
        ok = True
        if hh > 23 or mm > 59:
            say((*base, "at"), f"{t.at} is not a time of day: use 00:00 to 23:59")
            ok = False
        try:
            tz = tz_table(t.timezone)
        except KeyError:
            if not _zone_names():
                say((*base, "timezone"), f"cannot look up time zone '{t.timezone}': this machine has no time-zone "
                    "database (install the tzdata package: pip install tzdata), or use UTC")
                return None
            say((*base, "timezone"), f"unknown time zone '{t.timezone}': use an IANA name such as "
                "Europe/Berlin or America/New_York, or UTC" + did_you_mean(t.timezone, _zone_names()))
            return None
        if not ok:
            return None
        return TriggerDef(t.name, t.prompt, to, "at", at_minute=hh * 60 + mm, tz=device_tz(tz), timezone=t.timezone)
    if kind == "on_boot":
        return TriggerDef(t.name, t.prompt, to, "boot")
    w = t.watch
    assert w is not None
    wb = (*base, "watch")
    ok = True
    interval = parse_duration_ms(w.interval)
    if interval is None or not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
        say((*wb, "interval"), f"interval {w.interval} is out of range: use 1s to 1h")
        ok = False
    debounce = parse_duration_ms(w.debounce)
    if debounce is None or debounce > MAX_DEBOUNCE_MS:
        say((*wb, "debounce"), f"debounce {w.debounce} is out of range: use 0ms to 1h")
        ok = False
    problem, (shown, addr, lsb, width) = _field_problem(table, res.spec.chip, dirs, w.field)
    if problem is not None:
        say((*wb, "field"), problem)
        return None
    op, operand = "changes", 0
    if w.when != "changes":
        m = re.fullmatch(r"(==|!=|>=|<=|>|<) *(0x[0-9A-Fa-f]+|[0-9]+)", w.when)
        assert m is not None  # the schema's pattern
        op, operand = m.group(1), int(m.group(2), 0)
        top = (1 << width) - 1
        never = (op in ("==", ">=") and operand > top) or (op == ">" and operand >= top) or (op == "<" and operand == 0)
        always = (op in ("!=", "<=") and operand >= top + (op == "!=")) or (op == "<" and operand > top) \
            or (op == ">=" and operand == 0)
        if never or always:
            say((*wb, "when"), f"'{w.when}' is {'never' if never else 'always'} true for {shown}, a "
                f"{width}-bit value (0..{top})")
            ok = False
    if not ok:
        return None
    return TriggerDef(t.name, t.prompt, to, "watch", field=shown, address=addr, lsb=lsb, width=width, op=op,
                      operand=operand, interval_ms=int(interval or 0), debounce_ms=int(debounce or 0))
