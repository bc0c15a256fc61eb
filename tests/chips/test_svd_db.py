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
    (b'{"format": "clawgen-chip", "version": 1, "name": "x"}', 'corrupt chip database: "peripherals" is missing'),
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


def _doc() -> dict:
    return {"format": "clawgen-chip", "version": FORMAT_VERSION, "name": "t", "device": "T", "width": 32,
            "addressUnitBits": 8, "source": {"file": "t.svd", "sha256": "00"},
            "peripherals": [{"name": "P", "baseAddress": 0x1000, "registers": [
                {"name": "R", "offset": 4, "size": 16, "resetValue": 1, "fields": [
                    {"name": "F", "lsb": 2, "width": 3, "enums": [{"values": [{"name": "ON", "value": 1}]}]}]}],
                "clusters": [{"name": "C", "offset": 8, "registers": [{"name": "CR", "offset": 0}]}]},
                {"name": "Q", "baseAddress": 0x2000, "derivedFrom": "P"}]}


def _set(doc: dict, path: tuple, value: object) -> dict:
    d: object = doc
    for k in path[:-1]:
        d = d[k]  # type: ignore[index]
    if value is _DROP:
        del d[path[-1]]  # type: ignore[attr-defined]
    else:
        d[path[-1]] = value  # type: ignore[index]
    return doc


_DROP = object()
_R = ("peripherals", 0, "registers", 0)
_F = (*_R, "fields", 0)


@pytest.mark.parametrize(("path", "value", "message"), [
    ((*_R, "offset"), "4", 'peripheral P: register R: "offset" is "4": expected an integer from 0 to 18,446,744,073,'),
    ((*_R, "offset"), -4, 'peripheral P: register R: "offset" is -4: expected an integer from 0'),
    ((*_R, "offset"), 1 << 70, 'register R: "offset" is 1180591620717411303424: expected an integer'),
    ((*_R, "offset"), 4.0, 'register R: "offset" is 4.0: expected an integer'),
    ((*_R, "offset"), True, 'register R: "offset" is true: expected an integer'),
    ((*_R, "offset"), _DROP, 'peripheral P: register R: "offset" is missing'),
    ((*_R, "size"), 0, 'register R: "size" is 0: expected an integer from 1 to 64'),
    ((*_R, "size"), 65, 'register R: "size" is 65: expected an integer from 1 to 64'),
    ((*_R, "resetValue"), 1 << 16, 'register R: "resetValue" is 65536: expected an integer from 0 to 65,535'),
    ((*_R, "access"), "rw", 'register R: "access" is "rw": expected one of read-only, read-write, read-writeOnce,'),
    ((*_R, "protection"), 1, 'register R: "protection" is 1: expected one of n, p, s'),
    ((*_R, "readAction"), "wipe", '"readAction" is "wipe": expected one of clear, modify, modifyExternal, set'),
    ((*_R, "name"), None, 'peripheral P: a register: "name" is null: expected a string'),
    ((*_R, "name"), "", 'peripheral P: a register: "name" is "": expected a string'),
    ((*_R, "fields"), {"name": "F"}, 'register R: "fields" is {"name": "F"}: expected a list of objects'),
    ((*_R, "fields"), [3], 'register R: "fields" is [3]: expected a list of objects'),
    ((*_R, "dim"), {"count": 0, "increment": 4}, 'register R: "count" is 0: expected an integer from 1 to 1,048,576'),
    ((*_R, "dim"), {"count": 2, "increment": 4, "indices": ["a"]}, "register R: array of 2 elements lists 1 indices"),
    ((*_R, "dim"), {"count": 1, "increment": 4, "indices": [0]}, 'register R: "indices" is [0]: expected a list of'),
    ((*_R, "dim"), [2], 'register R: "dim" is [2]: expected an object'),
    ((*_R, "writeConstraint"), {"range": [5]}, 'register R: "range" is [5]: expected [minimum, maximum]'),
    ((*_R, "writeConstraint"), {"writeAsRead": "yes"}, '"writeAsRead" is "yes": expected true or false'),
    ((*_F, "lsb"), 64, 'register R: field F: "lsb" is 64: expected an integer from 0 to 63'),
    ((*_F, "width"), 0, 'register R: field F: "width" is 0: expected an integer from 1 to 64'),
    ((*_F, "name"), ["F"], 'register R: a field: "name" is ["F"]: expected a string'),
    ((*_F, "enums", 0, "values", 0, "value"), "1", 'field F: "value" is "1": expected an integer'),
    ((*_F, "enums", 0, "usage"), "sometimes", 'field F: "usage" is "sometimes": expected one of read, read-write'),
    ((*_F, "description"), 7, 'field F: "description" is 7: expected a string'),
    (("peripherals", 0, "clusters", 0, "registers", 0, "offset"), None,
     'peripheral P: cluster C: register CR: "offset" is null: expected an integer'),
    (("peripherals", 0, "baseAddress"), "0x1000", 'peripheral P: "baseAddress" is "0x1000": expected an integer'),
    (("peripherals", 0, "interrupts"), [{"name": "IRQ", "value": -1}], '"value" is -1: expected an integer'),
    (("peripherals", 0, "addressBlocks"), [{"offset": 0}], 'peripheral P: "size" is missing'),
    (("peripherals", 1, "derivedFrom"), 5, 'peripheral Q: "derivedFrom" is 5: expected a string'),
    (("peripherals",), {}, '"peripherals" is {}: expected a list of objects'),
    (("width",), "32", '"width" is "32": expected an integer'),
    (("cpu",), {"name": ["x"]}, '"cpu" is {"name": ["x"]}: expected an object of strings, integers and true/false'),
    (("source",), None, '"source" is missing'),
    (("name",), "", '"name" is "": expected a string'),
])
def test_a_database_value_of_the_wrong_type_or_range_is_named_where_it_is(tmp_path: Path, path: tuple, value: object,
                                                                          message: str) -> None:
    # A database edited by hand, written by something else or damaged decoded into a model the
    # build then tripped over: "internal error: TypeError: unsupported operand type(s) for <<",
    # "'<' not supported between instances of 'dict' and 'int'", "too many digits in integer"...
    p = tmp_path / "t.json"
    p.write_text(json.dumps(_set(_doc(), path, value)), encoding="utf-8")
    with pytest.raises(DiagnosticError) as e:
        read_chip(p)
    got = e.value.diagnostics[0].message
    assert got.startswith("corrupt chip database: ") and message in got, got


def test_the_database_of_the_wrong_type_test_reads_when_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(_doc()), encoding="utf-8")
    chip = read_chip(p)
    reg = chip.find_register("P.R")
    assert reg is not None and (reg.address, reg.register.size, reg.register.reset_value) == (0x1004, 16, 1)
    assert chip.peripheral("Q").registers is chip.peripheral("P").registers


def test_a_build_with_a_damaged_chip_database_is_one_error_at_the_file(examples_copy: Path) -> None:
    # The spec's own chips/ directory comes first: a damaged copy of the board's chip there.
    from tests.build.helpers import clawgen

    doc = json.loads(gzip.decompress((BUILTIN_DIR / "esp32s3.json.gz").read_bytes()))
    gpio = next(p for p in doc["peripherals"] if p["name"] == "GPIO")
    gpio["registers"][0]["size"] = 32.0
    (examples_copy / "chips").mkdir()
    (examples_copy / "chips" / "esp32s3.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode(), mtime=0))
    r = clawgen("build", "register-assistant.yaml", "--out", str(examples_copy / "out"), cwd=examples_copy,
                env={"CLAWGEN_CACHE": str(examples_copy / "cache")})
    assert r.returncode == 2, r.stderr
    reg = gpio["registers"][0]["name"]
    assert (f'chips/esp32s3.json.gz:1:1: error: corrupt chip database: peripheral GPIO: register {reg}: "size" is '
            "32.0: expected an integer from 1 to 64") in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert not (examples_copy / "out").exists()
