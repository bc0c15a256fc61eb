"""The register policy: which registers (and fields) the agent may read or write.

``compile_policy`` turns the spec's ``registers:`` value (allow/deny globs on
``PERIPHERAL.REGISTER[.FIELD]``) and a chip model into a ``PolicyTable``: one entry per allowed
32-bit register, sorted by address, with everything the device needs to enforce the policy
without the chip model (read/write permission, the writable bit mask, the bits that must never
be read-modify-written, write constraints). The device code (``templates/app/clawreg.py.j2``)
and the C user module (``templates/usermod/clawreg/``) enforce exactly these tables; the
semantics are documented in ``docs/registers.md``.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from clawgen.boards import FAST_LOADER
from clawgen.chips.model import Chip, Field, Register, RegisterInstance
from clawgen.diagnostics import ERROR, WARNING, Diagnostic, Mark, did_you_mean
from clawgen.records import slotted
from clawgen.resources import chips_dir

# Entry flags (same values in clawreg.py.j2 and clawreg_policy.h).
F_READ = 0x01  # the policy allows reading the register
F_WRITE = 0x02  # the policy allows writing some bits (wmask)
F_NO_RMW = 0x04  # never read-modify-write: read side effects, modifiedWriteValues or not readable
F_READBACK = 0x08  # a write returns the value read back (readable, no read side effect)
F_READ_EFFECT = 0x10  # reading has side effects (allowed only because an entry names it exactly)

# Constraint kinds.
C_RANGE = 1  # field value within [min, max]
C_ENUM = 2  # field value matches one of (value, mask)

ACCESS_WORDS = {"read": {"read"}, "write": {"write"}, "read-write": {"read", "write"}}
_READABLE = {"read-only", "read-write", "read-writeOnce"}
_WRITABLE = {"write-only", "read-write", "writeOnce", "read-writeOnce"}
# modifiedWriteValues whose "no effect" value is known: writing it leaves the bit alone.
_IDLE_ZERO = {"oneToClear", "oneToSet", "oneToToggle"}
_IDLE_ONE = {"zeroToClear", "zeroToSet", "zeroToToggle"}
_GLOB_CHARS = re.compile(r"[*?\[]")

Positions = Callable[[tuple], "Mark | None"]


@slotted
class Constraint:
    field: str  # field name (for messages)
    lsb: int
    width: int
    kind: int  # C_RANGE | C_ENUM
    values: list[tuple[int, int]]  # C_RANGE: [(min, max)]; C_ENUM: [(value, mask), ...]

    def allows(self, v: int) -> bool:
        if self.kind == C_RANGE:
            return self.values[0][0] <= v <= self.values[0][1]
        return any(v & m == val for val, m in self.values)


@slotted
class PolicyEntry:
    address: int
    name: str  # "GPIO.OUT" (path, cluster levels joined by ".")
    peripheral: str
    flags: int
    wmask: int  # bits the policy lets the agent change
    hwmask: int  # bits the hardware lets anyone change (writable fields)
    idle: int  # value of the no-effect pattern for write-1/write-0 style bits
    idlemask: int  # bits whose no-effect value is known (idle is meaningful there)
    reset: int
    register: Register
    fields: list[Field]
    constraints: list[Constraint] = field(default_factory=list)
    # What decided (for the audit log): a rule label (``rule_label``), a hardware reason, or None
    # (no rule allows it). read: reading allowed or refused; write: writing allowed or refused;
    # protected: why the hardware-writable bits outside wmask are kept from the agent.
    read_rule: str | None = None
    write_rule: str | None = None
    protected_rule: str | None = None

    @property
    def readable(self) -> bool:
        return bool(self.flags & F_READ)

    @property
    def writable(self) -> bool:
        return bool(self.flags & F_WRITE)


@slotted
class Block:
    """A span of addresses that belongs to a peripheral (merged address blocks)."""

    start: int
    size: int
    name: str  # peripheral name(s)
    # One bit per 32-bit word: 1 = a register exists there. Only kept for peripherals that
    # have allowed registers, so the device can tell "unknown" from "denied" there.
    known: bytes | None = None


@slotted
class PeripheralInfo:
    name: str
    base: int
    register_count: int
    allowed: int  # registers of it in the policy table


@dataclass
class PolicyTable:
    chip: str
    entries: list[PolicyEntry]
    blocks: list[Block]
    peripherals: list[PeripheralInfo]
    source_path: str | None = None  # the chip database file, when the caller knows it
    # (address, read decider, write decider) of the registers an allow rule named that have no entry
    # (a deny rule or the hardware took them away): the audit log names that rule, not only "not
    # allowlisted".
    dropped: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    _device: Any = field(default=None, repr=False, compare=False)
    _sheet: Any = field(default=None, repr=False, compare=False)

    def entry_at(self, address: int) -> PolicyEntry | None:
        lo, hi = 0, len(self.entries)
        while lo < hi:
            mid = (lo + hi) // 2
            a = self.entries[mid].address
            if a == address:
                return self.entries[mid]
            if a < address:
                lo = mid + 1
            else:
                hi = mid
        return None

    def entry_named(self, name: str) -> PolicyEntry | None:
        key = name.upper()
        for e in self.entries:
            if e.name.upper() == key:
                return e
        return None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the tables derived on first use: equal policies pickle alike (the
        render cache and render traces fingerprint a plan by its pickle)."""
        return {**self.__dict__, "_device": None, "_sheet": None}

    @property
    def device(self) -> Any:
        """The encoded tables the device templates embed (``clawgen.chips.tables``)."""
        if self._device is None:
            from clawgen.chips.tables import device_tables

            self._device = device_tables(self)
        return self._device

    @property
    def sheet(self) -> Any:
        """The datasheet tables ``clawsheet`` embeds (``clawgen.chips.tables``)."""
        if self._sheet is None:
            from clawgen.chips.tables import sheet_tables

            self._sheet = sheet_tables(self)
        return self._sheet


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass
class _Rule:
    pattern: str  # upper-cased
    access: set[str]
    deny: bool
    path: tuple  # spec path, e.g. ("registers", "allow", 2)
    from_defaults: bool
    regex: re.Pattern[str] = field(init=False)
    literal_prefix: str = field(init=False)
    periph: str | None = field(init=False)  # literal peripheral name, if the first segment has no glob
    exact: bool = field(init=False)
    matches: int = 0
    write_hits: int = 0  # matches where a write allow reached hardware-writable bits

    def __post_init__(self) -> None:
        self.regex = re.compile(fnmatch.translate(self.pattern))
        m = _GLOB_CHARS.search(self.pattern)
        self.literal_prefix = self.pattern if m is None else self.pattern[: m.start()]
        self.exact = m is None
        first = self.pattern.split(".", 1)[0]
        self.periph = None if _GLOB_CHARS.search(first) else first

    def may_touch(self, periph: str) -> bool:
        return self.periph is None or self.periph == periph

    @property
    def label(self) -> str:
        """The rule as the audit log names it: ``registers.deny[0] (GPIO.STRAP write)``; the chip's
        built-in rules as ``registers.defaults allow[3] (GPIO.IN*)``."""
        access = "" if self.access == {"read", "write"} else " " + next(iter(self.access))
        if self.from_defaults:
            return f"registers.defaults {self.path[1]}[{self.path[2]}] ({self.pattern}{access})"
        return f"{_spec_path_text(self.path)} ({self.pattern}{access})"

    def may_match_fields_of(self, reg_path: str) -> bool:
        p = reg_path + "."
        n = min(len(p), len(self.literal_prefix))
        return p[:n] == self.literal_prefix[:n]


def _spec_path_text(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_rules(value: Any, base: tuple, from_defaults: bool, pos: Positions,
                 diags: list[Diagnostic]) -> list[_Rule]:
    rules: list[_Rule] = []
    if value is None:
        return rules
    if not isinstance(value, dict):
        diags.append(Diagnostic.at(pos(base), _spec_path_text(base), "expected a mapping with allow/deny lists"))
        return rules
    for kind in ("allow", "deny"):
        items = value.get(kind) or []
        if not isinstance(items, list):
            p = (*base, kind)
            diags.append(Diagnostic.at(pos(p), _spec_path_text(p), "expected a list of register patterns"))
            continue
        for i, item in enumerate(items):
            p = (*base, kind, i)
            access = "read-write"
            if isinstance(item, str):
                pattern = item
            elif isinstance(item, dict) and isinstance(item.get("match"), str):
                pattern = item["match"]
                access = item.get("access", "read-write")
                if access not in ACCESS_WORDS:
                    diags.append(Diagnostic.at(pos((*p, "access")), _spec_path_text((*p, "access")),
                                               f'access must be read, write or read-write, not "{access}"'
                                               f"{did_you_mean(str(access), ACCESS_WORDS)}"))
                    continue
            else:
                diags.append(Diagnostic.at(pos(p), _spec_path_text(p),
                                           'expected "PERIPHERAL.REGISTER[.FIELD]" or {match: ..., access: ...}'))
                continue
            pattern = pattern.strip()
            if not pattern or pattern.count(".") < 1:
                diags.append(Diagnostic.at(pos(p), _spec_path_text(p),
                                           f'pattern "{pattern}" must name PERIPHERAL.REGISTER (e.g. "GPIO.OUT*")'))
                continue
            rules.append(_Rule(pattern.upper(), set(ACCESS_WORDS[access]), kind == "deny", p, from_defaults))
    return rules


# ---------------------------------------------------------------------------------------------
# Per-register evaluation


def _field_access(f: Field, reg: Register) -> str:
    return f.access or reg.access


def _reg_mask(reg: Register) -> int:
    return (1 << reg.size) - 1


def hardware_masks(reg: Register, fields: list[Field]) -> tuple[int, int, int, bool, bool]:
    """(hwmask, idle, idlemask, read_effect, modified_writes) for one register."""
    full = _reg_mask(reg)
    read_effect = bool(reg.read_action)
    modified = reg.modified_write_values not in (None, "modify")
    if not fields:
        hw = full if reg.access in _WRITABLE else 0
        idle, idlemask = _idle_bits(reg.modified_write_values, full)
        return hw, idle, idlemask, read_effect, modified
    hw = idle = idlemask = 0
    for f in fields:
        mask = f.mask & full
        if _field_access(f, reg) in _WRITABLE:
            hw |= mask
        mwv = f.modified_write_values or reg.modified_write_values
        if mwv not in (None, "modify"):
            modified = True
        i, im = _idle_bits(mwv, mask)
        idle |= i
        idlemask |= im
        if f.read_action:
            read_effect = True
    return hw, idle, idlemask, read_effect, modified


def _idle_bits(mwv: str | None, mask: int) -> tuple[int, int]:
    if mwv in _IDLE_ZERO:
        return 0, mask
    if mwv in _IDLE_ONE:
        return mask, mask
    return 0, 0


def _field_constraints(reg: Register, f: Field) -> Constraint | None:
    wc = f.write_constraint or reg.write_constraint
    write_enums = [es for es in f.enums if es.usage == "write"]
    if wc is not None and wc.range is not None:
        return Constraint(f.name, f.lsb, f.width, C_RANGE, [wc.range])
    if (wc is not None and wc.use_enumerated_values) or write_enums:
        sets = write_enums or [es for es in f.enums if es.usage in ("write", "read-write")]
        values = [(v.value, v.mask) for es in sets for v in es.values]
        if not values or any(v.is_default for es in sets for v in es.values):
            return None  # an isDefault entry accepts every value
        return Constraint(f.name, f.lsb, f.width, C_ENUM, values)
    return None


@slotted
class _Verdict:
    read_allow: bool = False
    read_deny: bool = False
    read_exact: bool = False  # an allow entry names the register (or a field of it) without a glob
    wallow: int = 0
    wdeny: int = 0
    wrules: list[_Rule] = field(default_factory=list)  # allow rules that granted write bits
    rallow: list[_Rule] = field(default_factory=list)  # allow rules that granted reading
    rdeny: list[_Rule] = field(default_factory=list)  # deny rules that refused reading
    wdeny_rules: list[tuple[_Rule, int]] = field(default_factory=list)  # deny rules and the bits they refused


def _evaluate(ri: RegisterInstance, rules: list[_Rule], hw: int) -> _Verdict:
    v = _Verdict()
    path = ri.path.upper()
    periph = ri.peripheral.upper()
    full = _reg_mask(ri.register)
    for r in rules:
        if not r.may_touch(periph):
            continue
        if r.regex.match(path):
            r.matches += 1
            bits = full
            exact = r.exact
        elif r.may_match_fields_of(path):
            bits = 0
            exact = False
            for f in ri.fields:
                if r.regex.match(f"{path}.{f.name.upper()}"):
                    bits |= f.mask & full
                    exact = exact or r.exact
            if not bits:
                continue
            r.matches += 1
        else:
            continue
        if r.deny:
            if "read" in r.access:
                v.read_deny = True
                v.rdeny.append(r)
            if "write" in r.access:
                v.wdeny |= bits
                v.wdeny_rules.append((r, bits))
        else:
            if "read" in r.access:
                v.read_allow = True
                v.read_exact = v.read_exact or exact
                v.rallow.append(r)
            if "write" in r.access:
                v.wallow |= bits & hw
                if bits & hw:
                    r.write_hits += 1
                    v.wrules.append(r)
    return v


# ---------------------------------------------------------------------------------------------
# Defaults


@cache
def _default_policy_text(chip_name: str) -> str | None:
    p = chips_dir() / f"{chip_name}.policy.yaml"
    return p.read_text(encoding="utf-8") if p.is_file() else None


def default_policy(chip_name: str) -> dict:
    """The built-in default policy of a chip (``{"allow": [...], "deny": [...]}``); empty if none."""
    allow, deny = _default_policy_lists(chip_name)
    return {"allow": copy.deepcopy(allow), "deny": copy.deepcopy(deny)}


@cache
def _default_policy_lists(chip_name: str) -> tuple[list, list]:
    """The parsed default policy, once per process (callers get deep copies)."""
    text = _default_policy_text(chip_name)
    if text is None:
        return [], []
    data = yaml.load(text, Loader=FAST_LOADER) or {}
    return list(data.get("allow") or []), list(data.get("deny") or [])


# ---------------------------------------------------------------------------------------------
# Compile


def _no_pos(_path: tuple) -> Mark | None:
    return None


def compile_policy(chip: Chip, spec_registers_value: Any, positions: Positions | None = None,
                   ) -> tuple[PolicyTable, list[Diagnostic]]:
    """The policy table for ``chip`` from the spec's ``registers:`` value (None = defaults)."""
    pos = positions or _no_pos
    diags: list[Diagnostic] = []
    value = spec_registers_value if spec_registers_value is not None else {}
    if not isinstance(value, dict):
        diags.append(Diagnostic.at(pos(("registers",)), "registers", "expected a mapping with allow/deny lists"))
        value = {}
    use_defaults = value.get("defaults", True)
    if not isinstance(use_defaults, bool):
        p = ("registers", "defaults")
        diags.append(Diagnostic.at(pos(p), _spec_path_text(p), "defaults must be true or false"))
        use_defaults = True
    rules: list[_Rule] = []
    if use_defaults:
        rules += _parse_rules(default_policy(chip.name), ("defaults",), True, _no_pos, [])
        if value.get("defaults") is True and _default_policy_text(chip.name) is None:
            # e.g. a user's own import of esp32c3.svd as "mychip": the esp32c3 defaults do not apply.
            p = ("registers", "defaults")
            diags.append(Diagnostic.at(pos(p), _spec_path_text(p),
                                       f"chip {chip.name} has no built-in default policy, so `defaults: true` "
                                       "adds nothing; list what to allow", WARNING))
    rules += _parse_rules(value, ("registers",), False, pos, diags)

    by_addr: dict[int, list[tuple[RegisterInstance, _Verdict, tuple]]] = {}
    known: set[int] = set()  # word addresses where some register exists
    counts: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}  # peripheral -> (lowest, highest) register address
    for ri in _touchable_registers(chip, rules, counts, known, spans):
        hwinfo = hardware_masks(ri.register, ri.fields)
        v = _evaluate(ri, rules, hwinfo[0])
        if v.read_allow or v.read_deny or v.wallow or v.wdeny:
            if ri.register.size != 32 or ri.address % 4:
                _warn_unsupported(ri, rules, pos, diags)
                continue
            by_addr.setdefault(ri.address, []).append((ri, v, hwinfo))

    entries: list[PolicyEntry] = []
    dropped: list[tuple[int, str | None, str | None]] = []
    for addr in sorted(by_addr):
        e = _merge(addr, by_addr[addr], pos, diags, dropped)
        if e is not None:
            entries.append(e)

    _unmatched(chip, rules, pos, diags)
    for r in rules:
        if r.matches and not r.deny and not r.from_defaults and r.access == {"write"} and not r.write_hits:
            diags.append(Diagnostic.at(pos(r.path), _spec_path_text(r.path),
                                       f'"{r.pattern}" is read-only in hardware; write access has no effect',
                                       WARNING))
    allowed_periphs = {e.peripheral for e in entries}
    blocks = _blocks(chip, allowed_periphs, known, spans)
    allowed_count: dict[str, int] = {}
    for e in entries:
        allowed_count[e.peripheral] = allowed_count.get(e.peripheral, 0) + 1
    periphs = [PeripheralInfo(p.name, p.base_address, counts.get(p.name, 0), allowed_count.get(p.name, 0))
               for p in sorted(chip.peripherals, key=lambda p: (p.base_address, p.name))]
    return PolicyTable(chip.name, entries, blocks, periphs, dropped=dropped), diags


def _touchable_registers(chip: Chip, rules: list[_Rule], counts: dict[str, int], known: set[int],
                         spans: dict[str, tuple[int, int]]) -> Iterator[RegisterInstance]:
    """The register instances of the peripherals some rule may reach, in ``iter_registers``
    order; on the way, every peripheral's register count and address span and the word address
    of every register of the chip. Most of a chip is named by no rule: its registers are only
    counted and located (``Chip.register_addresses``), never built as instances."""
    for p in chip.peripherals:
        periph = p.name.upper()
        if any(r.may_touch(periph) for r in rules):
            addrs = []
            for ri in chip.iter_peripheral_registers(p):
                addrs.append(ri.address)
                yield ri
        else:
            addrs = chip.register_addresses(p)
        counts[p.name] = counts.get(p.name, 0) + len(addrs)
        known.update(a & ~3 for a in addrs)
        if addrs:
            lo, hi = min(addrs), max(addrs)
            if p.name in spans:  # two peripherals of one name (not from our importer): cover both
                lo, hi = min(lo, spans[p.name][0]), max(hi, spans[p.name][1])
            spans[p.name] = (lo, hi)


def _warn_unsupported(ri: RegisterInstance, rules: list[_Rule], pos: Positions, diags: list[Diagnostic]) -> None:
    for r in rules:
        if r.exact and not r.from_defaults and r.regex.match(ri.path.upper()):
            diags.append(Diagnostic.at(pos(r.path), _spec_path_text(r.path),
                                       f"{ri.path} is a {ri.register.size}-bit register at 0x{ri.address:08X}; "
                                       "only aligned 32-bit registers can be accessed", WARNING))


def _merge(addr: int, items: list[tuple[RegisterInstance, _Verdict, tuple]], pos: Positions,
           diags: list[Diagnostic], dropped: list[tuple[int, str | None, str | None]]) -> PolicyEntry | None:
    # Aliases at one address (alternate registers, overlapping peripherals): an allow through
    # any name counts, a deny through any name wins.
    ri, _, (hw, idle, idlemask, read_effect, modified) = items[0]
    read_allow = any(v.read_allow for _, v, _ in items)
    read_deny = any(v.read_deny for _, v, _ in items)
    read_exact = any(v.read_exact for _, v, _ in items)
    wallow = 0
    wdeny = 0
    for _, v, _ in items:
        wallow |= v.wallow
        wdeny |= v.wdeny
    hw_readable = ri.register.access in _READABLE or any(
        _field_access(f, ri.register) in _READABLE for f in ri.fields)
    can_read = hw_readable and read_allow and not read_deny and (read_exact or not read_effect)

    # writeAsRead fields are never changed by the agent.
    war = 0
    for f in ri.fields:
        wc = f.write_constraint or ri.register.write_constraint
        if wc is not None and wc.write_as_read:
            war |= f.mask
    wmask = wallow & ~wdeny & hw & ~war
    no_rmw = read_effect or modified or not hw_readable
    protected = hw & ~wmask
    if wmask and no_rmw and protected & ~idlemask:
        # Other writable bits can't be preserved (no read-back) and have no harmless value.
        wmask = 0
        user = [r for _, v, _ in items for r in v.wrules if not r.from_defaults]
        if user:
            diags.append(Diagnostic.at(
                pos(user[0].path), _spec_path_text(user[0].path),
                f"{ri.path} can't be written in part: it must not be read-modify-written and its other "
                "fields have no harmless value; allow (or deny) writing the whole register", WARNING))
    if not can_read and not wmask:
        if read_allow or wallow:  # an allow rule named it: keep what took it away
            r, w, _ = _deciders(items, False, hw_readable, read_effect, 0, hw, war)
            if r or w:
                dropped.append((addr, r, w))
        return None
    flags = 0
    if can_read:
        flags |= F_READ
    if wmask:
        flags |= F_WRITE
    if no_rmw:
        flags |= F_NO_RMW
    if can_read and not read_effect:
        flags |= F_READBACK
    if read_effect:
        flags |= F_READ_EFFECT
    deciders = _deciders(items, can_read, hw_readable, read_effect, wmask, hw, war)
    constraints = []
    for f in ri.fields:
        if f.mask & wmask:
            c = _field_constraints(ri.register, f)
            if c is not None:
                constraints.append(c)
    name = next((x.path for x, v, _ in items if v.read_allow or v.wallow), ri.path)
    periph = next((x.peripheral for x, v, _ in items if v.read_allow or v.wallow), ri.peripheral)
    return PolicyEntry(addr, name, periph, flags, wmask, hw, idle, idlemask, ri.register.reset_value,
                       ri.register, ri.fields, constraints, *deciders)


# Deciders that are not a spec rule (the audit log names them like rules).
HW_NOT_READABLE = "hardware: not readable"
HW_READ_EFFECT = "hardware: reading has side effects (allow the register by its exact name)"
HW_READ_ONLY = "hardware: read-only"
HW_NO_PARTIAL = "hardware: cannot be written in part (not safe to read-modify-write)"
HW_WRITE_AS_READ = "hardware: writeAsRead fields"


def _deciders(items: list[tuple[RegisterInstance, _Verdict, tuple]], can_read: bool, hw_readable: bool,
              read_effect: bool, wmask: int, hw: int, war: int) -> tuple[str | None, str | None, str | None]:
    """(read, write, protected) deciders of one entry: the first rule (in evaluation order:
    defaults, then the spec's allow, then deny) that made the decision, or a hardware reason, or
    None when no rule allows it."""
    verdicts = [v for _, v, _ in items]
    rallow = [r for v in verdicts for r in v.rallow]
    rdeny = [r for v in verdicts for r in v.rdeny]
    wallow = [r for v in verdicts for r in v.wrules]
    wdeny = [(r, bits) for v in verdicts for r, bits in v.wdeny_rules]
    if can_read:
        read = rallow[0].label
    elif rdeny:
        read = rdeny[0].label
    elif not hw_readable:
        read = HW_NOT_READABLE
    elif rallow and read_effect:
        read = HW_READ_EFFECT
    else:
        read = None
    granted = 0
    for v in verdicts:
        granted |= v.wallow
    denied = [r for r, bits in wdeny if bits & hw]
    if wmask:
        write = wallow[0].label
    elif denied:
        write = denied[0].label
    elif not hw:
        write = HW_READ_ONLY
    elif wallow:  # allowed bits that the hardware keeps (writeAsRead) or that cannot be written alone
        write = HW_WRITE_AS_READ if not granted & ~war else HW_NO_PARTIAL
    else:
        write = None
    protected = None
    if wmask:
        kept = [r for r, bits in wdeny if bits & hw & ~wmask]
        if kept:
            protected = kept[0].label
        elif hw & war & ~wmask:
            protected = HW_WRITE_AS_READ
    return read, write, protected


def _unmatched(chip: Chip, rules: list[_Rule], pos: Positions, diags: list[Diagnostic]) -> None:
    names: list[str] | None = None
    for r in rules:
        if r.matches or r.from_defaults:
            continue
        if names is None:
            names = [ri.path for ri in chip.iter_registers()]
        diags.append(Diagnostic.at(pos(r.path), _spec_path_text(r.path),
                                   f'"{r.pattern}" matches no register or field of {chip.name}'
                                   f"{_suggest(chip, r.pattern, names)}", ERROR))


def _suggest(chip: Chip, pattern: str, names: list[str]) -> str:
    plain = _GLOB_CHARS.sub("", pattern.replace("[", "").replace("]", ""))
    parts = pattern.split(".")
    if len(parts) >= 3:
        # Maybe a field: suggest among the fields of the register it names.
        ri = chip.find_register(".".join(parts[:-1]))
        if ri is not None:
            return did_you_mean(pattern, [f"{ri.path}.{f.name}" for f in ri.fields])
    periph = parts[0]
    if chip.peripheral(periph) is None:
        hint = did_you_mean(periph, [p.name for p in chip.peripherals])
        if hint:
            return hint
    upper = {n.upper(): n for n in names}
    s = did_you_mean(plain, list(upper))
    if s:
        key = s.split('"')[1]
        return f' (did you mean "{upper[key]}"?)'
    return ""


def _blocks(chip: Chip, allowed_periphs: set[str], known: set[int],
            reg_spans: dict[str, tuple[int, int]]) -> list[Block]:
    spans: list[tuple[int, int, str]] = []
    for p in chip.peripherals:
        ranges = [(p.base_address + b.offset, b.size) for b in p.address_blocks if b.size > 0]
        # Also the span of its registers: vendor files often leave some outside their blocks.
        if p.name in reg_spans:
            lo, hi = reg_spans[p.name]
            ranges.append((lo, hi + 4 - lo))
        for start, size in ranges:
            spans.append((start, start + size, p.name))
    spans.sort()
    merged: list[list[Any]] = []
    for start, end, name in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if name not in merged[-1][2]:
                merged[-1][2].append(name)
        else:
            merged.append([start, end, [name]])
    blocks: list[Block] = []
    for start, end, names in merged:
        bitmap = None
        if any(n in allowed_periphs for n in names):
            words = (end - start + 3) // 4
            bits = bytearray((words + 7) // 8)
            for w in range(words):
                if (start & ~3) + 4 * w in known:
                    bits[w >> 3] |= 1 << (w & 7)
            bitmap = bytes(bits)
        blocks.append(Block(start, end - start, "/".join(names), bitmap))
    return blocks

