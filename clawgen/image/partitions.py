"""ESP-IDF partition tables: the layout clawgen flashes, and the binary format.

The binary format is ESP-IDF's (components/partition_table/gen_esp32part.py): 32-byte
entries (magic 0x50AA, type, subtype, offset, size, 16-byte label, flags), then an MD5
entry (0xEBEB, 14 x 0xFF, MD5 of the entries before it), padded with 0xFF to 0xC00 bytes.

The layout follows MicroPython's ports/esp32/partitions-4MiBplus.csv (nvs, phy_init,
factory) and adds the "vfs" partition the port would otherwise create at boot (main.c:
from the end of the last partition to the end of the detected flash, type data, subtype
fat). Writing it into the table makes a merged image self-describing; the port finds
"vfs" by label (esp32.Partition.find(TYPE_DATA, label="vfs")) and then does not create one.
"""

from __future__ import annotations

import hashlib
import struct

from clawgen.diagnostics import UsageError
from clawgen.records import record

ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
ENTRY_SIZE = 32
TABLE_MAX_LEN = 0xC00  # ESP-IDF's MAX_PARTITION_LENGTH
TABLE_REGION = 0x1000  # the flash sector the table lives in
FLASH_SECTOR = 0x1000

TYPE_APP = 0x00
TYPE_DATA = 0x01
SUBTYPE_FACTORY = 0x00
SUBTYPE_PHY = 0x01
SUBTYPE_NVS = 0x02
SUBTYPE_FAT = 0x81  # what the port registers its own "vfs" partition with (it holds LittleFS)

_ENTRY = struct.Struct("<2sBBII16sI")


@record
class Partition:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.size


def parse_flash_size(text: str | int) -> int:
    """'8MB' / '4MiB' / 8388608 -> bytes."""
    if isinstance(text, int):
        return text
    s = str(text).strip().upper().replace("IB", "B")
    for suffix, mult in (("MB", 1 << 20), ("KB", 1 << 10)):
        if s.endswith(suffix):
            return int(s[: -len(suffix)]) * mult
    return int(s, 0)


def format_flash_size(size: int) -> str:
    """bytes -> '8MB' (esptool's spelling)."""
    if size % (1 << 20) == 0:
        return f"{size >> 20}MB"
    return f"{size // 1024}KB"


def layout_for(board: dict, flash_size: int) -> list[Partition]:
    """The partition table clawgen writes for `board` at `flash_size` bytes of flash."""
    p = board["partitions"]
    nvs, phy, factory, vfs = p["nvs"], p["phy_init"], p["factory"], p["vfs"]
    vfs_offset = int(vfs["offset"])
    if flash_size <= vfs_offset:
        raise UsageError(
            f"flash size {format_flash_size(flash_size)} leaves no room for the filesystem: "
            f"board {board.get('name', '?')} puts it at {vfs_offset:#x}")
    return [
        Partition("nvs", TYPE_DATA, SUBTYPE_NVS, int(nvs["offset"]), int(nvs["size"])),
        Partition("phy_init", TYPE_DATA, SUBTYPE_PHY, int(phy["offset"]), int(phy["size"])),
        Partition("factory", TYPE_APP, SUBTYPE_FACTORY, int(factory["offset"]), int(factory["size"])),
        Partition("vfs", TYPE_DATA, SUBTYPE_FAT, vfs_offset, flash_size - vfs_offset),
    ]


def check_layout(parts: list[Partition], table_offset: int, flash_size: int) -> None:
    """Refuse overlapping, misaligned or out-of-flash partitions (a bug in board data)."""
    prev_end = table_offset + TABLE_REGION
    for part in sorted(parts, key=lambda q: q.offset):
        align = 0x10000 if part.type == TYPE_APP else FLASH_SECTOR
        if part.offset % align or part.size % FLASH_SECTOR:
            raise UsageError(f"partition {part.name} at {part.offset:#x}+{part.size:#x} is not aligned")
        if part.offset < prev_end:
            raise UsageError(f"partition {part.name} at {part.offset:#x} overlaps the one before it")
        if part.end > flash_size:
            raise UsageError(f"partition {part.name} ends at {part.end:#x}, beyond the "
                             f"{format_flash_size(flash_size)} flash")
        prev_end = part.end


def to_binary(parts: list[Partition]) -> bytes:
    """ESP-IDF binary partition table with its MD5 entry, padded to 0xC00 bytes."""
    body = b""
    for part in parts:
        label = part.name.encode("ascii")
        if len(label) > 16:
            raise UsageError(f"partition label {part.name!r} is longer than 16 bytes")
        body += _ENTRY.pack(ENTRY_MAGIC, part.type, part.subtype, part.offset, part.size,
                            label.ljust(16, b"\0"), part.flags)
    body += MD5_MAGIC + hashlib.md5(body).digest()
    if len(body) > TABLE_MAX_LEN:
        raise UsageError(f"partition-table overflows its {TABLE_MAX_LEN} bytes by {len(body) - TABLE_MAX_LEN} bytes")
    return body + b"\xff" * (TABLE_MAX_LEN - len(body))


class PartitionTableError(ValueError):
    """The bytes are not a valid ESP-IDF partition table."""


def from_binary(data: bytes) -> list[Partition]:
    """Parse an ESP-IDF binary partition table; checks the MD5 entry when present."""
    parts: list[Partition] = []
    for pos in range(0, min(len(data), TABLE_MAX_LEN), ENTRY_SIZE):
        raw = data[pos:pos + ENTRY_SIZE]
        if len(raw) < ENTRY_SIZE or raw == b"\xff" * ENTRY_SIZE:
            return parts
        if raw[:16] == MD5_MAGIC:
            if hashlib.md5(data[:pos]).digest() != raw[16:]:
                raise PartitionTableError("partition table MD5 does not match its entries")
            continue
        magic, ptype, subtype, offset, size, label, flags = _ENTRY.unpack(raw)
        if magic != ENTRY_MAGIC:
            raise PartitionTableError(f"bad partition entry magic {magic.hex()} at byte {pos}")
        name = label.split(b"\0", 1)[0].decode("ascii", "replace")
        parts.append(Partition(name, ptype, subtype, offset, size, flags))
    return parts
