import os
import random

import pytest
from littlefs import LittleFS

from clawgen.diagnostics import UsageError
from clawgen.image import fsimage
from tests.image.device_fs import NorFlash, files_of, mount_like_micropython

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
    # packed at the front: little more than the blocks littlefs uses needs flashing
    assert payload <= a.used <= len(a.data) <= a.used + 2 * 4096


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


def _old_filesystem(partition_size: int) -> bytearray:
    """What the partition holds on a board that has been used: another littlefs, full of files."""
    flash = bytearray(b"\xff" * partition_size)
    fs = LittleFS(context=NorFlash(buffer=flash), block_size=4096, block_count=partition_size // 4096,
                  read_size=32, prog_size=32, lookahead_size=32, block_cycles=100, mount=False)
    fs.format()
    fs.mount()
    rng = random.Random(7)
    for i in range(40):
        with fs.open(f"old{i}.bin", "wb") as f:
            f.write(rng.randbytes(rng.randrange(1000, 30_000)))
    fs.unmount()
    return flash


@pytest.mark.parametrize("flash_mb", [4, 8, 16])
@pytest.mark.parametrize("previous", ["erased", "old-filesystem", "garbage"])
def test_trimmed_image_mounts_over_the_whole_partition_and_stays_writable(flash_mb, previous):
    """What the device does after flashing fs.bin at the vfs offset: mount the whole partition."""
    partition = (flash_mb << 20) - 0x200000  # the vfs partition for this flash size
    img = fsimage.build_fs_image(BUNDLE, partition)
    assert len(img.data) < partition
    # Full image (merged / --erase): blank after fs.bin. --app-only onto a used board: the
    # old filesystem's blocks (or any old bytes) are still there after fs.bin.
    if previous == "erased":
        flash = bytearray(b"\xff" * partition)
    elif previous == "old-filesystem":
        flash = _old_filesystem(partition)
    else:
        flash = bytearray(random.Random(3).randbytes(partition))
    flash[:len(img.data)] = img.data

    fs = mount_like_micropython(flash, partition)
    assert fs.fs_stat().block_count == partition // 4096
    assert files_of(fs) == BUNDLE
    # The device can use the whole partition: write past the end of fs.bin, replace, delete.
    big = random.Random(1).randbytes(len(img.data) + 200_000)
    fs.makedirs("data", exist_ok=True)
    with fs.open("data/log.bin", "wb") as f:
        f.write(big)
    with fs.open("main.py", "wb") as f:
        f.write(b"print('updated')\n")
    fs.remove("lib/claw_http.mpy")
    fs.unmount()

    again = files_of(mount_like_micropython(flash, partition))
    expected = {k: v for k, v in BUNDLE.items() if k != "/lib/claw_http.mpy"}
    expected.update({"/main.py": b"print('updated')\n", "/data/log.bin": big})
    assert again == expected


def test_littlefs_is_imported_without_importlib_metadata_and_without_a_trace():
    """fsimage imports littlefs with a stand-in for its version lookup (a fresh process: pytest has
    importlib.metadata loaded): the image is the one the library makes, importlib.metadata is never
    imported, and no stand-in is left in sys.modules for a later import to find."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from clawgen.image import fsimage\n"
        "files = {'/a.txt': b'x' * 5000, '/lib/b.mpy': b'M' * 40}\n"
        "img = fsimage.build_fs_image(files, 1 << 20)\n"
        "assert fsimage.read_fs_image(img.data, 1 << 20) == files\n"
        "import littlefs\n"
        "print(sorted(m for m in ('importlib.metadata', 'importlib_metadata') if m in sys.modules),\n"
        "      hasattr(littlefs, 'LittleFS'), hasattr(littlefs, '__version__'))\n"
        "import importlib.metadata\n"
        "print(importlib.metadata.version('littlefs-python') == fsimage.LITTLEFS_PYTHON)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[] True False", "True"]


def _random_bundle(rng: random.Random) -> dict[str, bytes]:
    files = {}
    for i in range(rng.randrange(1, 30)):
        folder = rng.choice(["", "/lib", "/lib/sub", "/data"])
        files[f"{folder}/f{i}.bin"] = rng.randbytes(rng.choice([0, 5, 128, 129, 4095, 4096, 4097, 9000, 30000]))
    return files


def test_the_block_estimate_is_a_lower_bound_and_the_image_is_filled_at_the_tightest_count():
    """build_fs_image starts from _blocks_at_least (one fill when it is exact): it must never be above
    what littlefs uses, and the image must be the one filled at the smallest block count that holds
    the files, as when the search started from far above."""
    rng = random.Random(7)
    for _ in range(12):
        files = _random_bundle(rng)
        img = fsimage.build_fs_image(files, PARTITION)
        used = img.used // 4096
        assert fsimage._blocks_at_least(files, 4096) <= used
        tight = next(c for c in range(2, 4 * used) if fsimage._try_fill(files, 4096, c) is not None)
        ref = fsimage._try_fill(files, 4096, tight)
        ref.fs_grow(PARTITION // 4096)
        ref.unmount()
        expected = bytes(ref.context.buffer).rstrip(b"\xff")
        assert img.data.rstrip(b"\xff") == expected
        assert fsimage.read_fs_image(img.data, PARTITION) == files
