"""Importer edge cases found by review: odd digits, XML error positions, the plain-field fast
path against the general one, whitespace in descriptions, reference cycles, the CLI on a directory."""

from __future__ import annotations

import gc
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.chips.db import write_chip
from clawgen.chips.model import Field
from clawgen.chips.svd import import_svd
from clawgen.cli import cli
from clawgen.diagnostics import DiagnosticError
from tests.special_files import KINDS, make_not_regular

SVD = Path(__file__).parent / "svd"


def _svd(tmp_path: Path, registers: str) -> Path:
    p = tmp_path / "t.svd"
    p.write_text("<device><name>D</name><peripherals><peripheral><name>P</name><baseAddress>0</baseAddress>\n"
                 f"<registers>{registers}</registers></peripheral></peripherals></device>", encoding="utf-8")
    return p


def _field(name: str, lsb: int, width: int, extra: str = "") -> str:
    return f"<field><name>{name}</name><bitOffset>{lsb}</bitOffset><bitWidth>{width}</bitWidth>{extra}</field>"


def test_non_ascii_digits_are_warnings_not_crashes(tmp_path: Path) -> None:
    # str.isdigit() accepts "²", which int() rejects; "٣" is a decimal digit, but not an SVD one.
    p = _svd(tmp_path, "<register><name>R</name><addressOffset>²</addressOffset><size>²</size>\n<fields>"
                       "<field><name>F</name><bitOffset>²</bitOffset><bitWidth>٣</bitWidth></field>\n"
                       + _field("G", 4, 2) + "</fields></register>")
    chip, diags = import_svd(p, "t")
    assert [(d.line, d.path, d.message) for d in diags] == [
        (2, "P.R", '<addressOffset> "²" is not a number; ignored'),
        (2, "P.R", "register without <addressOffset>; taken as 0"),
        (2, "P.R", '<size> "²" is not a number; ignored'),
        (3, "P.R.F", '<bitOffset> "²" is not a number; ignored'),
        (3, "P.R.F", '<bitWidth> "٣" is not a number; ignored'),
        (3, "P.R.F", "field without a valid bit position (bitOffset/bitWidth, lsb/msb or bitRange); skipped"),
    ]
    ri = chip.find_register("P.R")
    assert ri is not None
    assert (ri.address, ri.size, [(f.name, f.lsb, f.width) for f in ri.fields]) == (0, 32, [("G", 4, 2)])


def test_xml_errors_give_line_and_column_once(tmp_path: Path) -> None:
    p = tmp_path / "t.svd"
    p.write_bytes(b"<device>\n  <name>X</nme>\n</device>")
    with pytest.raises(DiagnosticError) as e:
        import_svd(p, "t")
    d = e.value.diagnostics[-1]
    assert (d.line, d.column, d.message) == (
        2, 16, "not well-formed XML: Opening and ending tag mismatch: name line 2 and nme")


_DESCRIPTIONS = ["one line", "two\n      lines", "tab\there", "nbsp\u00a0inside", "  padded  ", "   ",
                 "double  space"]
_SQUEEZED = ["one line", "two lines", "tab here", "nbsp inside", "padded", None, "double space"]


def _described_fields(extra_on_last: str) -> str:
    fields = "".join(_field(f"F{i}", i, 1, f"<description>{d}</description>") for i, d in enumerate(_DESCRIPTIONS))
    return fields + _field("LAST", 16, 2, extra_on_last)


def test_plain_and_general_field_paths_agree(tmp_path: Path) -> None:
    """PLAIN's fields all take the fast path; MIXED has one field with an enumeration, which sends
    the whole register down the general path. Both must give the same fields."""
    enum = "<enumeratedValues><enumeratedValue><name>ON</name><value>1</value></enumeratedValue></enumeratedValues>"
    p = _svd(tmp_path,
             f"<register><name>PLAIN</name><addressOffset>0</addressOffset><access>read-write</access><fields>"
             f"{_described_fields('<access>read-only</access>')}</fields></register>"
             f"<register><name>MIXED</name><addressOffset>4</addressOffset><access>read-write</access><fields>"
             f"{_described_fields('<access>read-only</access>' + enum)}</fields></register>")
    chip, diags = import_svd(p, "t")
    assert diags == []
    plain, mixed = chip.find_register("P.PLAIN"), chip.find_register("P.MIXED")
    assert plain is not None and mixed is not None
    expected = [Field(f"F{i}", i, 1, "read-write", description=d) for i, d in enumerate(_SQUEEZED)]
    assert plain.register.fields == [*expected, Field("LAST", 16, 2, "read-only")]
    assert mixed.register.fields[:-1] == expected
    last = mixed.register.fields[-1]
    assert (last.name, last.lsb, last.width, last.access, [v.name for v in last.enums[0].values]) == (
        "LAST", 16, 2, "read-only", ["ON"])


def test_unknown_element_among_plain_fields_is_warned_once(tmp_path: Path) -> None:
    p = _svd(tmp_path, "<register><name>R</name><addressOffset>0</addressOffset><fields>"
                       + _field("A", 0, 1) + "<bogus/><bogus/>" + _field("B", 1, 1) + "</fields></register>")
    chip, diags = import_svd(p, "t")
    assert [(d.line, d.message) for d in diags] == [(2, "unknown element <bogus> in <fields> ignored (2 times)")]
    assert [(f.name, f.lsb) for f in chip.find_register("P.R").fields] == [("A", 0), ("B", 1)]


def test_a_field_can_derive_from_a_plain_field_of_another_register(tmp_path: Path) -> None:
    p = _svd(tmp_path, "<register><name>R1</name><addressOffset>0</addressOffset><fields>"
                       + _field("EN", 3, 2, "<access>write-only</access>") + "</fields></register>"
                       "<register><name>R2</name><addressOffset>4</addressOffset><fields>"
                       '<field derivedFrom="R1.EN"><name>EN2</name></field></fields></register>')
    chip, diags = import_svd(p, "t")
    assert diags == []
    assert [(f.name, f.lsb, f.width, f.access) for f in chip.find_register("P.R2").fields] == [
        ("EN2", 3, 2, "write-only")]
    assert [(f.name, f.lsb, f.width, f.access) for f in chip.find_register("P.R1").fields] == [
        ("EN", 3, 2, "write-only")]


def test_the_import_s_objects_leave_the_young_generations_without_a_gc_pass() -> None:
    # Left young, the first allocation after the import ran a GC pass over all of them (5% of an
    # import's time); they are moved to the oldest generation instead, and nothing the program
    # froze itself is released.
    # (CPython 3.12 keeps objects of its own frozen from the start: there the import moves nothing.)
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    chip, _ = import_svd(SVD / "sanity.svd", "x")
    ours = {id(chip.peripherals), id(chip.peripherals[0]), id(chip.peripherals[0].registers)}
    young = {id(o) for g in (0, 1) for o in gc.get_objects(generation=g)}
    assert gc.get_freeze_count() == frozen_before
    if frozen_before == 0:
        assert not ours & young
        assert gc.get_count()[0] < 100
    else:
        assert ours <= young

    kept = [[]]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        import_svd(SVD / "sanity.svd", "x")
        assert gc.get_freeze_count() == frozen  # the program's frozen objects stay frozen
        assert id(kept) not in {id(o) for g in (0, 1, 2) for o in gc.get_objects(generation=g)}
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("name", ["derive.svd", "sanity.svd", "arrays.svd", "clusters.svd"])
def test_import_leaves_no_reference_cycles_and_restores_the_gc(name: str) -> None:
    was = gc.isenabled()
    try:
        gc.collect()
        gc.disable()
        chip, diags = import_svd(SVD / name, "x")
        assert not gc.isenabled()  # left as the caller had it
        del chip, diags
        # Everything the import built was freed by reference counting: the cyclic GC finds none
        # of it (other threads of the test process may leave garbage of their own: ignored).
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith(("clawgen.", "lxml."))]
        assert ours == []
        gc.enable()
        import_svd(SVD / name, "x")
        assert gc.isenabled()
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()
        else:
            gc.disable()


def test_cli_on_a_directory_or_a_truncated_file_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.svd").mkdir()
    r = CliRunner().invoke(cli, ["svd", "import", "dir.svd", "--chip", "x"])
    assert r.exit_code == 2
    assert "dir.svd:1:1: error: cannot read SVD file: " in r.output and "Traceback" not in r.output
    (tmp_path / "cut.svd").write_bytes((SVD / "derive.svd").read_bytes()[:700])
    r = CliRunner().invoke(cli, ["svd", "import", "cut.svd", "--chip", "x"])
    assert r.exit_code == 2
    errors = [line for line in r.output.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith("cut.svd:") and "not well-formed XML" in errors[0]
    assert ", column " not in errors[0]
    assert not (tmp_path / "chips").exists()


def test_written_database_gets_ordinary_file_permissions(tmp_path: Path) -> None:
    chip, _ = import_svd(SVD / "arrays.svd", "a")
    path = write_chip(chip, tmp_path / "a.json.gz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ---------------------------------------------------------------------------------------------
# Hostile numbers and arrays (issue 9). Each import runs in a child process under a CPU-time and
# an address-space limit: a regression (a walk over 10^9 array elements, a 2^10,000,000,000 mask)
# ends in SIGXCPU or MemoryError instead of hanging the suite, and the test fails on the exit code.

_CPU_SECONDS = 20  # the fixed importer needs well under 1 s for each input below
_ADDRESS_SPACE = 1 << 30


def _limits() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (_CPU_SECONDS, _CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))


def _clawgen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from clawgen.cli import main; main()", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, preexec_fn=_limits,
                          env={**os.environ, "CLAWGEN_CHIP_PATH": ""})


def _import(tmp_path: Path, registers: str) -> subprocess.CompletedProcess[str]:
    _svd(tmp_path, registers)
    return _clawgen(tmp_path, "svd", "import", "t.svd", "--chip", "t", "--out", "chips")


def _lines(text: str, kind: str) -> list[str]:
    return [line for line in text.splitlines() if f": {kind}: " in line]


_BIG = "1" * 40


def test_bit_numbers_are_bounded_by_the_register(tmp_path: Path) -> None:
    r = _import(tmp_path, "<register><name>R</name><addressOffset>0</addressOffset><size>32</size><fields>\n"
                + _field("A", int(_BIG), 1) + "\n"  # line 3: 40-digit bitOffset
                + _field("B", 0, int(_BIG)) + "\n"  # line 4: 40-digit bitWidth
                + _field("C", 10_000_000_000, 1) + "\n"  # line 5: 2^10,000,000,000 as a mask
                + "<field><name>D</name><bitRange>[9999999999:0]</bitRange></field>\n"  # line 6
                + _field("E%s", 0, 1, "<dim>1000000</dim><dimIncrement>1</dimIncrement>") + "\n"  # line 7
                + "<field><name>F</name><bitOffset>" + "7" * 5000 + "</bitOffset><bitWidth>1</bitWidth></field>\n"
                + _field("OK", 4, 4) + "</fields></register>")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    warnings = _lines(r.stderr, "warning")
    assert 't.svd:3:1: warning: at P.R.A: <bitOffset> "' + _BIG + '" does not fit in 64 bits; ignored' in warnings
    assert 't.svd:4:1: warning: at P.R.B: <bitWidth> "' + _BIG + '" does not fit in 64 bits; ignored' in warnings
    assert ('t.svd:5:1: warning: at P.R.C: field "C" (bit offset 10000000000, width 1) lies outside the 32-bit '
            "register; skipped") in warnings
    assert ('t.svd:6:1: warning: at P.R.D: field "D" (bit offset 0, width 10000000000) lies outside the 32-bit '
            "register; skipped") in warnings
    assert ('t.svd:7:1: warning: at P.R.E%s: field "E%s" (bit offset 0, width 1, 1000000 elements 1 bits apart) '
            "lies outside the 32-bit register; skipped") in warnings
    assert ("t.svd:8:1: warning: at P.R.F: <bitOffset> has 5000 characters: too large for any address, size or "
            "bit number; ignored") in warnings
    assert "1 registers (arrays expanded), 1 fields" in r.stdout  # only OK survives


def test_overlong_numbers_elsewhere_are_warnings(tmp_path: Path) -> None:
    digits = "9" * 5000  # above CPython's int() digit limit: must not reach int()
    r = _import(tmp_path, f"<register><name>R</name><addressOffset>{digits}</addressOffset>\n"
                          f"<resetValue>0x{'F' * 40}</resetValue><fields><field><name>F</name><bitOffset>0</bitOffset>"
                          "<bitWidth>2</bitWidth><enumeratedValues><enumeratedValue><name>V</name>"
                          f"<value>{digits}</value></enumeratedValue></enumeratedValues></field></fields></register>\n"
                          "<register><name>A%s</name><addressOffset>4</addressOffset><dim>2</dim><dimIncrement>4"
                          "</dimIncrement><dimIndex>0-1000000000</dimIndex></register>")
    assert r.returncode == 0, r.stderr[-2000:]
    warnings = [w.split(": warning: ", 1)[1] for w in _lines(r.stderr, "warning")]
    assert warnings == [
        "at P.R: <addressOffset> has 5000 characters: too large for any address, size or bit number; ignored",
        "at P.R: register without <addressOffset>; taken as 0",
        'at P.R: <resetValue> "0x' + "F" * 40 + '" does not fit in 64 bits; ignored',
        'at P.R.F.<enumeratedValues>: enumeratedValue "V": value "' + "9" * 40 + '... (5000 characters)" is not '
        "a number; skipped",
        'at P.A%s: <dimIndex> "0-1000000000" not understood; using 0..1',
    ]


def _nested(levels: int, dim: int) -> str:
    inner = "<register><name>R</name><addressOffset>0</addressOffset></register>"
    for k in range(levels):
        inner = (f"<cluster><name>C{k}%s</name><dim>{dim}</dim><dimIncrement>4</dimIncrement>"
                 f"<addressOffset>0</addressOffset>{inner}</cluster>")
    return inner


@pytest.mark.parametrize(("levels", "dim", "element", "count"), [
    (3, 1000, 'cluster "P.C2%s"', "1,000,000,000"),  # 10^9 instances: hung before
    # 2^40: the innermost level above the cap is named, by its path from the peripheral
    (40, 2, 'cluster "P.' + ".".join(f"C{k}%s" for k in range(39, 19, -1)) + '"', "2,097,152"),
])
def test_nested_arrays_are_capped_across_levels(tmp_path: Path, levels: int, dim: int, element: str,
                                                count: str) -> None:
    r = _import(tmp_path, _nested(levels, dim))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    errors = _lines(r.stderr, "error")
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert errors[0].startswith("t.svd:2:1: error: ")
    assert f"{element} expands to {count} register instances" in errors[0]
    assert "more than the 1,048,576 a chip may have" in errors[0]
    assert not (tmp_path / "chips").exists()


def test_peripheral_arrays_count_towards_the_cap(tmp_path: Path) -> None:
    p = tmp_path / "t.svd"
    p.write_text("<device><name>D</name><peripherals>\n<peripheral><name>P%s</name><dim>2000</dim>"
                 "<dimIncrement>0x10000</dimIncrement><baseAddress>0</baseAddress><registers>"
                 + _nested(1, 1000) + "</registers></peripheral></peripherals></device>", encoding="utf-8")
    r = _clawgen(tmp_path, "svd", "import", "t.svd", "--chip", "t", "--out", "chips")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert _lines(r.stderr, "error") == [
        't.svd:2:1: error: peripheral "P%s" expands to 2,000,000 register instances (its <dim> arrays and those '
        "inside it multiplied), more than the 1,048,576 a chip may have; check the <dim> values"]


def test_summary_of_a_large_array_does_not_walk_its_elements(tmp_path: Path) -> None:
    """250,000 cluster elements x 4 registers x a 32-element field array: 1,000,000 register
    instances and 32,000,000 fields. Counting them by walking (as before) takes minutes of CPU
    and dies at the CPU limit; counting from the declared elements takes microseconds."""
    field = _field("B%s", 0, 1, "<dim>32</dim><dimIncrement>1</dimIncrement>")
    regs = "".join(f"<register><name>R{i}</name><addressOffset>{4 * i}</addressOffset><fields>{field}</fields>"
                   "</register>" for i in range(4))
    r = _import(tmp_path, f"<cluster><name>C%s</name><dim>250000</dim><dimIncrement>16</dimIncrement>"
                          f"<addressOffset>0</addressOffset>{regs}</cluster>")
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert ("imported D as chip t: 1 peripherals, 1000000 registers (arrays expanded), 32000000 fields, "
            "0 enumerated value sets, 0 warning(s)") in r.stdout
    r = _clawgen(tmp_path, "svd", "info", "t")
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "1000000 registers" in r.stdout


@pytest.mark.parametrize("dim", [
    {"count": 1_000_000_000, "increment": 4},  # one array of 10^9 elements
    {"count": 1000, "increment": 4},  # three nested levels of 1000 (below)
])
def test_chip_database_with_oversized_arrays_is_refused(tmp_path: Path, dim: dict) -> None:
    import json

    block: dict = {"registers": [{"name": "R%s", "offset": 0, "dim": dim}]}
    if dim["count"] == 1000:
        for k in range(3):
            block = {"clusters": [{"name": f"C{k}%s", "offset": 0, "dim": dim, **block}]}
    doc = {"format": "clawgen-chip", "version": 1, "name": "t", "device": "D", "width": 32, "addressUnitBits": 8,
           "source": {"file": "t.svd", "sha256": ""},
           "peripherals": [{"name": "P", "baseAddress": 0, **block}]}
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / "t.json").write_text(json.dumps(doc), encoding="utf-8")
    r = _clawgen(tmp_path, "svd", "info", "t")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    errors = _lines(r.stderr + r.stdout, "error")
    assert len(errors) == 1 and "corrupt chip database" in errors[0] and "1,048,576" in errors[0], errors


@pytest.mark.parametrize("kind", KINDS)
def test_an_svd_path_that_is_not_a_regular_file_is_refused_not_read(tmp_path: Path, kind: str) -> None:
    # /dev/zero was read until memory ran out; a FIFO blocked the import for good.
    from clawgen.chips.svd import import_svd
    from clawgen.diagnostics import DiagnosticError

    p = make_not_regular(tmp_path / "chip.svd", kind)
    with pytest.raises(DiagnosticError) as e:
        import_svd(p, "x")
    (d,) = e.value.diagnostics
    assert (d.file, d.line) == (str(p), 1)
    assert d.message == ("cannot read SVD file: a directory" if kind == "directory"
                         else "cannot read SVD file: not a regular file (a device or a pipe?)")


def _round_trip(chip: object) -> None:
    import json

    from clawgen.chips.db import chip_from_json, chip_to_json

    doc = chip_to_json(chip)  # type: ignore[arg-type]
    assert chip_to_json(chip_from_json(json.loads(json.dumps(doc)), "rt")) == doc


def test_values_beyond_64_bits_are_dropped_so_the_database_reads_back(tmp_path: Path) -> None:
    # The importer kept them (with a warning) and wrote a chip database its own reader refuses.
    big = "1" * 25
    p = tmp_path / "t.svd"
    p.write_text(
        "<device><name>D</name><peripherals>\n"
        "<peripheral><name>A%s</name><dim>3</dim><dimIncrement>0x8000000000000000</dimIncrement>"
        "<baseAddress>0x7fffffffffffffff</baseAddress><registers>\n"
        "<register><name>R</name><addressOffset>0</addressOffset><fields><field><name>F</name><bitRange>[3:0]</bitRange>"
        "<writeConstraint><range><minimum>1</minimum><maximum>0x10000000000000000</maximum></range></writeConstraint>\n"
        "<enumeratedValues><enumeratedValue><name>ON</name><value>1</value></enumeratedValue>\n"
        f"<enumeratedValue><name>HUGE</name><value>{big}</value></enumeratedValue></enumeratedValues>"
        "</field></fields></register></registers></peripheral></peripherals></device>\n", encoding="utf-8")
    chip, diags = import_svd(p, "t")
    assert [d.message for d in diags] == [
        'peripheral "A2" (element 2 of the array) lies beyond the 64-bit address space; it and the elements after '
        "it are skipped",
        "writeConstraint range does not fit in 64 bits (no register is wider); ignored",
        f'enumeratedValue "HUGE": value "{big}" does not fit in 64 bits (no register is wider); skipped']
    assert [p.name for p in chip.peripherals] == ["A0", "A1"]
    field = chip.find_register("A0.R").register.fields[0]
    assert [v.name for v in field.enums[0].values] == ["ON"] and field.write_constraint.range is None
    _round_trip(chip)


def test_every_chip_the_importer_makes_of_mutated_files_reads_back_from_its_database(tmp_path: Path) -> None:
    # The importer and the database reader agree on what a chip may hold: odd texts put into the
    # test SVDs' leaves (numbers too large or negative, bad ranges, odd names) give warnings or an
    # error, and every chip imported is read back by the strict reader.
    import random

    from lxml import etree

    odd = ["-1", "0", "64", "65", "0x" + "f" * 16, "0x" + "f" * 17, "1" * 25, "#1x1", "4k", "", " 7 ", "[70:0]",
           "[3:5]", "writeOnce", "rw", "s", "clear", 'a"b', "%s", "[%s]", "é", "true", "3.5"]
    rng = random.Random(9)
    files = sorted(SVD.glob("*.svd"))
    imported = 0
    for case in range(300):
        root = etree.parse(str(rng.choice(files))).getroot()
        leaves = [e for e in root.iter() if isinstance(e.tag, str) and len(e) == 0]
        for _ in range(rng.randint(1, 4)):
            rng.choice(leaves).text = rng.choice(odd)
        p = tmp_path / f"m{case}.svd"
        p.write_bytes(etree.tostring(root))
        try:
            chip, _ = import_svd(p, "m")
        except DiagnosticError:
            continue
        imported += 1
        _round_trip(chip)
    assert imported > 200
