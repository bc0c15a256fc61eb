import hashlib

import pytest

from clawgen.boards import board_names, load_board
from clawgen.diagnostics import UsageError
from clawgen.image import partitions as pt


@pytest.mark.parametrize("name", board_names())
@pytest.mark.parametrize("flash", ["4MB", "8MB", "16MB"])
def test_layout_round_trips_through_binary(name, flash):
    board = load_board(name).data
    size = pt.parse_flash_size(flash)
    layout = pt.layout_for(board, size)
    pt.check_layout(layout, board["partitions"]["table_offset"], size)
    data = pt.to_binary(layout)
    assert len(data) == pt.TABLE_MAX_LEN
    assert pt.from_binary(data) == layout
    vfs = next(p for p in layout if p.name == "vfs")
    # The port creates "vfs" from the end of the app partition to the end of flash; ours matches.
    factory = next(p for p in layout if p.name == "factory")
    assert vfs.offset == factory.end and vfs.end == size


def test_binary_format_fields():
    layout = [pt.Partition("nvs", pt.TYPE_DATA, pt.SUBTYPE_NVS, 0x9000, 0x6000)]
    data = pt.to_binary(layout)
    assert data[:2] == b"\xaa\x50"
    assert data[2:4] == bytes([1, 2])
    assert int.from_bytes(data[4:8], "little") == 0x9000
    assert int.from_bytes(data[8:12], "little") == 0x6000
    assert data[12:28] == b"nvs".ljust(16, b"\0")
    assert data[32:48] == b"\xeb\xeb" + b"\xff" * 14
    assert data[48:64] == hashlib.md5(data[:32]).digest()
    assert set(data[64:]) == {0xFF}


def test_md5_mismatch_is_detected():
    board = load_board("esp32s3").data
    data = bytearray(pt.to_binary(pt.layout_for(board, 8 << 20)))
    data[5] ^= 1  # corrupt an offset
    with pytest.raises(pt.PartitionTableError, match="MD5"):
        pt.from_binary(bytes(data))


def test_flash_too_small_for_filesystem():
    board = load_board("esp32s3").data
    with pytest.raises(UsageError, match="no room for the filesystem"):
        pt.layout_for(board, 2 << 20)


def test_overlap_is_refused():
    parts = [pt.Partition("a", pt.TYPE_DATA, 2, 0x9000, 0x6000), pt.Partition("b", pt.TYPE_DATA, 1, 0xE000, 0x1000)]
    with pytest.raises(UsageError, match="overlaps"):
        pt.check_layout(parts, 0x8000, 4 << 20)


@pytest.mark.parametrize(("text", "expected"), [("4MB", 4 << 20), ("8MiB", 8 << 20), (16777216, 16 << 20)])
def test_flash_size_parsing(text, expected):
    assert pt.parse_flash_size(text) == expected
    assert pt.parse_flash_size(pt.format_flash_size(expected)) == expected
