"""Import every SVD of a real vendor corpus (pyocd 0.46.0, ~105 files) and check the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.chips.db import chip_from_json, chip_to_json
from clawgen.chips.model import Chip, Cluster, Register, expand_fields
from clawgen.chips.svd import import_svd


def test_corpus_is_the_pinned_one(corpus_dir: Path) -> None:
    names = {p.name for p in corpus_dir.iterdir() if not p.name.startswith(".")}
    assert len(names) == 105
    assert {"nrf54lm20a.svd", "STM32F429x.svd", "MIMXRT1176_cm7.xml", "M2354_v1.svd"} <= names


def _dims(registers: list[Register], clusters: list[Cluster]) -> list:
    out = [r.dim for r in registers if r.dim] + [f.dim for r in registers for f in r.fields if f.dim]
    for c in clusters:
        out += ([c.dim] if c.dim else []) + _dims(c.registers, c.clusters)
    return out


def _check(chip: Chip, warned: set[str]) -> None:
    total = 0
    for p in chip.peripherals:
        for d in _dims(p.registers, p.clusters):
            assert d.count >= 1 and len(d.indices) == d.count, (p.name, d)
        blocks = [(b.offset, b.offset + b.size) for b in p.address_blocks]
        prev = -1
        outside = False
        for ri in chip.iter_peripheral_registers(p):
            total += 1
            assert ri.address >= prev, f"{ri.path} out of address order"
            prev = ri.address
            r = ri.register
            assert r.access in ("read-only", "write-only", "read-write", "writeOnce", "read-writeOnce")
            assert 0 < r.size <= 64 and r.reset_value >> r.size == 0 and r.reset_mask >> r.size == 0
            assert "%s" not in ri.path
            for f in ri.fields:
                assert f.access is not None and f.dim is None and "%s" not in f.name
                if f.msb >= r.size:  # a vendor error: must have been reported (where it was declared)
                    assert any(w.split(".", 1)[0] in (p.name, p.derived_from) for w in warned), ri.path
            rel = ri.address - p.base_address
            if blocks and not any(b0 <= rel and rel + max(1, r.size // 8) <= b1 for b0, b1 in blocks):
                outside = True
        if outside:
            assert any(w == p.name or w.startswith(p.name + ".") for w in warned), \
                f"{p.name}: register outside addressBlocks without a warning"
    assert total == chip.register_count()


def test_import_corpus_file(corpus_svd: Path | str) -> None:
    if isinstance(corpus_svd, str):  # the corpus could not be downloaded: say why, loudly
        pytest.fail(corpus_svd)
    chip, warnings = import_svd(corpus_svd, corpus_svd.stem)
    assert chip.peripherals and chip.register_count() > 0
    assert all(w.severity == "warning" and w.line >= 1 for w in warnings)
    warned = {w.path for w in warnings}
    _check(chip, warned)
    # The database form reads back to the same chip.
    doc = chip_to_json(chip)
    again = chip_from_json(json.loads(json.dumps(doc)))
    assert chip_to_json(again) == doc
    assert again.register_count() == chip.register_count()
    # Lookups agree with iteration (a sample: the first register of each peripheral).
    for p in chip.peripherals:
        first = next(chip.iter_peripheral_registers(p), None)
        if first is None:
            continue
        found = chip.find_register(first.path)
        assert found is not None and found.register.name == first.register.name
        at = chip.find_by_address(first.address)
        assert at is not None and at.address == first.address
        assert expand_fields(first.register.fields) == first.fields
