import os

import pytest
from littlefs import LittleFS

from clawgen.diagnostics import UsageError
from clawgen.image import fsimage

BUNDLE = {
    "/boot.py": b"# boot\n",
    "/main.py": b"import claw_agent\nclaw_agent.run()\n",
    "/clawgen.json": b'{"agent": "demo"}',
    "/lib/claw_agent.mpy": b"M\x06\x00\x1f" + os.urandom(9000),
    "/lib/claw_http.mpy": b"M\x06\x00\x1f" + os.urandom(300),
}
PARTITION = 6 << 20  # 8MB flash - 0x200000


def _mount_as_device(data: bytes, partition_size: int) -> LittleFS:
    """Mount with the geometry MicroPython's esp32.Partition presents (4096-byte blocks)."""
    fs = LittleFS(block_size=4096, block_count=partition_size // 4096, mount=False)
    fs.context.buffer[:] = bytearray(data) + bytearray(b"\xff" * (partition_size - len(data)))
    fs.mount()
    return fs


def test_image_mounts_and_holds_exactly_the_bundle():
    img = fsimage.build_fs_image(BUNDLE, PARTITION)
    fs = _mount_as_device(img.data, PARTITION)
    found = {}
    for top, _dirs, names in fs.walk("/"):
        for name in names:
            path = top.rstrip("/") + "/" + name
            with fs.open(path.lstrip("/"), "rb") as f:
                found[path] = f.read()
    assert found == BUNDLE
    assert fsimage.read_fs_image(img.data, PARTITION) == BUNDLE


def test_superblock_geometry_matches_the_partition():
    img = fsimage.build_fs_image(BUNDLE, PARTITION)
    # block_count=0: take the geometry from the superblock, to see what the image says.
    fs = LittleFS(block_size=4096, block_count=0, mount=False)
    fs.context.buffer[:] = bytearray(img.data) + bytearray(b"\xff" * (PARTITION - len(img.data)))
    fs.mount()
    assert fs.block_count == PARTITION // 4096
    stat = fs.fs_stat()
    assert stat.disk_version == fsimage.DISK_VERSION
    assert stat.block_size == 4096
    assert stat.name_max == 255


def test_image_is_trimmed_and_deterministic():
    a = fsimage.build_fs_image(BUNDLE, PARTITION)
    b = fsimage.build_fs_image(dict(reversed(BUNDLE.items())), PARTITION)
    assert a.data == b.data
    assert len(a.data) % 4096 == 0
    payload = sum(len(v) for v in BUNDLE.values())
    assert payload <= a.used <= len(a.data) < PARTITION // 8


def test_image_still_writable_after_mount():
    img = fsimage.build_fs_image(BUNDLE, PARTITION)
    fs = _mount_as_device(img.data, PARTITION)
    with fs.open("new.txt", "wb") as f:
        f.write(b"x" * 100_000)  # the device can use the whole partition
    assert fs.stat("new.txt").size == 100_000


def test_overflow_reports_needed_bytes():
    with pytest.raises(fsimage.FsOverflowError) as err:
        fsimage.build_fs_image({"/big.bin": b"z" * 40_000}, 8 * 4096)
    assert err.value.capacity == 8 * 4096
    assert err.value.needed > 40_000


@pytest.mark.parametrize("path", ["main.py", "/lib/../x.py", "/", "//a"])
def test_bad_device_paths(path):
    with pytest.raises(UsageError):
        fsimage.build_fs_image({path: b""}, PARTITION)
