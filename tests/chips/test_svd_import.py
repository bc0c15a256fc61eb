"""The SVD importer on hand-written SVDs (tests/chips/svd/), one per feature, exact results."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawgen.chips.model import Chip, Dim, EnumSet, EnumValue, RegisterInstance, WriteConstraint
from clawgen.chips.svd import import_svd, parse_dim_index, parse_enum_value, parse_int
from clawgen.diagnostics import Diagnostic, DiagnosticError

SVD = Path(__file__).parent / "svd"


def load(name: str) -> tuple[Chip, list[Diagnostic]]:
    return import_svd(SVD / name, name.split(".")[0])


def reg(chip: Chip, path: str) -> RegisterInstance:
    ri = chip.find_register(path)
    assert ri is not None, path
    return ri


def messages(diags: list[Diagnostic]) -> list[tuple[int, str, str]]:
    return [(d.line, d.path, d.message) for d in diags]


def line_of(name: str, text: str, nth: int = 1) -> int:
    """1-based line of the nth line of tests/chips/svd/NAME containing text."""
    hits = [i for i, line in enumerate((SVD / name).read_text().splitlines(), 1) if text in line]
    return hits[nth - 1]


# ---------------------------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize(("text", "value"), [
    ("0x1F", 31), ("0X1f", 31), ("42", 42), ("010", 10), ("#101", 5), ("0b11", 3), ("4k", 4096),
    ("0x1k", 1024), ("2M", 2 << 20), ("+7", 7), (" 0x10 ", 16),
])
def test_parse_int(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "0x", "0xZZ", "-1", "1.5", "ten", "#102"])
def test_parse_int_rejects(text: str) -> None:
    assert parse_int(text) is None


@pytest.mark.parametrize(("text", "parsed"), [
    ("#1xx0", (0b1000, 0b1001)), ("0b1x", (0b10, 0b10)), ("#0101", (5, None)), ("0x1F", (31, None)),
    ("12", (12, None)), ("#xxxx", (0, 0)),
])
def test_parse_enum_value_dont_care(text: str, parsed: tuple[int, int | None]) -> None:
    assert parse_enum_value(text) == parsed


@pytest.mark.parametrize(("text", "indices"), [
    ("0-3", ["0", "1", "2", "3"]), ("A-D", ["A", "B", "C", "D"]), ("rx,tx, err", ["rx", "tx", "err"]),
    ("10-12", ["10", "11", "12"]), ("3-1", None), ("a b", None),
])
def test_parse_dim_index(text: str, indices: list[str] | None) -> None:
    assert parse_dim_index(text) == indices


# ---------------------------------------------------------------------------------------------
# Inheritance


def test_inheritance_device_peripheral_cluster_register_field() -> None:
    chip, diags = load("inherit.svd")
    assert diags == []
    r = reg(chip, "DEVDEFAULTS.R")  # everything from <device>
    assert (r.address, r.size, r.access, r.register.protection) == (0x40000000, 16, "read-only", "s")
    assert (r.register.reset_value, r.register.reset_mask) == (0x1234, 0xFF00)
    r = reg(chip, "P.FROMPERIPH")  # size and resetValue from <peripheral>, the rest from <device>
    assert (r.size, r.access, r.register.protection, r.register.reset_value, r.register.reset_mask) == (
        32, "read-only", "s", 0x5, 0xFF00)
    r = reg(chip, "P.C.INCLUSTER")  # cluster overrides access, protection and size (cmsis-svd ignores it)
    assert (r.address, r.size, r.access, r.register.protection) == (0x40001011, 8, "write-only", "p")
    # Inherited values are cut to the register's size.
    assert (r.register.reset_value, r.register.reset_mask) == (0x5, 0x00)
    r = reg(chip, "P.C.OWN")  # the register's own values win; its fields inherit its access
    assert (r.size, r.access, r.register.protection, r.register.reset_value, r.register.reset_mask) == (
        16, "read-write", "p", 0xABCD, 0xFFFF)
    assert [(f.name, f.lsb, f.width, f.access) for f in r.fields] == [
        ("LOW", 0, 4, "read-write"), ("HIGH", 4, 4, "read-only")]
    # bitRange and lsb/msb forms of a field position.
    r = reg(chip, "NOACCESS.ALLRO")
    assert [(f.name, f.lsb, f.width) for f in r.fields] == [("A", 0, 4), ("B", 4, 4)]


def test_register_access_from_fields_only() -> None:
    chip, diags = load("fieldaccess.svd")
    assert diags == []
    got = {ri.name: (ri.access, [f.access for f in ri.fields]) for ri in chip.iter_registers()}
    assert got == {
        "RO": ("read-only", ["read-only", "read-only"]),
        "WO": ("write-only", ["write-only"]),
        # Mixed field access makes the register read-write; a field without access gets it too.
        "MIXED": ("read-write", ["read-only", "write-only", "read-write"]),
        "NONE": ("read-write", []),  # nothing anywhere: the schema's default
    }


# ---------------------------------------------------------------------------------------------
# derivedFrom


def test_derived_peripherals_forward_chain() -> None:
    chip, _ = load("derive.svd")
    u0, u1, u2 = (chip.peripheral(n) for n in ("UART0", "UART1", "UART2"))
    assert u0 is not None and u1 is not None and u2 is not None
    # UART2 -> UART1 -> UART0, declared in that (forward) order: all get UART0's registers,
    # shared (not copied), and UART0's description, group and addressBlocks.
    assert u1.registers is u0.registers and u2.registers is u0.registers
    assert (u1.derived_from, u2.derived_from, u0.derived_from) == ("UART0", "UART0", None)
    assert (u2.description, u2.group_name, u2.address_blocks) == (u0.description, "UART", u0.address_blocks)
    # Interrupts belong to the instance.
    assert [(i.name, i.value) for i in u2.interrupts] == [("UART2", 12)]
    assert u1.interrupts == []
    assert [ri.path for ri in chip.iter_peripheral_registers(u2)] == [
        "UART2.CTRL", "UART2.CTRL2", "UART2.FWD", "UART2.BASE"]
    assert reg(chip, "UART2.BASE").address == 0x4000200C


def test_derived_registers_fields_and_enums() -> None:
    chip, _ = load("derive.svd")
    onoff = EnumSet("ONOFF", "read-write", [EnumValue("OFF", 0, 1), EnumValue("ON", 1, 1)])
    ctrl = reg(chip, "UART0.CTRL")
    assert [(f.name, f.lsb, f.width, f.enums) for f in ctrl.fields] == [
        ("EN", 0, 1, [onoff]),
        ("TXEN", 1, 1, [onoff]),  # field derivedFrom a sibling: width and enums copied
        ("RXEN", 2, 1, [onoff]),  # enumeratedValues derivedFrom by bare name
    ]
    # Register derivedFrom a sibling without a description of its own (cmsis-svd 0.6 skips it).
    ctrl2 = reg(chip, "UART0.CTRL2")
    assert (ctrl2.address, ctrl2.register.reset_value, [f.name for f in ctrl2.fields]) == (
        0x40000004, 0x3, ["EN", "TXEN", "RXEN"])
    # Forward reference to BASE, which itself derives from CTRL2 and overrides resetValue.
    assert reg(chip, "UART0.FWD").register.reset_value == 0x7
    assert reg(chip, "UART0.BASE").register.reset_value == 0x7
    assert [f.name for f in reg(chip, "UART0.FWD").fields] == ["EN", "TXEN", "RXEN"]
    # Dotted paths: PERIPH.REG, PERIPH.REG.FIELD (3 parts), PERIPH.REG.FIELD.ENUMS.
    copy = reg(chip, "OTHER.COPY")
    assert (copy.register.reset_value, [f.name for f in copy.fields]) == (0x3, ["EN", "TXEN", "RXEN"])
    fld = reg(chip, "OTHER.FLD")
    assert [(f.name, f.lsb, f.width, f.enums) for f in fld.fields] == [("E", 4, 1, [onoff]), ("DOT", 8, 1, [onoff])]


def test_derived_cluster() -> None:
    chip, _ = load("derive.svd")
    assert [(ri.path, ri.address) for ri in chip.iter_peripheral_registers(chip.peripheral("OTHER"))] == [
        ("OTHER.COPY", 0x40010000), ("OTHER.FLD", 0x40010004),
        ("OTHER.GRP.A", 0x40010020), ("OTHER.GRP.B", 0x40010024),
        ("OTHER.GRP2.A", 0x40010040), ("OTHER.GRP2.B", 0x40010044)]


def test_derive_cycles_and_unknown_references_are_warnings() -> None:
    chip, diags = load("derive.svd")
    assert messages(diags) == [
        (line_of("derive.svd", 'derivedFrom="CYC2"'), "CYC1", 'derivedFrom cycle through "CYC2"; derivation ignored'),
        (line_of("derive.svd", 'derivedFrom="CYC1"'), "CYC2", "peripheral has no registers"),
        (line_of("derive.svd", '<name>R1</name>'), "REGCYC.R1", 'derivedFrom cycle through "R2"; derivation ignored'),
        (line_of("derive.svd", '"NOPE"'), "REGCYC.R3", 'derivedFrom "NOPE": no register of that name; ignored'),
    ]
    assert all(d.severity == "warning" and d.file.endswith("derive.svd") for d in diags)
    # Nothing is dropped: the registers in the cycle keep their own values.
    assert [ri.path for ri in chip.iter_peripheral_registers(chip.peripheral("REGCYC"))] == [
        "REGCYC.R1", "REGCYC.R2", "REGCYC.R3"]
    assert [ri.path for ri in chip.iter_peripheral_registers(chip.peripheral("CYC1"))] == ["CYC1.X"]


# ---------------------------------------------------------------------------------------------
# Arrays


def test_arrays_stay_compact_and_expand_lazily() -> None:
    chip, diags = load("arrays.svd")
    tim = chip.peripheral("TIM")
    assert tim is not None
    ccr = tim.registers[0]
    assert (ccr.name, ccr.offset, ccr.dim) == ("CCR%s", 0x10, Dim(4, 4, ["0", "1", "2", "3"]))
    port = tim.registers[1]  # hex <dim>, dimIndex A-D
    assert (port.name, port.dim) == ("PORT%s_OUT", Dim(4, 8, ["A", "B", "C", "D"]))
    assert tim.registers[2].dim == Dim(3, 4, ["rx", "tx", "err"])
    buf = tim.registers[3]  # [%s] form with dimIndex 2-5
    assert (buf.name, buf.dim) == ("BUF[%s]", Dim(4, 4, ["2", "3", "4", "5"]))
    assert buf.fields[0].dim == Dim(8, 4, [str(i) for i in range(8)])
    assert len(buf.fields) == 1  # the field array is one entry in the model
    got = [(ri.name, ri.address) for ri in chip.iter_peripheral_registers(tim)]
    assert got == [
        ("CCR0", 0x40000010), ("CCR1", 0x40000014), ("CCR2", 0x40000018), ("CCR3", 0x4000001C),
        ("PORTA_OUT", 0x40000040), ("PORTB_OUT", 0x40000048), ("PORTC_OUT", 0x40000050), ("PORTD_OUT", 0x40000058),
        ("INT_rx", 0x40000080), ("INT_tx", 0x40000084), ("INT_err", 0x40000088),
        ("BUF2", 0x40000100), ("BUF3", 0x40000104), ("BUF4", 0x40000108), ("BUF5", 0x4000010C),
        ("CFG", 0x40000200), ("DATA0", 0x40000208), ("DATA1", 0x4000020C),
        ("CFG", 0x40000220), ("DATA0", 0x40000228), ("DATA1", 0x4000022C),
        ("BAD0", 0x40000300), ("BAD1", 0x40000304),
    ]
    b3 = reg(chip, "TIM.BUF3")
    assert [(f.name, f.lsb, f.width) for f in b3.fields] == [(f"NIB{i}", 4 * i, 4) for i in range(8)]
    assert reg(chip, "TIM.CH[1].DATA1").path == "TIM.CH1.DATA1"
    assert reg(chip, "tim.ch1.data1").address == 0x4000022C
    assert chip.register_count() == 23 + 2
    assert messages(diags) == [(line_of("arrays.svd", "<dimIndex>0-3"), "TIM.BAD%s",
                                "<dimIndex> lists 4 indices but <dim> is 2; using <dim>")]


def test_peripheral_arrays_are_expanded() -> None:
    chip, _ = load("arrays.svd")
    g0, g1 = chip.peripheral("GPIO0"), chip.peripheral("GPIO1")
    assert g0 is not None and g1 is not None
    assert (g0.base_address, g1.base_address, g1.registers is g0.registers) == (0x50000000, 0x50001000, True)
    assert (g0.dim, g1.derived_from) == (None, "GPIO0")
    assert reg(chip, "GPIO1.OUT").address == 0x50001004


# ---------------------------------------------------------------------------------------------
# Clusters and alternates


def test_nested_cluster_offsets_and_cluster_size() -> None:
    chip, _ = load("clusters.svd")
    r = reg(chip, "DMA.OUTER.INNER.DEEP.REG")
    # 0x100 + 0x20 + 0x4 + 0x2; <size> 16 from the outer cluster.
    assert (r.address, r.size, r.register.reset_mask) == (0x40000126, 16, 0xFFFF)


def test_alternates_share_an_offset() -> None:
    chip, diags = load("clusters.svd")
    assert reg(chip, "DMA.MODE_ALT").register.alternate_register == "MODE"
    assert reg(chip, "DMA.CMP_IN").register.alternate_group == "INPUT"
    assert reg(chip, "DMA.MODE_ALT").address == reg(chip, "DMA.MODE").address
    # At a shared address the primary register wins.
    assert chip.find_by_address(0x40000000).name == "MODE"
    assert chip.find_by_address(0x40000004).name == "CMP_OUT"
    # Same offset without alternate markers: a warning at the second register.
    assert messages(diags) == [(line_of("clusters.svd", "CLASH2"), "DMA.CLASH2",
                                'register "CLASH2" has the same address as "CLASH1" and neither is marked '
                                "alternateRegister/alternateGroup")]


# ---------------------------------------------------------------------------------------------
# Values: access, modifiedWriteValues, readAction, writeConstraint, enumeratedValues


def test_access_spellings() -> None:
    chip, diags = load("values.svd")
    acc = reg(chip, "P.ACC")
    assert acc.access == "read-only"
    assert [(f.name, f.access) for f in acc.fields] == [
        ("W", "write-only"), ("WO", "writeOnce"), ("RWO", "read-writeOnce"), ("JUNK", "read-only")]
    got = messages(diags)
    assert (line_of("values.svd", "<access>read</access>"), "P.ACC",
            'non-standard access "read" read as "read-only"') in got
    assert (line_of("values.svd", "<access>write</access>"), "P.ACC.W",
            'non-standard access "write" read as "write-only"') in got
    assert (line_of("values.svd", "<access>writeonce"), "P.ACC.WO",
            'non-standard access "writeonce" read as "writeOnce"') in got
    assert (line_of("values.svd", "sometimes"), "P.ACC.JUNK", 'unknown access "sometimes"; ignored') in got


def test_modified_write_values_and_read_action() -> None:
    chip, diags = load("values.svd")
    st = reg(chip, "P.STATUS")
    assert (st.register.modified_write_values, st.register.read_action) == ("oneToClear", "clear")
    flag, odd = st.fields
    assert (flag.modified_write_values, flag.read_action) == ("zeroToToggle", "modifyExternal")
    assert odd.modified_write_values is None
    assert any(d.path == "P.STATUS.ODD" and 'unknown <modifiedWriteValues> "oneToExplode"' in d.message
               for d in diags)


def test_write_constraint_and_enumerated_values() -> None:
    chip, diags = load("values.svd")
    lim = reg(chip, "P.LIMIT")
    assert lim.register.write_constraint == WriteConstraint(write_as_read=True)
    level, sel = lim.fields
    assert level.write_constraint == WriteConstraint(range=(0x10, 200))
    assert sel.write_constraint == WriteConstraint(use_enumerated_values=True)
    assert sel.enums == [
        EnumSet("SEL_R", "read", [EnumValue("IDLE", 0, 0xF), EnumValue("BUSY", 0b1000, 0b1001, False, "any busy state"),
                                  EnumValue("OTHER", 0, 0, True)]),
        EnumSet("SEL_W", "write", [EnumValue("GO", 3, 0xF), EnumValue("STOP", 4, 0xF), EnumValue("TOOBIG", 17, 0xF)]),
    ]
    assert (line_of("values.svd", "TOOBIG"), "P.LIMIT.SEL.SEL_W",
            "enumeratedValue \"TOOBIG\" = 0x11 does not fit in the field's 4 bits") in messages(diags)


def test_scaled_and_bad_numbers() -> None:
    chip, diags = load("values.svd")
    assert reg(chip, "P.SCALED").address == 0x40000400
    assert reg(chip, "P.BADNUM").register.reset_value == 0
    assert (line_of("values.svd", "0xZZ"), "P.BADNUM", '<resetValue> "0xZZ" is not a number; ignored') in messages(diags)


# ---------------------------------------------------------------------------------------------
# addressBlocks, interrupts, sanity checks


def test_address_blocks_interrupts_and_sanity_checks() -> None:
    chip, diags = load("sanity.svd")
    adc = chip.peripheral("ADC")
    assert adc is not None
    assert [(b.offset, b.size, b.usage) for b in adc.address_blocks] == [(0, 0x10, "registers"), (0x100, 0x100, "buffer")]
    assert [(i.name, i.value, i.description) for i in adc.interrupts] == [
        ("ADC_DONE", 5, "Conversion done"), ("ADC_ERR", 6, None)]
    cr = reg(chip, "ADC.CR")
    assert cr.register.reset_value == 0xFFFF  # truncated to 16 bits, with a warning
    # Fields are kept (warned), except the one without a bit position.
    assert [f.name for f in cr.fields] == ["START", "MODE", "CLASH", "RD", "WR", "OUTSIDE"]
    assert messages(diags) == [
        (line_of("sanity.svd", "0x1FFFF"), "ADC.CR", "reset value 0x1ffff does not fit in 16 bits; truncated"),
        (line_of("sanity.svd", "CLASH"), "ADC.CR", 'fields "MODE" and "CLASH" overlap'),
        (line_of("sanity.svd", "OUTSIDE"), "ADC.CR", 'field "OUTSIDE" (bits 17:14) lies outside the 16-bit register'),
        (line_of("sanity.svd", "NOBITS"), "ADC.CR.NOBITS",
         "field without a valid bit position (bitOffset/bitWidth, lsb/msb or bitRange); skipped"),
        (line_of("sanity.svd", "STRAY"), "ADC.STRAY",
         "register at offset 0x20 lie(s) outside ADC's addressBlocks (0x0..0xf, 0x100..0x1ff)"),
        (line_of("sanity.svd", "<bogus>"), "", "unknown element <bogus> in <registers> ignored"),
    ]
    # RD (read-only) and WR (write-only) share bits 8..11 legitimately: no warning for them.


def test_warning_text_names_file_and_line() -> None:
    _, diags = load("sanity.svd")
    assert diags[0].text() == (f"{SVD / 'sanity.svd'}:{line_of('sanity.svd', '0x1FFFF')}:1: warning: at ADC.CR: "
                               "reset value 0x1ffff does not fit in 16 bits; truncated")


def test_descriptions_can_be_dropped() -> None:
    chip, _ = import_svd(SVD / "derive.svd", "d", keep_descriptions=False)
    assert chip.peripheral("UART0").description is None
    chip, _ = import_svd(SVD / "derive.svd", "d")
    assert chip.peripheral("UART0").description == "Serial port"
    assert chip.source["file"] == "derive.svd" and len(chip.source["sha256"]) == 64


# ---------------------------------------------------------------------------------------------
# Unusable files


@pytest.mark.parametrize(("content", "message"), [
    (b"", "not well-formed XML"),
    (b"\x00\x01binary", "not well-formed XML"),
    (b"<device><name>X</name>", "not well-formed XML"),
    (b"<html><body/></html>", "not a CMSIS-SVD file: root element is <html>, not <device>"),
    (b"<device><name>X</name></device>", "no <peripherals> in this SVD file"),
    (b"<device><peripherals/></device>", "no <peripherals> in this SVD file"),
    (b"<device><peripherals><peripheral><name>A</name></peripheral></peripherals></device>",
     "no usable peripheral in this SVD file"),
])
def test_unusable_files_raise_diagnostics(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.svd"
    p.write_bytes(content)
    with pytest.raises(DiagnosticError) as e:
        import_svd(p, "bad")
    err = e.value.diagnostics[-1]
    assert (err.severity, err.file) == ("error", str(p))
    assert message in err.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as e:
        import_svd(tmp_path / "nope.svd", "x")
    assert "cannot read SVD file" in e.value.diagnostics[0].message


def test_namespaced_svd(tmp_path: Path) -> None:
    text = (SVD / "fieldaccess.svd").read_text().replace("<device>", '<device xmlns="http://example.com/svd">')
    p = tmp_path / "ns.svd"
    p.write_text(text)
    chip, _ = import_svd(p, "ns")
    assert chip.register_count() == 4


@pytest.mark.parametrize("name", ["inherit.svd", "derive.svd", "arrays.svd", "clusters.svd", "values.svd",
                                  "sanity.svd"])
def test_truncated_and_mangled_inputs_never_raise_anything_else(tmp_path: Path, name: str) -> None:
    """Every prefix of a valid file, and every file with one element's text mangled, either imports
    or fails with a DiagnosticError whose errors point into that file (any other exception fails
    the test)."""
    data = (SVD / name).read_bytes()
    p = tmp_path / name
    cuts = range(0, len(data), max(1, len(data) // 60))
    variants = [data[:n] for n in cuts]
    variants += [data.replace(tag, b"!" + tag[1:], 1) for tag in (b">0x", b">4<", b">read", b">1<")]
    variants += [data.replace(b"</name>", b"%s</name>", 3), data.replace(b"dim>", b"dimX>")]
    imported = refused = 0
    for v in variants:
        p.write_bytes(v)
        try:
            chip, _ = import_svd(p, "x")
        except DiagnosticError as e:
            refused += 1
            errors = [d for d in e.diagnostics if d.severity == "error"]
            assert errors and all(d.file == str(p) and d.line >= 1 and d.column >= 1 for d in errors), e
        else:
            imported += 1
            assert chip.peripherals
    assert refused >= len(cuts) // 2  # most prefixes are not well-formed XML
    assert imported >= 1  # (the full file, at least)


def _one_peripheral(registers: str) -> bytes:
    return (f"<device><name>D</name><peripherals><peripheral><name>P</name><baseAddress>0</baseAddress>"
            f"<registers>{registers}</registers></peripheral></peripherals></device>").encode()


def test_absurd_dim_is_clamped_not_expanded(tmp_path: Path) -> None:
    p = tmp_path / "dim.svd"
    p.write_bytes(_one_peripheral("<register><name>R%s</name><dim>99999999999</dim><dimIncrement>4</dimIncrement>"
                                  "<addressOffset>0</addressOffset></register>"))
    chip, diags = import_svd(p, "d")
    assert chip.register_count() == 1
    assert [d.message for d in diags] == ["<dim> 99999999999 is out of range (1..1048576); taken as 1"]


def test_nesting_beyond_the_xml_depth_limit_is_a_diagnostic(tmp_path: Path) -> None:
    n = 300
    p = tmp_path / "deep.svd"
    p.write_bytes(_one_peripheral("<cluster><name>C</name><addressOffset>4</addressOffset>" * n
                                  + "<register><name>R</name><addressOffset>0</addressOffset></register>"
                                  + "</cluster>" * n))
    with pytest.raises(DiagnosticError) as e:
        import_svd(p, "d")
    assert "not well-formed XML" in e.value.diagnostics[-1].message
    p.write_bytes(_one_peripheral("<cluster><name>C</name><addressOffset>4</addressOffset>" * 100
                                  + "<register><name>R</name><addressOffset>0</addressOffset></register>"
                                  + "</cluster>" * 100))
    chip, _ = import_svd(p, "d")
    ri = next(chip.iter_registers())
    assert (ri.address, ri.path.count(".")) == (400, 101)


def test_reversed_bit_ranges_and_zero_width(tmp_path: Path) -> None:
    p = tmp_path / "bits.svd"
    p.write_bytes(_one_peripheral(
        "<register><name>R</name><addressOffset>0</addressOffset><fields>"
        "<field><name>REV</name><bitRange>[7:8]</bitRange></field>"
        "<field><name>REV2</name><lsb>12</lsb><msb>10</msb></field>"
        "<field><name>ZERO</name><bitOffset>20</bitOffset><bitWidth>0</bitWidth></field>"
        "</fields></register>"))
    chip, diags = import_svd(p, "b")
    assert [(f.name, f.lsb, f.width) for f in chip.find_register("P.R").fields] == [("REV", 7, 2), ("REV2", 10, 3)]
    assert [(d.path, d.message) for d in diags] == [
        ("P.R.REV", "field msb 7 is below its lsb 8; read as bits 8:7"),
        ("P.R.REV2", "field msb 10 is below its lsb 12; read as bits 12:10"),
        ("P.R.ZERO", "field width 0 is not positive; skipped"),
    ]
