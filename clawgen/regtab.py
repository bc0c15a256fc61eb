"""The register layer's tables as one device file, ``/clawreg.tab``, read by offset.

As constants in clawreg.py / clawsheet.py the allowlist and the datasheet (14 KB for the
register-assistant on an ESP32-S3) are loaded into the GC heap with the .mpy; as a file, the
device reads the few bytes a lookup needs and the heap only holds the code.

The records inside are exactly the bytes of ``clawgen.chips.tables`` (``DeviceTables`` /
``SheetTables``: ENTRY_FORMAT, BLOCK_FORMAT ... are defined there, once); this module only
places them in the file. The file is text (shipped like /ca.pem): binary tables are hex (two
characters per byte), the name and datasheet tables are UTF-8 text. Offsets are byte offsets into
the file; the templates render them as ``const()`` ints:

- ``E`` entries, ``C`` constraints, ``F`` fields, ``B`` blocks, ``K`` known-register bitmap,
  ``NO``/``FO``/``BO`` name offset tables (``<H``, byte offsets into the text, end sentinel),
  ``RO`` rule label offsets (``<H``), ``D`` the dropped registers, ``LO`` layout index per entry (``<H``), ``LA`` layout offsets (``<I``, end sentinel): hex;
- ``N`` register names, ``FN`` field names, ``BN`` block names, ``RN`` the deciding rules' labels
  (newline-joined), ``M`` the
  peripheral list, ``L`` the datasheet layouts (concatenated): text.

A bare register plan (tests rendering clawreg alone, without a build) keeps the same sections
inline as one bytes constant instead of a file (``inline``; binary sections raw there, not hex).
"""

from __future__ import annotations

import struct
from typing import Any

from clawgen.records import record

TAB_PATH = "/clawreg.tab"


@record
class RegTab:
    data: bytes  # the file's content (inline: the same sections with the binary ones raw, not hex)
    at: dict[str, int]  # section -> byte offset
    size: dict[str, int]  # section -> bytes it takes (hex sections in the file: twice the table's)
    entries: int
    blocks: int
    path: str | None  # the device file, or None: the bytes are inline in clawreg.py
    dropped: int = 0  # DROPPED records (clawgen.chips.tables)

    @property
    def text(self) -> str:
        """The device file's content (ASCII hex and UTF-8 text)."""
        return self.data.decode("utf-8")

    @property
    def hex_factor(self) -> int:
        """File bytes per table byte in the binary sections: 2 (hex) in the file, 1 inline."""
        return 2 if self.path is not None else 1

    def literal(self) -> str:
        """The inline constant for a bare register plan (b'' when the tables are a file)."""
        if self.path is not None or not self.data:
            return "b''"
        d = self.data
        return "(\n" + "".join(f"    {d[i:i + 32]!r}\n" for i in range(0, len(d), 32)) + ")"


def _offsets(parts: list[bytes], fmt: str) -> bytes:
    out = []
    pos = 0
    for p in parts:
        out.append(pos)
        pos += len(p)
    out.append(pos)
    limit = 0xFFFF if fmt == "H" else 0xFFFFFFFF
    if pos > limit:
        raise ValueError(f"register table text of {pos} bytes is too large for its offset table")
    return struct.pack(f"<{len(out)}{fmt}", *out)


def _lines(names: list[str]) -> tuple[str, bytes]:
    """Newline-joined names and their <H byte offsets (name i is text[o[i]:o[i+1]-1])."""
    raw = [(n + "\n").encode("utf-8") for n in names]
    return "".join(n + "\n" for n in names), _offsets(raw, "H")


def build(registers: Any, *, inline: bool = False) -> RegTab:
    """The table file of a build's register policy (``Plan.registers``, a ``PolicyTable``, or None)."""
    t = registers.device if registers is not None else None
    s = registers.sheet if registers is not None else None
    names, noff = _lines(t.names if t else [])
    fnames, foff = _lines(t.field_names if t else [])
    bnames, boff = _lines(t.block_names if t else [])
    rnames, roff = _lines(t.rules if t else [])
    layouts = [x.encode("utf-8") for x in (s.layouts if s else [])]
    binary = {
        "E": t.entries_bytes if t else b"", "C": t.cons_bytes if t else b"", "F": t.fields_bytes if t else b"",
        "B": t.blocks_bytes if t else b"", "K": t.known if t else b"", "NO": noff, "FO": foff, "BO": boff, "RO": roff,
        "D": t.dropped_bytes if t else b"",
        "LO": s.layout_of if s else b"", "LA": _offsets(layouts, "I"),
    }
    text = {"N": names, "FN": fnames, "BN": bnames, "RN": rnames, "M": s.modules if s else "",
            "L": "".join(x.decode("utf-8") for x in layouts)}
    parts: list[bytes] = []
    at: dict[str, int] = {}
    size: dict[str, int] = {}
    pos = 0
    sections = [*((k, v if inline else v.hex().encode()) for k, v in binary.items()),
                *((k, v.encode("utf-8")) for k, v in text.items())]
    for name, data in sections:
        at[name] = pos
        size[name] = len(data)
        pos += len(data)
        parts.append(data)
    return RegTab(b"".join(parts), at, size, len(t.entries) if t else 0, len(t.blocks) if t else 0,
                  None if inline else TAB_PATH, len(t.dropped) if t else 0)

