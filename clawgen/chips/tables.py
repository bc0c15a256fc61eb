"""Device tables generated from a ``PolicyTable``: the allowlist (for ``clawreg`` and the C user
module) and the datasheet (for ``clawsheet``), as constants that stay in flash.

Layouts (little-endian) shared by ``templates/app/clawreg.py.j2`` and
``templates/usermod/clawreg/`` - change them together:

- ENTRIES: one 28-byte record per allowed register, sorted by address:
  ``<I addr, B flags, B ncons, H cons (word index into CONS), I wmask, I hwmask, I idle,
  I idlemask, H fstart, B fcount, x pad>``.
- CONS: 32-bit words; a record is a header ``lsb | width << 8 | kind << 16 | count << 24``
  then ``count`` pairs of words (``(min, max)`` for a range, ``(value, mask)`` per enum value).
- FIELDS: ``<B lsb, B width>`` per field of the writable registers (entry's fstart/fcount).
- BLOCKS: ``<I start, I size, H known (byte offset into KNOWN or 0xFFFF), H name index>``,
  sorted by start; KNOWN holds one bit per 32-bit word (1 = a register exists).
- Names: newline-joined strings with a ``<H`` offset table each.
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
from clawgen.chips.policy import F_WRITE, PolicyTable
from clawgen.resources import chips_dir

ENTRY_FORMAT = "<IBBHIIIIHBx"
ENTRY_SIZE = struct.calcsize(ENTRY_FORMAT)
BLOCK_FORMAT = "<IIHH"
BLOCK_SIZE = struct.calcsize(BLOCK_FORMAT)
NO_KNOWN = 0xFFFF


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

    # Encoded forms for the MicroPython module.
    @property
    def entries_bytes(self) -> bytes:
        return b"".join(struct.pack(ENTRY_FORMAT, *e) for e in self.entries)

    @property
    def cons_bytes(self) -> bytes:
        return struct.pack(f"<{len(self.cons)}I", *self.cons)

    @property
    def fields_bytes(self) -> bytes:
        return b"".join(struct.pack("<BB", *f) for f in self.fields)

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
        }[what]()
        return py_literal_lines(data)

    def c_entries(self) -> str:
        rows = [f"{{0x{a:08X}u, 0x{fl:02X}u, {nc}u, {ci}u, 0x{wm:08X}u, 0x{hw:08X}u, 0x{idle:08X}u, "
                f"0x{im:08X}u, {fs}u, {fc}u}}"
                for a, fl, nc, ci, wm, hw, idle, im, fs, fc in self.entries]
        return ",\n    ".join(rows) if rows else "{0}"

    def c_blocks(self) -> str:
        rows = [f"{{0x{s:08X}u, 0x{z:08X}u, 0x{k:04X}u, {n}u}}" for s, z, k, n in self.blocks]
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


class TableTooLarge(ValueError):
    """The policy allows more than the device tables can index (the spec must narrow it)."""


def device_tables(table: PolicyTable) -> DeviceTables:
    entries: list[tuple[int, ...]] = []
    cons: list[int] = []
    fields: list[tuple[int, int]] = []
    field_names: list[str] = []
    for e in table.entries:
        cons_start = len(cons)
        for c in e.constraints:
            cons.append(c.lsb | c.width << 8 | c.kind << 16 | len(c.values) << 24)
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
                        e.wmask, e.hwmask, e.idle, e.idlemask, fstart, len(fields) - fstart))
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
    if len(known) >= NO_KNOWN:
        raise TableTooLarge("its known-register bitmap takes more than 64 KB")
    return DeviceTables(entries, cons, fields, field_names, [e.name.upper() for e in table.entries],
                        blocks, block_names, bytes(known))


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

