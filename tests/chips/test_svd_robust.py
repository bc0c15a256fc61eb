"""Importer edge cases found by review: odd digits, XML error positions, the plain-field fast
path against the general one, whitespace in descriptions, reference cycles, the CLI on a directory."""

from __future__ import annotations

import gc
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.chips.db import write_chip
from clawgen.chips.model import Field
from clawgen.chips.svd import import_svd
from clawgen.cli import cli
from clawgen.diagnostics import DiagnosticError

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
