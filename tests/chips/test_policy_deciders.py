"""Every policy entry carries what decided reading, writing and the protected bits (the spec's
`registers:` rule, a chip default, or a hardware reason), encoded as rule indexes in the device
table (clawgen/chips/tables.py) so that the audit log can name the rule."""

from __future__ import annotations

import struct

from clawgen.chips import load_chip
from clawgen.chips.policy import HW_NOT_READABLE, HW_READ_ONLY, compile_policy
from clawgen.chips.tables import DROP_FORMAT, DROP_SIZE, ENTRY_FORMAT, ENTRY_SIZE, LAYOUT
from clawgen.resources import chips_dir


def test_each_decision_names_its_rule_and_the_table_indexes_the_labels() -> None:
    chip = load_chip("esp32c3", [chips_dir()])
    table, diags = compile_policy(chip, {
        "defaults": False,
        "allow": [{"match": "GPIO.OUT", "access": "read"}, "GPIO.ENABLE*", "GPIO.STRAP"],
        "deny": [{"match": "GPIO.ENABLE", "access": "write"}, {"match": "GPIO.ENABLE_W1TS.*", "access": "write"}]})
    assert [d for d in diags if d.severity == "error"] == []
    got = {e.name: (e.read_rule, e.write_rule, e.protected_rule) for e in table.entries}
    assert got["GPIO.OUT"] == ("registers.allow[0] (GPIO.OUT read)", None, None)
    assert got["GPIO.ENABLE"] == ("registers.allow[1] (GPIO.ENABLE*)", "registers.deny[0] (GPIO.ENABLE write)", None)
    assert got["GPIO.ENABLE_W1TC"] == (HW_NOT_READABLE, "registers.allow[1] (GPIO.ENABLE*)", None)
    assert got["GPIO.STRAP"] == ("registers.allow[2] (GPIO.STRAP)", HW_READ_ONLY, None)
    assert "GPIO.ENABLE_W1TS" not in got  # not readable, and its write is denied: no entry, but recorded
    w1ts = chip.find_register("GPIO.ENABLE_W1TS")
    assert w1ts is not None
    assert table.dropped == [(w1ts.address, HW_NOT_READABLE, "registers.deny[1] (GPIO.ENABLE_W1TS.* write)")]
    dev = table.device
    labels = dev.rules
    pos = LAYOUT.entry_index("rread")
    for i, e in enumerate(table.entries):
        rec = struct.unpack_from(ENTRY_FORMAT, dev.entries_bytes, i * ENTRY_SIZE)
        refs = rec[pos:pos + 3]
        assert [labels[r - 1] if r else None for r in refs] == [e.read_rule, e.write_rule, e.protected_rule]
    assert [(a, labels[r - 1], labels[w - 1]) for a, r, w in
            (struct.unpack_from(DROP_FORMAT, dev.dropped_bytes, i * DROP_SIZE)[:3]
             for i in range(len(dev.dropped)))] == table.dropped


def test_bits_kept_by_a_deny_rule_name_it_and_defaults_are_labelled() -> None:
    chip = load_chip("esp32c3", [chips_dir()])
    reg = next(e for e in compile_policy(chip, None)[0].entries if e.writable and len(e.fields) > 1)
    field = sorted(reg.fields, key=lambda f: f.lsb)[0].name
    table, diags = compile_policy(chip, {"deny": [{"match": f"{reg.name}.{field}", "access": "write"}]})
    assert [d for d in diags if d.severity == "error"] == []
    e = table.entry_named(reg.name)
    assert e is not None and e.writable
    assert e.write_rule is not None and e.write_rule.startswith("registers.defaults allow[")
    assert e.protected_rule == f"registers.deny[0] ({reg.name.upper()}.{field.upper()} write)"
