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
                    chip, diags = svd.import_svd(path, "t", keep_descriptions=keep)
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
_CORPUS_SAMPLE = ["max32665.svd", "max32670.svd", "LPC176x5x_v0.2.svd", "Musca_S1.svd", "nrf52.svd",
                  "MKL25Z4.svd", "STM32F439x.svd", "M251_v1.svd"]


@pytest.mark.parametrize("name", _CORPUS_SAMPLE)
def test_vendor_files_give_the_same_chip_on_both_paths(name: str, corpus_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fast, general = _import_both(corpus_dir / name, monkeypatch)
    assert fast == general
