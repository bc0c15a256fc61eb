"""The chip database: round trip, compactness, versioning, corrupt files, chip lookup order."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from clawgen.chips import BUILTIN_DIR, available_chips, default_search_dirs, find_chip, load_chip
from clawgen.chips.db import FORMAT_VERSION, read_chip, write_chip
from clawgen.chips.svd import import_svd
from clawgen.diagnostics import DiagnosticError, UsageError

SVD = Path(__file__).parent / "svd"
ALL = ["inherit.svd", "fieldaccess.svd", "derive.svd", "arrays.svd", "clusters.svd", "values.svd", "sanity.svd"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("suffix", [".json.gz", ".json"])
def test_round_trip(tmp_path: Path, name: str, suffix: str) -> None:
    chip, _ = import_svd(SVD / name, "c")
    path = write_chip(chip, tmp_path / f"c{suffix}")
    back = read_chip(path)
    assert back.peripherals == chip.peripherals
    assert (back.name, back.device_name, back.width, back.source) == (chip.name, chip.device_name, chip.width,
                                                                     chip.source)
    assert [(r.path, r.address, r.fields) for r in back.iter_registers()] == [
        (r.path, r.address, r.fields) for r in chip.iter_registers()]


def test_format_is_compact_and_versioned(tmp_path: Path) -> None:
    chip, _ = import_svd(SVD / "derive.svd", "uart")
    path = write_chip(chip, tmp_path / "uart.json.gz")
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert (doc["format"], doc["version"]) == ("clawgen-chip", FORMAT_VERSION)
    uart2 = doc["peripherals"][0]
    # A derived peripheral is written as a reference, not a copy, and defaults are omitted.
    assert uart2 == {"name": "UART2", "baseAddress": 0x40002000, "groupName": "UART", "description": "Serial port",
                     "addressBlocks": [{"offset": 0, "size": 256, "usage": "registers"}],
                     "interrupts": [{"name": "UART2", "value": 12}], "derivedFrom": "UART0"}
    uart0 = next(p for p in doc["peripherals"] if p["name"] == "UART0")
    assert uart0["registers"][0]["fields"][0] == {
        "name": "EN", "lsb": 0,
        "enums": [{"name": "ONOFF", "values": [{"name": "OFF", "value": 0}, {"name": "ON", "value": 1}]}]}
    assert uart0["registers"][0]["resetValue"] == 3 and "size" not in uart0["registers"][0]
    back = read_chip(path)
    assert back.peripheral("UART2").registers is back.peripheral("UART0").registers
    # Reproducible bytes: no timestamp in the gzip header.
    assert write_chip(chip, tmp_path / "again.json.gz").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(("content", "message"), [
    (b"not json", "not a clawgen chip database"),
    (gzip.compress(b"{truncated", mtime=0), "not a clawgen chip database"),
    (b"\x1f\x8b\x08garbage", "not a clawgen chip database"),
    (gzip.compress(b" " * (65 << 20), mtime=0), "not a clawgen chip database: it expands to more than 67,108,864"),
    (gzip.compress(b'{"format": "clawgen-chip"}', mtime=0)[:-8], "not a clawgen chip database: the gzip stream is "
                                                                 "truncated"),
    (b'{"format": "other"}', 'not a clawgen chip database (no "format": "clawgen-chip")'),
    (b'{"format": "clawgen-chip", "version": 2}', "format version 2 is not supported"),
    (b'{"format": "clawgen-chip", "version": 1, "name": "x"}', "corrupt chip database: KeyError"),
    (b'{"format": "clawgen-chip", "version": 1, "name": "x", "device": "X", "width": 32, "addressUnitBits": 8,'
     b' "source": {}, "peripherals": [{"name": "A", "baseAddress": 0, "derivedFrom": "B"}]}',
     'derives from "B"'),
], ids=["text", "truncated-gzip", "bad-gzip", "gzip-bomb", "cut-gzip", "other-format", "version-2", "missing-keys", "bad-derive"])
def test_bad_databases_are_diagnostics(tmp_path: Path, content: bytes, message: str) -> None:
    # (a gzip bomb: 65 KB that would expand to 65 MB and more; never expanded past the bound)
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(DiagnosticError) as e:
        read_chip(p)
    assert message in e.value.diagnostics[0].message
    assert e.value.diagnostics[0].file == str(p)


def _put_chip(directory: Path, name: str, device: str) -> None:
    chip, _ = import_svd(SVD / "fieldaccess.svd", name)
    chip.device_name = device
    write_chip(chip, directory / f"{name}.json.gz")


def test_lookup_order_spec_dir_then_env_then_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_dir, env1, env2 = tmp_path / "proj", tmp_path / "env1", tmp_path / "env2"
    _put_chip(spec_dir / "chips", "mine", "FROM-SPEC")
    _put_chip(env1, "mine", "FROM-ENV1")
    _put_chip(env1, "shared", "FROM-ENV1")
    _put_chip(env2, "shared", "FROM-ENV2")
    _put_chip(env2, "other", "FROM-ENV2")
    monkeypatch.setenv("CLAWGEN_CHIP_PATH", f"{env1}{os.pathsep}{env2}")
    dirs = default_search_dirs(spec_dir)
    assert dirs[:3] == [spec_dir / "chips", env1, env2] and dirs[3].name == "builtin"
    assert load_chip("mine", dirs).device_name == "FROM-SPEC"
    assert load_chip("shared", dirs).device_name == "FROM-ENV1"
    assert load_chip("other", dirs).device_name == "FROM-ENV2"
    assert find_chip("nothing", dirs) is None
    assert {"mine", "shared", "other"} <= set(available_chips(dirs))


def test_unknown_chip_lists_what_exists(tmp_path: Path) -> None:
    _put_chip(tmp_path, "mychipx", "X")
    with pytest.raises(UsageError) as e:
        load_chip("mychipy", [tmp_path])
    assert 'unknown chip "mychipy" (did you mean "mychipx"?); available: ' in str(e.value)
    assert "mychipx" in str(e.value).split("available: ")[1]


def test_builtin_chips_are_always_searched_last(tmp_path: Path) -> None:
    builtin = sorted(p.name.split(".")[0] for p in BUILTIN_DIR.glob("*.json*"))
    assert available_chips([tmp_path / "missing"]) == builtin
    _put_chip(tmp_path, "mine", "X")
    assert available_chips([tmp_path]) == sorted([*builtin, "mine"])
    if builtin:  # a chip in a user directory shadows the built-in of the same name
        _put_chip(tmp_path, builtin[0], "SHADOW")
        assert load_chip(builtin[0], [tmp_path]).device_name == "SHADOW"
        assert find_chip(builtin[0], []) == next(BUILTIN_DIR.glob(f"{builtin[0]}.json*"))


def test_a_database_path_that_is_a_pipe_is_refused_not_read(tmp_path: Path) -> None:
    import os

    p = tmp_path / "pipe.json.gz"
    os.mkfifo(p)  # (reading it would block for good)
    with pytest.raises(DiagnosticError) as e:
        read_chip(p)
    assert e.value.diagnostics[0].message == "not a clawgen chip database: not a regular file"
