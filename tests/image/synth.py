"""Synthetic ESP firmware images for the tests, built with esptool's own image classes.

A "stock-like" base image is what ports/esp32/makeimg.py writes: bootloader at file offset 0,
the stock partition table (partitions-4MiBplus.csv) at 0x8000 - bootloader offset, the app
at 0x10000 - bootloader offset. The app's first (DROM) segment starts with an esp_app_desc_t
whose version/project fields are empty (as stock MicroPython builds them) and carries the
banner "MicroPython vX.Y.Z on DATE" that identifies the version.
"""

from __future__ import annotations

import struct

from esptool.bin_image import ELFSection, ESP32FirmwareImage
from esptool.targets import CHIP_DEFS

from clawgen.image import partitions as pt

APP_DESC_MAGIC = 0xABCD5432


def _image(chip: str) -> ESP32FirmwareImage:
    rom = CHIP_DEFS[chip]
    image = rom.BOOTLOADER_IMAGE()
    image.chip_id = rom.IMAGE_CHIP_ID
    image.flash_size_freq = rom.FLASH_SIZES["4MB"]
    image.append_digest = True
    return image


def app_desc(version: str = "", project: str = "", idf: str = "v5.5.1") -> bytes:
    desc = struct.pack("<III", APP_DESC_MAGIC, 0, 0) + b"\0" * 4
    desc += version.encode().ljust(32, b"\0") + project.encode().ljust(32, b"\0")
    desc += b"12:00:00".ljust(16, b"\0") + b"Nov 20 2026".ljust(16, b"\0")
    desc += idf.encode().ljust(32, b"\0") + b"\x11" * 32
    return desc.ljust(256, b"\0")


def bootloader_image(chip: str = "esp32s3", size: int = 0x400) -> bytes:
    """A bootloader image with one DRAM segment of about `size` bytes."""
    image = _image(chip)
    dram = 0x3FCD0000 if chip != "esp32" else 0x3FFF0000
    image.segments = [ELFSection(b".dram0.data", dram, b"\x5a" * size, 0)]
    image.entrypoint = dram
    return image.save(None)


def app_image(chip: str = "esp32s3", banner: str | None = "MicroPython v1.29.0 on 2026-11-01",
              desc_version: str = "", project: str = "", extra: int = 0x2000) -> bytes:
    rom = CHIP_DEFS[chip]
    image = _image(chip)
    drom = app_desc(desc_version, project) + (banner.encode() + b"\0" if banner else b"") + b"\0" * extra
    drom += b"\0" * (-len(drom) % 4)
    image.segments = [ELFSection(b".flash.rodata", rom.DROM_MAP_START + 0x20, drom, 0),
                      ELFSection(b".flash.text", rom.IROM_MAP_START + 0x10020, b"\x33" * 0x1000, 0)]
    image.entrypoint = rom.IROM_MAP_START + 0x10020
    return image.save(None)


STOCK_TABLE = [
    pt.Partition("nvs", pt.TYPE_DATA, pt.SUBTYPE_NVS, 0x9000, 0x6000),
    pt.Partition("phy_init", pt.TYPE_DATA, pt.SUBTYPE_PHY, 0xF000, 0x1000),
    pt.Partition("factory", pt.TYPE_APP, pt.SUBTYPE_FACTORY, 0x10000, 0x1F0000),
]


def stock_firmware(chip: str = "esp32s3", bootloader_offset: int = 0, app_chip: str | None = None,
                   **app_kwargs) -> bytes:
    """A merged stock-like MicroPython image, starting at the bootloader offset."""
    out = bytearray(bootloader_image(chip))
    out += b"\xff" * (0x8000 - bootloader_offset - len(out))
    out += pt.to_binary(STOCK_TABLE)
    out += b"\xff" * (0x10000 - bootloader_offset - len(out))
    out += app_image(app_chip or chip, **app_kwargs)
    return bytes(out)
