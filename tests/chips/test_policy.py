"""Policy compilation: matching, semantics flags, defaults and diagnostics (synthetic chip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawgen.chips.policy import (
    F_NO_RMW,
    F_READ,
    F_READ_EFFECT,
    F_READBACK,
    F_WRITE,
    compile_policy,
    default_policy,
)
from clawgen.chips.tables import reset_values
from clawgen.diagnostics import ERROR, WARNING, Mark
from tests.chips.policy_cases import harness as h

CHIP = h.load_toy_chip()


def compile_(value: object, positions=None):
    return compile_policy(CHIP, value, positions)


def entry(table, name):
    e = table.entry_named(name)
    assert e is not None, name
    return e


def test_string_entry_allows_read_and_write() -> None:
    table, diags = compile_({"defaults": False, "allow": ["GPIO.ENABLE"]})
    assert diags == []
    e = entry(table, "GPIO.ENABLE")
    assert e.flags & (F_READ | F_WRITE | F_READBACK) == F_READ | F_WRITE | F_READBACK
    assert e.wmask == 0x1FF
    assert [x.name for x in table.entries] == ["GPIO.ENABLE"]


def test_glob_is_case_insensitive_and_covers_array_elements() -> None:
    table, diags = compile_({"defaults": False, "allow": [{"match": "ledc.ch*_conf0", "access": "read"}]})
    assert diags == []
    assert [e.name for e in table.entries] == [f"LEDC.CH{i}_CONF0" for i in range(4)]
    assert all(e.flags & F_READ and not e.flags & F_WRITE for e in table.entries)


def test_cluster_levels_join_with_dots() -> None:
    table, _ = compile_({"defaults": False, "allow": ["TIMG0.T1.*"]})
    assert [e.name for e in table.entries] == ["TIMG0.T1.CONFIG", "TIMG0.T1.LO"]
    assert entry(table, "TIMG0.T1.LO").flags & F_WRITE == 0  # read-only in hardware


def test_deny_wins_over_allow() -> None:
    table, _ = compile_({"defaults": False, "allow": ["GPIO.*"],
                         "deny": [{"match": "GPIO.ENABLE", "access": "write"}, "GPIO.IN"]})
    assert entry(table, "GPIO.ENABLE").flags & (F_READ | F_WRITE) == F_READ
    assert table.entry_named("GPIO.IN") is None


def test_field_level_write_allow_limits_the_mask() -> None:
    table, _ = compile_({"defaults": False, "allow": [{"match": "GPIO.OUT.DATA", "access": "write"}]})
    e = entry(table, "GPIO.OUT")
    assert e.wmask == 0xFFFF and e.hwmask == 0xFFFFF
    assert not e.flags & F_READ


def test_field_level_deny_removes_bits() -> None:
    table, _ = compile_({"defaults": False, "allow": ["GPIO.OUT"],
                         "deny": [{"match": "GPIO.OUT.MODE", "access": "write"}]})
    assert entry(table, "GPIO.OUT").wmask == 0xFFFF


def test_read_side_effect_needs_an_exact_name() -> None:
    globbed, _ = compile_({"defaults": False, "allow": ["UART.FI*"]})
    assert globbed.entry_named("UART.FIFO").flags & F_READ == 0
    exact, _ = compile_({"defaults": False, "allow": ["uart.fifo"]})
    e = entry(exact, "UART.FIFO")
    assert e.flags & (F_READ | F_READ_EFFECT | F_NO_RMW) == F_READ | F_READ_EFFECT | F_NO_RMW
    assert not e.flags & F_READBACK  # a write never reads a FIFO back


def test_modified_write_values_forbid_read_modify_write() -> None:
    table, _ = compile_({"defaults": False, "allow": ["UART.INT_CLR", "UART.INT_RAW"]})
    clr = entry(table, "UART.INT_CLR")
    assert clr.flags & F_NO_RMW and clr.idlemask == 0x3 and clr.idle == 0
    raw = entry(table, "UART.INT_RAW")
    assert raw.flags & F_NO_RMW and raw.idlemask == 0x3 and raw.hwmask == 0xF


def test_write_as_read_field_is_never_writable() -> None:
    table, _ = compile_({"defaults": False, "allow": ["UART.CONF"]})
    e = entry(table, "UART.CONF")
    assert e.wmask == 0x3FFFF  # BAUD + PARITY; PROT is writeAsRead, STAT read-only
    kinds = {c.field: (c.kind, c.values) for c in e.constraints}
    assert kinds["BAUD"] == (1, [(1, 50000)])
    assert kinds["PARITY"] == (2, [(0, 3), (2, 3), (3, 3)])


def test_is_default_enum_accepts_everything() -> None:
    table, _ = compile_({"defaults": False, "allow": ["LEDC.TIMER0_CONF"]})
    assert entry(table, "LEDC.TIMER0_CONF").constraints == []


def test_unsafe_partial_write_only_register_is_not_writable() -> None:
    # TXTRIG is write-only with two plain fields: allowing one can't be enforced without
    # clobbering the other, so no write is allowed at all.
    table, diags = compile_({"defaults": False, "allow": ["UART.TXTRIG.GO"]})
    assert table.entry_named("UART.TXTRIG") is None
    assert [(d.severity, d.path) for d in diags] == [(WARNING, "registers.allow[0]")]
    assert "can't be written in part" in diags[0].message


def test_unmatched_entries_are_errors_with_did_you_mean_at_their_position() -> None:
    marks = {("registers", "allow", 0): Mark("spec.yaml", 7, 9), ("registers", "allow", 1): Mark("spec.yaml", 8, 9),
             ("registers", "deny", 0): Mark("spec.yaml", 10, 9)}
    _, diags = compile_({"defaults": False, "allow": ["GPIO.OUTT", "GPIO.OUT.DAT"], "deny": ["GPOI.IN"]},
                        marks.get)
    assert [(d.severity, d.line, d.column, d.path) for d in diags] == [
        (ERROR, 7, 9, "registers.allow[0]"), (ERROR, 8, 9, "registers.allow[1]"),
        (ERROR, 10, 9, "registers.deny[0]")]
    assert 'did you mean "GPIO.OUT"?' in diags[0].message
    assert 'did you mean "GPIO.OUT.DATA"?' in diags[1].message
    assert 'did you mean "GPIO"?' in diags[2].message
    assert diags[0].text().startswith("spec.yaml:7:9: error: at registers.allow[0]: ")


def test_bad_access_word_is_reported() -> None:
    _, diags = compile_({"defaults": False, "allow": [{"match": "GPIO.OUT", "access": "rw"}]})
    assert len(diags) == 1 and diags[0].path == "registers.allow[0].access"
    assert "read, write or read-write" in diags[0].message


def test_non_32_bit_register_named_exactly_warns() -> None:
    table, diags = compile_({"defaults": False, "allow": ["LEDC.HALF"]})
    assert [d.severity for d in diags] == [WARNING]
    assert "16-bit" in diags[0].message
    assert table.entries == []


def test_blocks_and_known_bitmap() -> None:
    table, _ = compile_({"defaults": False, "allow": ["GPIO.IN"]})
    spans = {b.name: (b.start, b.size, b.known is not None) for b in table.blocks}
    assert spans["GPIO"] == (0x40000000, 0x40, True)
    assert spans["UART"] == (0x40001000, 0x18, False)  # no addressBlock: its registers' span
    assert spans["SYS"] == (0x40003000, 0x10, False)


def test_reset_values_cover_every_entry() -> None:
    table, _ = compile_({"defaults": False, "allow": ["GPIO.*", "UART.STATUS"]})
    resets = reset_values(table)
    assert set(resets) == {e.address for e in table.entries}
    assert resets[0x40000038] == 0x1234 and resets[0x40001004] == 0x80


def test_defaults_none_means_built_in_default() -> None:
    # The toy chip has no built-in default policy: nothing is allowed.
    table, diags = compile_(None)
    assert table.entries == [] and diags == []
    assert default_policy("toy") == {"allow": [], "deny": []}


@pytest.mark.parametrize("chip", ["esp32s3", "esp32", "esp32c3", "esp32c6"])
def test_builtin_default_policies_are_well_formed(chip: str) -> None:
    pol = default_policy(chip)
    assert pol["allow"], f"{chip} has no default allowlist"
    for item in pol["allow"] + pol["deny"]:
        assert isinstance(item, str) or set(item) <= {"match", "access"}


def test_write_allow_on_a_read_only_register_warns() -> None:
    table, diags = compile_({"defaults": False, "allow": [{"match": "GPIO.IN", "access": "write"}]})
    assert [d.severity for d in diags] == [WARNING]
    assert "read-only in hardware" in diags[0].message
    assert table.entries == []


@pytest.mark.parametrize("value", [
    [], "GPIO.OUT", 5, {"allow": "GPIO.OUT"}, {"allow": [None]}, {"allow": [5]}, {"allow": [{"access": "read"}]},
    {"allow": [{"match": 5}]}, {"allow": [""]}, {"allow": ["GPIO"]}, {"defaults": "yes"}, {"deny": {"a": 1}},
    {"allow": [{"match": "GPIO.OUT", "access": None}]}, {"allow": ["[[["]}, {"allow": ["GPIO.OUT["]},
])
def test_malformed_values_give_diagnostics_not_tracebacks(value: object) -> None:
    _, diags = compile_(value)
    assert diags and all(d.severity == ERROR for d in diags)
    assert all(d.message for d in diags)


def test_glob_with_a_mistyped_peripheral_suggests_the_peripheral() -> None:
    _, diags = compile_({"defaults": False, "allow": ["LEDX.CH*_CONF0"]})
    assert len(diags) == 1 and 'did you mean "LEDC"?' in diags[0].message


def test_empty_policy_refuses_everything_in_python_and_c(tmp_path: Path) -> None:
    table, diags = compile_({"defaults": False})
    assert table.entries == [] and diags == []
    ops = [("r", 0x40000004), ("w", 0x40000000, 1), ("m", 0x40000004, 0, 4, 1), ("r", 0x10), ("r", 0x40000024)]
    py = h.PyDevice(table).run(ops)
    assert [r[0] for r in py] == [4, 4, 4, 2, 4]  # no bitmap without allowed registers: DENIED
    assert all(r[3] == [] for r in py)
    assert h.CDevice(table, tmp_path / "c").run(ops) == py
