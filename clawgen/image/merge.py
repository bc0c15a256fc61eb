"""The merged firmware.bin: one file, written at the bootloader offset, booting into the app.

How it is formed from a stock base image (which starts at the bootloader offset):
- bootloader: the base's bytes up to the partition table, with the image header's flash
  size set to the chosen flash size (and its appended SHA-256 recomputed), as
  `esptool write-flash --flash-size` would do. This is required, not cosmetic: ESP-IDF's
  esp_partition_table_verify rejects any partition ending beyond the header's flash size,
  and stock images say 4MB while our "vfs" entry runs to the end of the chosen flash;
- partition table: ours (nvs, phy_init, factory, vfs), replacing the base's;
- nvs: our NVS image; phy_init: the base's bytes there (stock leaves it erased);
- factory: the base's application image, unchanged, at the same offset;
- vfs: our LittleFS image (trimmed: littlefs never reads blocks it has not allocated).
Gaps are 0xFF (erased flash). On ESP32 the file starts at 0x1000; flash_args.json says so.
"""

from __future__ import annotations

import hashlib
import struct

from clawgen.diagnostics import UsageError
from clawgen.image import partitions as pt
from clawgen.image.basefw import BaseFirmware
from clawgen.records import record


@record
class Placed:
    name: str
    offset: int  # flash address
    data: bytes


def _flash_size_code(chip: str, flash_size: int) -> int:
    from esptool.targets import CHIP_DEFS

    sizes = CHIP_DEFS[chip].FLASH_SIZES
    key = pt.format_flash_size(flash_size)
    if key not in sizes:
        raise UsageError(f"flash size {key} is not one {chip} supports ({', '.join(sizes)})")
    return sizes[key]


def set_bootloader_flash_size(bootloader: bytes, chip: str, flash_size: int) -> bytes:
    """Set the flash-size nibble of a bootloader image header; recompute its SHA-256 if appended."""
    from esptool.bin_image import LoadFirmwareImage

    image = LoadFirmwareImage(chip, bootloader)
    header = bytearray(bootloader)
    header[3] = (header[3] & 0x0F) | _flash_size_code(chip, flash_size)
    if header[8 + 15] == 1 and image.data_length:
        end = image.data_length
        header[end:end + 32] = hashlib.sha256(bytes(header[:end])).digest()
    return bytes(header)


def merged_parts(base: BaseFirmware, layout: list[pt.Partition], table: bytes, nvs: bytes,
                 fs: bytes, board: dict, flash_size: int) -> list[Placed]:
    """The pieces of the merged image, each at its flash address."""
    by_name = {p.name: p for p in layout}
    factory, nvs_part, vfs = by_name["factory"], by_name["nvs"], by_name["vfs"]
    table_offset = int(board["partitions"]["table_offset"])
    bl = base.bootloader_offset
    if base.app_offset != factory.offset:
        raise UsageError(f"the base firmware's application is at {base.app_offset:#x}, the layout "
                         f"puts the factory partition at {factory.offset:#x}")
    bootloader = set_bootloader_flash_size(base.data[:table_offset - bl], base.chip, flash_size)
    placed = [
        Placed("bootloader", bl, bootloader),
        Placed("partition-table", table_offset, table),
        Placed("nvs", nvs_part.offset, nvs),
    ]
    phy = by_name.get("phy_init")
    if phy is not None:
        phy_bytes = base.data[phy.offset - bl:phy.end - bl]
        if phy_bytes.strip(b"\xff"):
            placed.append(Placed("phy_init", phy.offset, phy_bytes))
    app = base.data[base.app_offset - bl:base.app_offset - bl + base.app_size]
    placed.append(Placed("factory", factory.offset, app))
    placed.append(Placed("vfs", vfs.offset, fs))
    return placed


def merge(placed: list[Placed], start: int) -> bytes:
    """Lay the pieces out from flash address `start`, 0xFF in the gaps; refuses overlaps."""
    out = bytearray()
    end = start
    for piece in sorted(placed, key=lambda q: q.offset):
        if piece.offset < end:
            raise UsageError(f"{piece.name} at {piece.offset:#x} overlaps the region before it (ends {end:#x})")
        out += b"\xff" * (piece.offset - end)
        out += piece.data
        end = piece.offset + len(piece.data)
    return bytes(out)


def image_chip_id(data: bytes) -> int:
    return struct.unpack_from("<H", data, 12)[0]
