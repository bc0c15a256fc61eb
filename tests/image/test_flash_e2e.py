"""`clawgen flash` end to end: the real esptool against the emulated ESP32-S3 ROM bootloader."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
from pathlib import Path

import pytest

from clawgen.diagnostics import UsageError
from clawgen.image.flash import FlashOptions, flash_build, load_flash_plan
from tests.fakes.esp_rom import MB, EspRomEmulator

NVS_OFFSET = 0x9000
VFS_OFFSET = 0x200000


def _blob(seed: int, size: int, used: int | None = None) -> bytes:
    """``used`` random bytes then erased flash (0xFF), as in a filesystem or NVS image."""
    used = size if used is None else used
    data = bytearray(random.Random(seed).randbytes(used)) + b"\xff" * (size - used)
    data[0] = 0x00  # not 0xE9: esptool would try to parse an app image header at offset 0
    return bytes(data)


def make_build(root: Path, *, merged: bool = True, chip: str = "esp32s3",
               flash_size: str = "8MB") -> dict[str, tuple[int, bytes]]:
    """A build directory with image/flash_args.json and synthetic images; returns name -> (offset, bytes)."""
    image = root / "image"
    image.mkdir(parents=True)
    images = {
        # not a whole number of sectors; gaps of erased flash between its parts, as in a merged image
        "firmware": (0, _blob(1, 96 * 1024 + 512, used=40 * 1024) + _blob(4, 512)),
        "vfs": (VFS_OFFSET, _blob(2, 64 * 1024, used=12 * 1024)),
        "nvs": (NVS_OFFSET, _blob(3, 0x6000, used=0x800)),
    }
    for name, (_, data) in images.items():
        (image / f"{name}.bin").write_bytes(data)
    args = {
        "merged": {"offset": 0, "file": "firmware.bin"} if merged else None,
        "app_only": [{"offset": VFS_OFFSET, "file": "vfs.bin", "name": "vfs"},
                     {"offset": NVS_OFFSET, "file": "nvs.bin", "name": "nvs"}],
        "chip": chip,
        "flash_size": flash_size,
    }
    (image / "flash_args.json").write_text(json.dumps(args))
    (root / "build.json").write_text("{}\n")
    return images


def rom_options(url: str, **kw: object) -> FlashOptions:
    base: dict[str, object] = {"port": url, "stub": False, "connect_attempts": 1, "progress": False}
    base.update(kw)
    return FlashOptions(**base)  # type: ignore[arg-type]


def assert_holds(rom: EspRomEmulator, offset: int, data: bytes) -> None:
    assert bytes(rom.flash[offset:offset + len(data)]) == data


def untouched(rom: EspRomEmulator, start: int, end: int) -> bool:
    return bytes(rom.flash[start:end]) == bytes([rom.fill]) * (end - start)


def test_merged_image_is_written_at_its_offset_and_verified(tmp_path: Path) -> None:
    images = make_build(tmp_path)
    offset, firmware = images["firmware"]
    lines: list[str] = []
    with EspRomEmulator() as rom:
        result = flash_build(load_flash_plan(tmp_path), rom_options(rom.url, baud=460800), echo=lines.append)

    assert_holds(rom, offset, firmware)
    # the rest of the last sector is erased, the flash beyond it is left alone
    end = len(firmware)
    sector_end = -(-end // 0x1000) * 0x1000
    assert bytes(rom.flash[end:sector_end]) == b"\xff" * (sector_end - end)
    assert untouched(rom, sector_end, rom.flash_size)
    # the ROM computed the MD5 of exactly the written range: the verify step ran
    assert rom.md5_requests == [(0, len(firmware))]
    assert rom.ran("SPI_ATTACH") and rom.baud_changes == [460800]
    assert [r.md5 for r in result.regions] == [hashlib.md5(firmware).hexdigest()]
    assert all(r.verified for r in result.regions)
    assert result.chip == "ESP32-S3" and result.flash_size == "8MB"
    assert any("verified" in line and "firmware" in line for line in lines)


def test_app_only_writes_just_the_filesystem_and_nvs(tmp_path: Path) -> None:
    images = make_build(tmp_path)
    with EspRomEmulator() as rom:
        result = flash_build(load_flash_plan(tmp_path, app_only=True), rom_options(rom.url))

    for name in ("vfs", "nvs"):
        offset, data = images[name]
        assert_holds(rom, offset, data)
    assert untouched(rom, 0, NVS_OFFSET)  # bootloader, partition table: not touched
    assert untouched(rom, NVS_OFFSET + 0x6000, VFS_OFFSET)  # MicroPython app: not touched
    assert sorted(rom.md5_requests) == [(NVS_OFFSET, 0x6000), (VFS_OFFSET, 64 * 1024)]
    assert [r.region.name for r in result.regions] == ["nvs", "vfs"]


def test_compressed_rom_writes_land_exactly(tmp_path: Path) -> None:
    images = make_build(tmp_path)
    with EspRomEmulator() as rom:
        flash_build(load_flash_plan(tmp_path, app_only=True), rom_options(rom.url, compress=True))
    assert rom.ran("FLASH_DEFL_DATA") and not rom.ran("FLASH_DATA")
    for name in ("vfs", "nvs"):
        offset, data = images[name]
        assert_holds(rom, offset, data)


def test_erase_wipes_the_whole_flash_without_the_stub(tmp_path: Path) -> None:
    images = make_build(tmp_path)
    with EspRomEmulator() as rom:
        result = flash_build(load_flash_plan(tmp_path), rom_options(rom.url, erase=True))
    assert result.erased
    assert (0, 8 * MB) in rom.erased  # one FLASH_BEGIN over the whole chip: the ROM erases it
    offset, firmware = images["firmware"]
    assert_holds(rom, offset, firmware)
    assert bytes(rom.flash[len(firmware):]) == b"\xff" * (rom.flash_size - len(firmware))


def test_erase_with_app_only_is_refused(tmp_path: Path) -> None:
    make_build(tmp_path)
    with EspRomEmulator() as rom, pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path, app_only=True), rom_options(rom.url, erase=True))
    assert "--erase" in str(err.value) and "--app-only" in str(err.value)
    assert rom.commands == []  # refused before touching the board


@pytest.mark.parametrize("other", ["esp32c3", "esp32c6", "esp32"])
def test_wrong_chip_is_refused_before_writing(tmp_path: Path, other: str) -> None:
    from esptool.targets import CHIP_DEFS

    target = CHIP_DEFS[other]
    make_build(tmp_path)  # for an ESP32-S3
    if target.USES_MAGIC_VALUE:  # older chips are told apart by a ROM register, not a chip ID
        rom = EspRomEmulator(chip_id=None, magic_value=target.MAGIC_VALUE)
    else:
        rom = EspRomEmulator(chip_id=target.IMAGE_CHIP_ID)
    with rom, pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(rom.url))
    message = str(err.value)
    assert f"is an {target.CHIP_NAME}, but this build is for an ESP32-S3" in message
    assert "\n" not in message
    assert not any(c.startswith("FLASH") for c in rom.commands)


def test_board_with_smaller_flash_than_the_build_is_refused(tmp_path: Path) -> None:
    make_build(tmp_path, flash_size="8MB")
    with EspRomEmulator(flash_size=4 * MB) as rom, pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(rom.url))
    assert "4MB" in str(err.value) and "8MB" in str(err.value)
    assert not any(c.startswith("FLASH") for c in rom.commands)


def test_board_with_more_flash_takes_the_full_image_and_says_so(tmp_path: Path) -> None:
    images = make_build(tmp_path, flash_size="8MB")
    lines: list[str] = []
    with EspRomEmulator(flash_size=16 * MB) as rom:
        flash_build(load_flash_plan(tmp_path), rom_options(rom.url), echo=lines.append)
    assert_holds(rom, 0, images["firmware"][1])
    assert any(line.startswith("note: the board has 16MB of flash; this build uses 8MB") for line in lines)


def test_silent_port_means_not_in_download_mode(tmp_path: Path) -> None:
    make_build(tmp_path)
    with EspRomEmulator(silent=True) as rom, pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(rom.url))
    message = str(err.value)
    assert "download mode" in message and "BOOT" in message and "\n" not in message


def test_nothing_listening_on_the_port(tmp_path: Path) -> None:
    make_build(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    # the listening socket is closed: connecting is refused
    with pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(f"socket://127.0.0.1:{port}"))
    assert "refused" in str(err.value)


def test_missing_device_port(tmp_path: Path) -> None:
    make_build(tmp_path)
    missing = str(tmp_path / "ttyUSB-not-there")
    with pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(missing))
    assert "does not exist" in str(err.value) and missing in str(err.value)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_busy_port(tmp_path: Path) -> None:
    import serial

    make_build(tmp_path)
    controller, device = os.openpty()
    name = os.ttyname(device)
    try:
        with serial.Serial(name, exclusive=True), pytest.raises(UsageError) as err:  # another program
            flash_build(load_flash_plan(tmp_path), rom_options(name))
    finally:
        os.close(controller)
        os.close(device)
    assert "busy" in str(err.value) and name in str(err.value)


def test_default_path_runs_the_flasher_stub(tmp_path: Path) -> None:
    images = make_build(tmp_path)
    with EspRomEmulator() as rom:
        # FlashOptions defaults: the stub, compressed writes, 460800 baud
        result = flash_build(load_flash_plan(tmp_path), FlashOptions(port=rom.url, connect_attempts=1,
                                                                     progress=False, erase=True))
    offset, firmware = images["firmware"]
    assert_holds(rom, offset, firmware)
    assert rom.stub_running and rom.stub_code_bytes > 0
    assert rom.ran("ERASE_FLASH") and rom.ran("FLASH_DEFL_DATA")
    assert bytes(rom.flash[-MB:]) == b"\xff" * MB  # erased
    assert rom.md5_requests == [(0, len(firmware))]
    assert all(r.verified for r in result.regions)


def test_stub_request_against_a_rom_without_ram_loading_fails_cleanly(tmp_path: Path) -> None:
    make_build(tmp_path)
    with EspRomEmulator(accepts_stub=False) as rom, pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(rom.url, stub=True))
    assert "\n" not in str(err.value)
    assert not any(c.startswith("FLASH") for c in rom.commands)


@pytest.mark.parametrize("bad_port", ["bogus://board", os.devnull])
def test_ports_that_are_no_serial_ports(tmp_path: Path, bad_port: str) -> None:
    make_build(tmp_path)
    with pytest.raises(UsageError) as err:
        flash_build(load_flash_plan(tmp_path), rom_options(bad_port))
    message = str(err.value)
    assert message.startswith(f"cannot open serial port {bad_port}: ") and "\n" not in message
