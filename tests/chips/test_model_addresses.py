"""``Chip.register_addresses`` (used to locate the registers of peripherals no policy rule names)
agrees with the full register iteration."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawgen.chips import load_chip
from clawgen.chips.svd import import_svd
from clawgen.resources import chips_dir

SVD = Path(__file__).parent / "svd"


def test_addresses_of_arrays_and_nested_clusters() -> None:
    chip, _ = import_svd(SVD / "arrays.svd", "a")
    tim = chip.peripheral("TIM")
    assert tim is not None
    assert sorted(chip.register_addresses(tim)) == [
        0x40000010, 0x40000014, 0x40000018, 0x4000001C, 0x40000040, 0x40000048, 0x40000050, 0x40000058,
        0x40000080, 0x40000084, 0x40000088, 0x40000100, 0x40000104, 0x40000108, 0x4000010C,
        0x40000200, 0x40000208, 0x4000020C, 0x40000220, 0x40000228, 0x4000022C, 0x40000300, 0x40000304]


@pytest.mark.parametrize("name", ["esp32s3", "esp32", "esp32c3", "esp32c6"])
def test_addresses_agree_with_iteration(name: str) -> None:
    chip = load_chip(name, [chips_dir()])
    for p in chip.peripherals:
        assert sorted(chip.register_addresses(p)) == [ri.address for ri in chip.iter_peripheral_registers(p)], p.name
