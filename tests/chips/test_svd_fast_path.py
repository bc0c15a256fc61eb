"""The importer's fast path (``_Importer.plain_fields``: fields built straight from the XML) must
give exactly what the general path (field nodes + ``build_field``, which also does the warning)
gives: the same chip database and the same warnings, for every shape of field it accepts or
declines, for the test SVDs and for vendor files of the corpus."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from clawgen.chips import svd
from clawgen.chips.db import chip_to_json
from clawgen.diagnostics import DiagnosticError

SVD = Path(__file__).parent / "svd"

_ENUM = ("<enumeratedValues>{head}<enumeratedValue><name>OFF</name><description>Off.</description><value>0</value>"
         "</enumeratedValue><enumeratedValue><name> ON </name><value>{on}</value></enumeratedValue>"
         "</enumeratedValues>")

# Bit positions: plain, and each way one can be odd (empty, repeated, reversed, too wide...).
_POSITIONS = [
    "<bitOffset>3</bitOffset><bitWidth>2</bitWidth>",
    "<bitOffset>3</bitOffset>",
    "<lsb>3</lsb><msb>4</msb>",
    "<bitRange>[4:3]</bitRange>",
    "<bitRange>[3:4]</bitRange>",
    "<bitRange>[ 4 : 3 ]</bitRange>",
    "<bitRange>4:3</bitRange>",
    "<bitOffset/><lsb>1</lsb><msb>2</msb>",
    "<lsb>1</lsb><msb>2</msb><bitRange>[7:6]</bitRange>",
    "<bitOffset>1</bitOffset><bitOffset>5</bitOffset><bitWidth>1</bitWidth>",
    "<bitOffset>0x3</bitOffset><bitWidth>2</bitWidth>",
    "<bitOffset>30</bitOffset><bitWidth>4</bitWidth>",
    "<bitOffset>32</bitOffset><bitWidth>1</bitWidth>",
    "<bitOffset>0</bitOffset><bitWidth>0</bitWidth>",
    "<bitOffset>0</bitOffset><bitWidth>33</bitWidth>",
    "<lsb>5</lsb><msb>2</msb>",
    "",
]
# Everything else a field may carry.
_EXTRAS = [
    "",
    "<access>read-only</access>",
    "<access>write-only</access>",
    "<access/>",
    "<access> read-only </access>",
    "<access>rw</access>",
    "<access>bogus</access>",
    "<description>  two\n   lines </description>",
    "<description/>",
    "<modifiedWriteValues>oneToClear</modifiedWriteValues>",
    "<modifiedWriteValues>OneToClear</modifiedWriteValues>",
    "<readAction>clear</readAction><modifiedWriteValues/>",
    "<readAction>bogus</readAction>",
    _ENUM.format(head="", on="1"),
    _ENUM.format(head="<name>E</name><usage>read</usage><headerEnumName>H</headerEnumName>", on="#1"),
    _ENUM.format(head="<usage>bogus</usage>", on="1"),
    _ENUM.format(head="", on="0"),  # a repeated value
    _ENUM.format(head="", on="9"),  # does not fit the field
    _ENUM.format(head="", on="#1x"),
    _ENUM.format(head="", on="1") * 2,
    _ENUM.format(head="", on="1") * 3,
    "<enumeratedValues><enumeratedValue><name>D</name><isDefault>true</isDefault></enumeratedValue>"
    "</enumeratedValues>",
    # Attributes other than derivedFrom mean nothing on either path; derivedFrom is looked up.
    _ENUM.format(head="", on="1").replace("<enumeratedValues>", '<enumeratedValues id="x">'),
    _ENUM.format(head="", on="1").replace("<enumeratedValue>", '<enumeratedValue derivedFrom="OFF">', 1),
    '<enumeratedValues derivedFrom="E"><usage>read</usage></enumeratedValues>',
    # Empty sets (a Maxim habit: one on every field) take a shortcut on the fast path.
    "<enumeratedValues></enumeratedValues>",
    "<enumeratedValues> \n </enumeratedValues>",
    '<enumeratedValues id="x"/>',
    "<enumeratedValues/>" + _ENUM.format(head="", on="1"),
    "<enumeratedValues/><enumeratedValues/>",
    "<dim>2</dim><dimIncrement>1</dimIncrement>",
    "<bogus>1</bogus>",
]


def _register(name: str, offset: int, fields: str, reg_extra: str = "") -> str:
    return (f"<register><name>{name}</name><addressOffset>{offset:#x}</addressOffset>{reg_extra}"
            f"<fields>{fields}</fields></register>")


def _chip_svd(registers: list[str]) -> str:
    return ("<device><name>D</name><peripherals><peripheral><name>P</name><baseAddress>0</baseAddress>\n"
            "<registers>" + "\n".join(registers) + "</registers></peripheral></peripherals></device>")


def _import_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """(database JSON, warnings) of ``path`` the usual way, and with the fast path switched off."""
    out = []
    for general in (False, True):
        with monkeypatch.context() as m:
            if general:
                m.setattr(svd._Importer, "plain_fields", lambda self, containers, access, size: None)
            for keep in (True, False):
                try:
                    # (the code of svd.py, which the patch reaches: not its compiled twin)
                    chip, diags = svd._import_svd(path, "t", keep_descriptions=keep)
                    result: object = (json.dumps(chip_to_json(chip), sort_keys=True), chip.totals(),
                                      [d.text() for d in diags])
                except DiagnosticError as e:
                    result = str(e)
                out.append(result)
    return out[:2], out[2:]  # type: ignore[return-value]


def test_every_field_shape_gives_the_same_chip_on_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    regs = []
    for k, (pos, extra) in enumerate(itertools.product(_POSITIONS, _EXTRAS)):
        field = f"<field><name>F{k}</name>{pos}{extra}</field>"
        spaced = f"<field><name> F{k}\n</name>{pos}{extra}</field>"  # names are stripped
        plain = "<field><name>G</name><description>Plain.</description><bitOffset>8</bitOffset><bitWidth>4</bitWidth>" \
                "</field>"
        # The odd field alone, after a plain one, and in a register without an access of its own.
        regs.append(_register(f"A{k}", 8 * k, field, "<access>read-write</access>"))
        regs.append(_register(f"B{k}", 8 * k + 4, plain + spaced))
    p = tmp_path / "shapes.svd"
    p.write_text(_chip_svd(regs), encoding="utf-8")
    fast, general = _import_both(p, monkeypatch)
    assert fast == general


def test_shared_and_derived_registers_give_the_same_chip_on_both_paths(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    f = "<field><name>EN</name><bitOffset>0</bitOffset><bitWidth>1</bitWidth></field>" \
        "<field><name>RO</name><bitOffset>1</bitOffset><bitWidth>1</bitWidth><access>read-only</access></field>" \
        "<field><name>WO</name><bitOffset>1</bitOffset><bitWidth>1</bitWidth><access>write-only</access></field>"
    regs = [
        _register("BASE", 0, f),
        '<register derivedFrom="BASE"><name>SAME</name><addressOffset>0x100</addressOffset></register>',
        '<register derivedFrom="BASE"><name>SIZED</name><addressOffset>0x104</addressOffset><size>8</size>'
        "</register>",
        '<register derivedFrom="BASE"><name>OWN</name><addressOffset>0x108</addressOffset><access>read-only</access>'
        "<fields><field><name>X</name><bitOffset>4</bitOffset><bitWidth>2</bitWidth></field></fields></register>",
        _register("OVER", 0x10C, "<field><name>A</name><bitOffset>0</bitOffset><bitWidth>4</bitWidth></field>"
                          "<field><name>B</name><bitOffset>2</bitOffset><bitWidth>4</bitWidth></field>"),
    ]
    p = tmp_path / "derived.svd"
    p.write_text(_chip_svd(regs), encoding="utf-8")
    fast, general = _import_both(p, monkeypatch)
    assert fast == general


@pytest.mark.parametrize("name", sorted(p.name for p in SVD.glob("*.svd")))
def test_test_svds_give_the_same_chip_on_both_paths(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, general = _import_both(SVD / name, monkeypatch)
    assert fast == general


# Vendor files of many field shapes: bitRange, lsb/msb, enumerations shared across registers,
# derived peripherals, fields on the general path among plain ones.
_CORPUS_SAMPLE = ["max32620.svd", "max32665.svd", "max32670.svd", "LPC176x5x_v0.2.svd", "Musca_S1.svd", "nrf52.svd",
                  "MKL25Z4.svd", "STM32F439x.svd", "M251_v1.svd"]


@pytest.mark.parametrize("name", _CORPUS_SAMPLE)
def test_vendor_files_give_the_same_chip_on_both_paths(name: str, corpus_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fast, general = _import_both(corpus_dir / name, monkeypatch)
    assert fast == general


def test_repeated_field_lists_are_built_once_and_give_the_same_chip(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Registers whose <fields> are the same text share one list of fields (``shared_fields``), also
    after a stretch of distinct ones that pauses the look-up; the chip and warnings are those of
    building every list on its own. The inherited size is part of the key: the same text in an
    8-bit register is built (and warned about) on its own. Lists that differ only where the
    look-up's fingerprint does not look (a middle field) are not shared."""
    same = ("<field><name>EN</name><description>Enable.</description><bitOffset>0</bitOffset><bitWidth>1</bitWidth>"
            + _ENUM.format(head="<name>ONOFF</name>", on="1") + "</field>"
            "<field><name>MODE</name><bitOffset>9</bitOffset><bitWidth>3</bitWidth><access>read-only</access></field>")

    def middle(bit: int) -> str:  # the fingerprint of `same` with a middle field
        return same.replace("<field><name>MODE", f"<field><name>MID</name><bitOffset>{bit}</bitOffset><bitWidth>1</bitWidth>"
                                                 "</field>"
                                                 "<field><name>MODE")

    regs = [_register(f"S{k}", 4 * k, same) for k in range(40)]
    regs += [_register(f"D{k}", 0x1000 + 4 * k, f"<field><name>F{k}</name><bitOffset>{k % 8}</bitOffset>"
                                                "<bitWidth>1</bitWidth></field><field><name>G</name>"
                                                "<bitOffset>8</bitOffset><bitWidth>1</bitWidth></field>")
             for k in range(1100)]
    regs += [_register(f"T{k}", 0x4000 + 4 * k, same) for k in range(1500)]
    regs.append(_register("SMALL", 0x8000, same, "<size>8</size>"))
    regs += [_register("M4", 0x9000, middle(4)), _register("M5", 0x9004, middle(5)),
             _register("M4B", 0x9008, middle(4))]
    p = tmp_path / "repeated.svd"
    p.write_text(_chip_svd(regs), encoding="utf-8")
    chip, diags = svd._import_svd(p, "t")  # (svd.py's code: the patch below reaches it, not the compiled twin)
    by_name = {r.name: r for r in chip.peripherals[0].registers}
    assert by_name["S1"].fields is by_name["S0"].fields
    assert by_name["T1499"].fields is by_name["S0"].fields  # the look-up resumed
    assert [f.name for f in by_name["SMALL"].fields] == ["EN"]  # MODE lies outside 8 bits
    assert any("MODE" in d.message for d in diags)
    assert by_name["M4B"].fields is by_name["M4"].fields
    assert by_name["M5"].fields is not by_name["M4"].fields and by_name["M5"].fields[1].lsb == 5
    with monkeypatch.context() as m:
        m.setattr(svd._Importer, "shared_fields", svd._Importer.plain_fields)
        alone, alone_diags = svd._import_svd(p, "t")
    assert alone.peripherals[0].registers[1].fields is not alone.peripherals[0].registers[0].fields
    assert json.dumps(chip_to_json(chip), sort_keys=True) == json.dumps(chip_to_json(alone), sort_keys=True)
    assert [d.text() for d in diags] == [d.text() for d in alone_diags]


def test_fields_derived_from_a_sibling_give_the_same_chip_on_both_paths(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A field derived from an earlier field of its register is built on the fast path; every other
    derivation (forward, itself, a chain, another register, a missing or dotted name, an odd
    result) gives what the general path gives."""
    base = ("<field><name>CH0</name><description>Channel 0.</description><bitOffset>0</bitOffset>"
            "<bitWidth>2</bitWidth><access>read-only</access>"
            + _ENUM.format(head="<name>MODE</name>", on="3") + "</field>")

    def d(ref: str, body: str) -> str:
        return f'<field derivedFrom="{ref}">{body}</field>'

    cases = [
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset>"),
        d("CH0", "<name>CH1</name><description>Own.</description><bitOffset>2</bitOffset><access>write-only</access>"),
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset>" + _ENUM.format(head="", on="2")),
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset><bitWidth>1</bitWidth>"),  # the enum no longer fits
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset><access/>"),
        d("CH0", "<name>  </name><bitOffset>2</bitOffset>"),
        d("CH0", "<bitOffset>2</bitOffset>"),  # no name of its own: the base's
        d(" CH0 ", "<name>CH1</name><lsb>2</lsb><msb>3</msb>"),
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset>") + d("CH1", "<name>CH2</name><bitOffset>4</bitOffset>"),
        d("CH2", "<name>CH1</name><bitOffset>2</bitOffset>") + d("CH0", "<name>CH2</name><bitOffset>4</bitOffset>"),
        d("CH1", "<name>CH1</name><bitOffset>2</bitOffset>"),  # itself
        d("NONE", "<name>CH1</name><bitOffset>2</bitOffset>"),
        d("R0.CH0", "<name>CH1</name><bitOffset>2</bitOffset>"),
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset><dim>2</dim><dimIncrement>2</dimIncrement>"),
        d("CH0", "<name>CH1</name><bitOffset>2</bitOffset><bogus/>"),
        d("CH0", "<name>CH1</name><bitOffset>1</bitOffset>"),  # overlaps its base
        "<field><name>CH0</name><bitOffset>6</bitOffset><bitWidth>1</bitWidth></field>"
        + d("CH0", "<name>CH1</name><bitOffset>2</bitOffset>"),  # a second CH0: the first one is the base
    ]
    regs = [_register("R0", 0, base)]
    for k, case in enumerate(cases, 1):
        regs.append(_register(f"R{k}", 4 * k, base + case))
    # Derived from a field of another register: the general path's lookup.
    regs.append(_register("OTHER", 0x100, d("CH0", "<name>CH1</name><bitOffset>2</bitOffset>")))
    p = tmp_path / "derived_fields.svd"
    p.write_text(_chip_svd(regs), encoding="utf-8")
    fast, general = _import_both(p, monkeypatch)
    assert fast == general
    chip, _ = svd.import_svd(p, "t")
    r1 = chip.peripherals[0].registers[1]
    assert [(f.name, f.lsb, f.width, f.access, f.description, [e.name for e in f.enums]) for f in r1.fields] == \
        [("CH0", 0, 2, "read-only", "Channel 0.", ["MODE"]), ("CH1", 2, 2, "read-only", "Channel 0.", ["MODE"])]
