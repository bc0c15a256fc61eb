"""Device tables generated from a ``PolicyTable``: the allowlist (for ``clawreg`` and the C user
module) and the datasheet (for ``clawsheet``), as constants that stay in flash.

The record layouts are defined here once (``ENTRY_FIELDS``, ``BLOCK_FIELDS``, the constraint
header's ``CONS_*_SHIFT``, the flags of ``clawgen.chips.policy``): the Python reader
(``templates/app/clawreg.py.j2``) gets them as the Jinja global ``table_layout`` (``LAYOUT``),
the C initializers (``c_entries``/``c_blocks``) are emitted in this field order, and
tests/chips/test_table_layout.py checks the C structs and flags of
``templates/usermod/clawreg/clawreg_policy.h`` and both readers' decoding against them.

Layouts (little-endian):

- ENTRIES: one 32-byte record per allowed register, sorted by address:
  ``<I addr, B flags, B ncons, H cons (word index into CONS), I wmask, I hwmask, I idle,
  I idlemask, H fstart, B fcount, B rread, B rwrite, B rprot, x pad>``; rread/rwrite/rprot name what
  decided reading, writing and keeping the other hardware-writable bits (``PolicyEntry.read_rule``
  ...): 0 = no rule allows it, else 1 + an index into RULES.
- CONS: 32-bit words; a record is a header ``lsb | width << 8 | kind << 16 | count << 24``
  then ``count`` pairs of words (``(min, max)`` for a range, ``(value, mask)`` per enum value).
- FIELDS: ``<B lsb, B width>`` per field of the writable registers (entry's fstart/fcount).
- DROPPED: ``<I addr, B rread, B rwrite, x x>`` per register an allow rule named that has no entry
  (a deny rule or the hardware took it away), sorted by address; refs as in ENTRIES. Only the
  audit log reads it.
- BLOCKS: ``<I start, I size, H known (byte offset into KNOWN or 0xFFFF), H name index>``,
  sorted by start; KNOWN holds one bit per 32-bit word (1 = a register exists).
- Names: newline-joined strings with a ``<H`` offset table each; RULES (the deciding rules'
  labels, ``registers.deny[0] (GPIO.STRAP write)``) is one of them.
"""

from __future__ import annotations

import fnmatch
import struct
import zlib
from dataclasses import dataclass
from functools import cache

import yaml

from clawgen.boards import FAST_LOADER
from clawgen.chips.model import Field, Register
from clawgen.chips.policy import (
    C_ENUM,
    C_RANGE,
    F_NO_RMW,
    F_READ,
    F_READ_EFFECT,
    F_READBACK,
    F_WRITE,
    PolicyTable,
)
from clawgen.resources import chips_dir

# (member name in clawreg_entry_t / clawreg_block_t, struct code): the order of the records and
# of the C initializers.
ENTRY_FIELDS: tuple[tuple[str, str], ...] = (
    ("addr", "I"), ("flags", "B"), ("ncons", "B"), ("cons", "H"), ("wmask", "I"), ("hwmask", "I"),
    ("idle", "I"), ("idlemask", "I"), ("fstart", "H"), ("fcount", "B"), ("rread", "B"), ("rwrite", "B"),
    ("rprot", "B"))
BLOCK_FIELDS: tuple[tuple[str, str], ...] = (("start", "I"), ("size", "I"), ("known", "H"), ("name", "H"))
# A register an allow rule named but that has no entry, and the rule that took it away (audit log
# only: the C module does not read it).
DROP_FIELDS: tuple[tuple[str, str], ...] = (("addr", "I"), ("rread", "B"), ("rwrite", "B"))


def _record_format(fields: tuple[tuple[str, str], ...]) -> str:
    """Little-endian, padded to a multiple of 4 bytes (so every record's words stay aligned)."""
    body = "<" + "".join(code for _, code in fields)
    return body + "x" * (-struct.calcsize(body) % 4)


ENTRY_FORMAT = _record_format(ENTRY_FIELDS)  # "<IBBHIIIIHBBBBxx"
ENTRY_SIZE = struct.calcsize(ENTRY_FORMAT)
BLOCK_FORMAT = _record_format(BLOCK_FIELDS)  # "<IIHH"
BLOCK_SIZE = struct.calcsize(BLOCK_FORMAT)
DROP_FORMAT = _record_format(DROP_FIELDS)  # "<IBBxx"
DROP_SIZE = struct.calcsize(DROP_FORMAT)
FIELD_FORMAT = "<BB"  # lsb, width
NO_KNOWN = 0xFFFF  # a block without a known-register bitmap
# A constraint record's header word: lsb | width << 8 | kind << 16 | count << 24.
CONS_LSB_SHIFT = 0
CONS_WIDTH_SHIFT = 8
CONS_KIND_SHIFT = 16
CONS_COUNT_SHIFT = 24


@dataclass(frozen=True)
class TableLayout:
    """The layout constants the device readers are rendered with (Jinja global ``table_layout``)."""

    entry_format: str = ENTRY_FORMAT
    entry_size: int = ENTRY_SIZE
    block_format: str = BLOCK_FORMAT
    block_size: int = BLOCK_SIZE
    drop_size: int = DROP_SIZE
    no_known: int = NO_KNOWN
    cons_width_shift: int = CONS_WIDTH_SHIFT
    cons_kind_shift: int = CONS_KIND_SHIFT
    cons_count_shift: int = CONS_COUNT_SHIFT
    f_read: int = F_READ
    f_write: int = F_WRITE
    f_no_rmw: int = F_NO_RMW
    f_readback: int = F_READBACK
    f_read_effect: int = F_READ_EFFECT
    c_range: int = C_RANGE
    c_enum: int = C_ENUM

    def entry_index(self, name: str) -> int:
        """Position of a member in an unpacked entry tuple."""
        return [n for n, _ in ENTRY_FIELDS].index(name)

    def block_prefix(self, count: int) -> str:
        """The struct format of a block record's first ``count`` members (``"<II"``, ``"<IIH"``)."""
        return "<" + "".join(code for _, code in BLOCK_FIELDS[:count])


LAYOUT = TableLayout()


@dataclass
class DeviceTables:
    entries: list[tuple[int, ...]]
    cons: list[int]
    fields: list[tuple[int, int]]
    field_names: list[str]
    names: list[str]
    blocks: list[tuple[int, int, int, int]]
    block_names: list[str]
    known: bytes
    rules: list[str]  # labels of the deciding rules (an entry's rread/rwrite/rprot - 1)
    dropped: list[tuple[int, int, int]]  # DROPPED records (address, rread, rwrite), sorted by address

    # Encoded forms for the MicroPython module.
    @property
    def entries_bytes(self) -> bytes:
        return b"".join(struct.pack(ENTRY_FORMAT, *e) for e in self.entries)

    @property
    def dropped_bytes(self) -> bytes:
        return b"".join(struct.pack(DROP_FORMAT, *d) for d in self.dropped)

    @property
    def cons_bytes(self) -> bytes:
        return struct.pack(f"<{len(self.cons)}I", *self.cons)

    @property
    def fields_bytes(self) -> bytes:
        return b"".join(struct.pack(FIELD_FORMAT, *f) for f in self.fields)

    @property
    def blocks_bytes(self) -> bytes:
        return b"".join(struct.pack(BLOCK_FORMAT, *b) for b in self.blocks)

    @property
    def policy_id(self) -> int:
        """A 30-bit fingerprint of the enforced tables: clawreg.py uses the C module only when
        the firmware's tables are the same as its own (a small int on MicroPython)."""
        data = self.entries_bytes + self.cons_bytes + self.blocks_bytes + self.known
        return zlib.crc32(data) & 0x3FFFFFFF

    def py(self, what: str) -> str:
        """A Python literal of one table, for the templates."""
        data: bytes | str = {
            "entries": lambda: self.entries_bytes, "cons": lambda: self.cons_bytes,
            "fields": lambda: self.fields_bytes, "blocks": lambda: self.blocks_bytes,
            "known": lambda: self.known,
            "names": lambda: self.joined(self.names), "name_offsets": lambda: self.offsets(self.names),
            "field_names": lambda: self.joined(self.field_names),
            "field_name_offsets": lambda: self.offsets(self.field_names),
            "block_names": lambda: self.joined(self.block_names),
            "block_name_offsets": lambda: self.offsets(self.block_names),
            "rules": lambda: self.joined(self.rules), "rule_offsets": lambda: self.offsets(self.rules),
        }[what]()
        return py_literal_lines(data)

    def c_entries(self) -> str:
        """C initializers of ``clawreg_entry_t``, members in ``ENTRY_FIELDS`` order."""
        rows = ["{" + ", ".join(_C_ENTRY_SPELL[k].format(v) for k, v in enumerate(e)) + "}" for e in self.entries]
        return ",\n    ".join(rows) if rows else "{0}"

    def c_blocks(self) -> str:
        """C initializers of ``clawreg_block_t``, members in ``BLOCK_FIELDS`` order."""
        rows = ["{" + ", ".join(_C_BLOCK_SPELL[k].format(v) for k, v in enumerate(b)) + "}" for b in self.blocks]
        return ",\n    ".join(rows) if rows else "{0}"

    def c_cons(self) -> str:
        return c_array_lines(self.cons) if self.cons else "0"

    def c_known(self) -> str:
        return c_array_lines(list(self.known), "0x{:02X}", 16) if self.known else "0"

    @staticmethod
    def joined(names: list[str]) -> str:
        return "\n".join(names)

    @staticmethod
    def offsets(names: list[str]) -> bytes:
        out = []
        pos = 0
        for n in names:
            out.append(pos)
            pos += len(n) + 1
        out.append(pos)  # end sentinel: name i is text[off[i]:off[i+1]-1]
        if pos > 0xFFFF:
            raise TableTooLarge("its register names take more than 64 KB")
        return struct.pack(f"<{len(out)}H", *out)


# How each member is written in the C initializers (hex for masks and addresses).
_C_SPELL = {"addr": "0x{:08X}u", "flags": "0x{:02X}u", "wmask": "0x{:08X}u", "hwmask": "0x{:08X}u",
            "idle": "0x{:08X}u", "idlemask": "0x{:08X}u", "start": "0x{:08X}u", "size": "0x{:08X}u",
            "known": "0x{:04X}u"}
_C_ENTRY_SPELL = [_C_SPELL.get(name, "{}u") for name, _ in ENTRY_FIELDS]
_C_BLOCK_SPELL = [_C_SPELL.get(name, "{}u") for name, _ in BLOCK_FIELDS]


class TableTooLarge(ValueError):
    """The policy allows more than the device tables can index (the spec must narrow it)."""


def device_tables(table: PolicyTable) -> DeviceTables:
    entries: list[tuple[int, ...]] = []
    cons: list[int] = []
    fields: list[tuple[int, int]] = []
    field_names: list[str] = []
    rules: dict[str, int] = {}

    def ref(label: str | None) -> int:
        if label is None:
            return 0
        if label not in rules:
            if len(rules) == 255:
                raise TableTooLarge("more than 255 of its rules decide something; merge some patterns")
            rules[label] = len(rules)
        return rules[label] + 1

    for e in table.entries:
        cons_start = len(cons)
        for c in e.constraints:
            cons.append(c.lsb << CONS_LSB_SHIFT | c.width << CONS_WIDTH_SHIFT | c.kind << CONS_KIND_SHIFT
                        | len(c.values) << CONS_COUNT_SHIFT)
            for a, b in c.values:
                cons += [a & 0xFFFFFFFF, b & 0xFFFFFFFF]
        if len(cons) > 0xFFFF or len(e.constraints) > 255:
            raise TableTooLarge("its value constraints overflow the constraint table")
        fstart = len(fields)
        fl = sorted(e.fields, key=lambda f: f.lsb) if e.flags & F_WRITE else []
        for f in fl[:255]:
            fields.append((f.lsb, f.width))
            field_names.append(f.name.upper())
        entries.append((e.address, e.flags, len(e.constraints), cons_start if e.constraints else 0,
                        e.wmask, e.hwmask, e.idle, e.idlemask, fstart, len(fields) - fstart,
                        ref(e.read_rule), ref(e.write_rule), ref(e.protected_rule)))
    known = bytearray()
    blocks = []
    block_names = []
    for b in table.blocks:
        off = NO_KNOWN
        if b.known is not None:
            off = len(known)
            known += b.known
        blocks.append((b.start, b.size, off, len(block_names)))
        block_names.append(b.name)
    dropped = [(addr, ref(r), ref(w)) for addr, r, w in table.dropped]  # (before the labels are listed)
    if len(known) >= NO_KNOWN:
        raise TableTooLarge("its known-register bitmap takes more than 64 KB")
    return DeviceTables(entries, cons, fields, field_names, [e.name.upper() for e in table.entries],
                        blocks, block_names, bytes(known), list(rules), dropped)


def reset_values(table: PolicyTable) -> dict[int, int]:
    """Address -> reset value of every register the policy can touch (seeds the simulator)."""
    return {e.address: e.reset & 0xFFFFFFFF for e in table.entries}


# ---------------------------------------------------------------------------------------------
# Datasheet


@cache
def _notes(chip_name: str) -> tuple[tuple[str, str], ...]:
    p = chips_dir() / f"{chip_name}.notes.yaml"
    if not p.is_file():
        return ()
    data = yaml.load(p.read_text(encoding="utf-8"), Loader=FAST_LOADER) or {}
    regs = data.get("registers") or {}
    return tuple((str(k).upper(), str(v)) for k, v in regs.items())


def description(chip_name: str, path: str, register: Register) -> str | None:
    """Our short description of a register: the chip's notes, else the DB's description."""
    key = path.upper()
    for pat, text in _notes(chip_name):
        if fnmatch.fnmatchcase(key, pat):
            return text
    if register.description:
        return " ".join(register.description.split())[:120]
    return None


_ACCESS_SHORT = {"read-only": "ro", "write-only": "wo", "read-write": "rw", "writeOnce": "w1",
                 "read-writeOnce": "rw1"}


def _field_line(reg: Register, f: Field) -> str:
    access = _ACCESS_SHORT.get(f.access or reg.access, f.access or reg.access)
    bits = f"[{f.msb}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"
    # The field's reset value is computed on the device from the register's (saves flash).
    line = f"  {f.name.upper()} {bits} {access}"
    extra = []
    if f.modified_write_values or reg.modified_write_values:
        extra.append(f.modified_write_values or reg.modified_write_values or "")
    if f.read_action or reg.read_action:
        extra.append("read:" + (f.read_action or reg.read_action or ""))
    wc = f.write_constraint or reg.write_constraint
    if wc is not None and wc.range is not None:
        extra.append(f"range={wc.range[0]}..{wc.range[1]}")
    for es in f.enums:
        vals = " ".join(f"{v.name}={'*' if v.is_default else v.value}" for v in es.values[:16])
        extra.append(f"{es.usage}:{{{vals}}}")
    return line + (" " + " ".join(extra) if extra else "")


@dataclass
class SheetTables:
    modules: str  # the text modules() returns
    layout_of: bytes  # <H per policy entry (clawreg's order): index into layouts
    layouts: list[str]  # "access reset=0x.. - description" then one line per field

    def py(self, what: str) -> str:
        return py_literal_lines({"modules": self.modules, "layout_of": self.layout_of}[what])

    def py_layouts(self) -> str:
        if not self.layouts:
            return "()"
        return "(\n" + "".join(f"    {py_literal_lines(x)},\n" for x in self.layouts) + ")"


def sheet_tables(table: PolicyTable) -> SheetTables:
    lines = []
    for p in table.peripherals:
        lines.append(f"{p.name} 0x{p.base:08X} {p.register_count} regs"
                     + (f", {p.allowed} allowed" if p.allowed else ""))
    layouts: list[str] = []
    layout_index: dict[str, int] = {}
    layout_of = []
    for e in table.entries:
        reg = e.register
        access = _ACCESS_SHORT.get(reg.access, reg.access)
        head = f"{access} reset=0x{e.reset & 0xFFFFFFFF:08X}"
        desc = description(table.chip, e.name, reg)
        if desc:
            head += " - " + " ".join(desc.split())
        fields = [_field_line(reg, f) for f in sorted(e.fields, key=lambda f: -f.lsb)]
        text = "\n".join([head, *fields])
        idx = layout_index.get(text)
        if idx is None:
            idx = layout_index[text] = len(layouts)
            layouts.append(text)
        layout_of.append(idx)
    return SheetTables("\n".join(lines), struct.pack(f"<{len(layout_of)}H", *layout_of), layouts)


def py_literal_lines(data: bytes | str, width: int = 96) -> str:
    """A bytes/str literal split over parenthesised lines (one constant after compilation)."""
    if not data:
        return repr(data)
    step = width // 4 if isinstance(data, bytes) else width
    parts = [repr(data[i:i + step]) for i in range(0, len(data), step)]
    if len(parts) == 1:
        return parts[0]
    return "(\n    " + "\n    ".join(parts) + "\n)"


def c_array_lines(values: list[int], fmt: str = "0x{:08X}u", per_line: int = 6) -> str:
    if not values:
        return "0"
    rows = [", ".join(fmt.format(v) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    return ",\n    ".join(rows)

