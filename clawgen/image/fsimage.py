"""The app filesystem image: LittleFS v2, laid out as MicroPython's ESP32 port mounts it.

Facts from MicroPython's source (ports/esp32, extmod/vfs_lfsx.c, lib/littlefs, v1.29):
- the "vfs" partition is an esp32.Partition with 4096-byte blocks (NATIVE_BLOCK_SIZE_BYTES),
  block count = partition size / 4096;
- _boot.py mounts it with vfs.mount(bdev, "/") (autodetect -> VfsLfs2) and only on OSError
  runs inisetup.setup(), which reformats when the first block is blank and otherwise loops
  printing "The filesystem appears to be corrupted" - so the image must mount as is;
- VfsLfs2 defaults: read_size 32, prog_size 32, lookahead 32, block_cycles 100, cache_size
  128 (so inline files up to 128 bytes), name_max 255 (LFS2_NAME_MAX), littlefs 2.11 writing
  on-disk version 2.1.
Mount compatibility depends on block size, block count and the on-disk version/limits in
the superblock, which is why those are pinned here rather than left to library defaults.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawgen.diagnostics import UsageError
from clawgen.records import record

if TYPE_CHECKING:
    from littlefs import LittleFS, UserContext

READ_SIZE = 32
PROG_SIZE = 32
LOOKAHEAD_SIZE = 32
CACHE_SIZE = 128  # vfs_lfsx.c: min(block_size, 4 * max(read_size, prog_size)); sets inline_max too
BLOCK_CYCLES = 100
NAME_MAX = 255
DISK_VERSION = 0x00020001  # littlefs on-disk 2.1, what MicroPython's lfs2 v2.11 writes
LITTLEFS_PYTHON = "0.19.0"  # the pinned littlefs-python (pyproject.toml)
# What an image depends on besides its files: this code (its parameters) and the library version.
# Image caches are keyed by it, so littlefs need not be imported to know a cached image is valid.
FORMAT_ID = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16] + "-" + LITTLEFS_PYTHON


@record
class FsImage:
    data: bytes  # trimmed after the last programmed block; the rest of the partition may hold anything
    capacity: int  # partition size in bytes
    used: int  # bytes of blocks littlefs has allocated


class FsOverflowError(Exception):
    def __init__(self, needed: int, capacity: int):
        super().__init__(f"needs {needed} bytes, has {capacity}")
        self.needed = needed
        self.capacity = capacity


def _context(size: int) -> UserContext:
    """littlefs-python's in-memory block device without its per-call debug logging (which formats
    every block read and written, a third of a fill's time); same buffer, same bytes. The erased
    buffer is made here: UserContext(buffsize=) builds it from a list of one int per byte (a
    millisecond for a bundle's image)."""
    return _quiet_context_class()(buffer=bytearray(b"\xff") * size)


@functools.cache
def _quiet_context_class() -> type[UserContext]:
    """The quiet block device's class, made once per process (a fill that does not fit is tried again)."""
    UserContext = _littlefs().UserContext

    class _Quiet(UserContext):
        def read(self, cfg: Any, block: int, off: int, size: int) -> bytearray:
            start = block * cfg.block_size + off
            return self.buffer[start:start + size]

        def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
            start = block * cfg.block_size + off
            self.buffer[start:start + len(data)] = data
            return 0

        def erase(self, cfg: Any, block: int) -> int:
            start = block * cfg.block_size
            self.buffer[start:start + cfg.block_size] = b"\xff" * cfg.block_size
            return 0

    return _Quiet


def _littlefs() -> types.ModuleType:
    """The littlefs package. Its ``__init__`` asks importlib.metadata for its own version string
    (``littlefs.__version__``, which clawgen never reads: LITTLEFS_PYTHON pins the version), and
    importing importlib.metadata to scan the installed distributions takes as long as the rest of
    the image stage of an incremental build. When importlib.metadata is not loaded yet, the package
    is imported with a stand-in whose ``version()`` says "not found", a case littlefs handles itself
    (it then has no ``__version__``); the stand-in is removed right after, so no other import sees it."""
    loaded = sys.modules.get("littlefs")
    if loaded is not None:
        return loaded
    if "importlib.metadata" in sys.modules or "importlib_metadata" in sys.modules:
        import littlefs

        return littlefs
    stand_in = types.ModuleType("importlib_metadata", "clawgen's stand-in while littlefs is imported")

    class PackageNotFoundError(ModuleNotFoundError):
        pass

    def version(name: str) -> str:
        raise PackageNotFoundError(name)

    stand_in.PackageNotFoundError = PackageNotFoundError  # type: ignore[attr-defined]
    stand_in.version = version  # type: ignore[attr-defined]
    sys.modules["importlib_metadata"] = stand_in
    try:
        import littlefs
    finally:
        if sys.modules.get("importlib_metadata") is stand_in:
            del sys.modules["importlib_metadata"]
    return littlefs


def _new_fs(block_size: int, block_count: int, mount: bool) -> LittleFS:
    return _littlefs().LittleFS(context=_context(block_size * block_count), block_size=block_size,
                    block_count=block_count, read_size=READ_SIZE, prog_size=PROG_SIZE,
                    lookahead_size=LOOKAHEAD_SIZE, block_cycles=BLOCK_CYCLES, cache_size=CACHE_SIZE,
                    name_max=NAME_MAX, disk_version=DISK_VERSION, mount=mount)


def check_device_path(path: str) -> str:
    """'/lib/x.mpy' -> 'lib/x.mpy'; refuses relative, empty or '..' components."""
    if not path.startswith("/"):
        raise UsageError(f"device file path {path!r} must be absolute (start with '/')")
    parts = path[1:].split("/")
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"device file path {path!r} is not a plain path")
    if any(len(p.encode()) > NAME_MAX for p in parts):
        raise UsageError(f"device file path {path!r} has a name longer than {NAME_MAX} bytes")
    return "/".join(parts)


def _fill(files: dict[str, bytes], block_size: int, block_count: int) -> LittleFS:
    fs = _new_fs(block_size, block_count, mount=False)
    fs.format()
    fs.mount()
    # Sorted so the same bundle always gives the same image.
    made: set[str] = set()  # a directory is made once (littlefs reads its metadata to refuse a second mkdir)
    for path in sorted(files):
        rel = check_device_path(path)
        parent = rel.rpartition("/")[0]
        if parent and parent not in made:
            fs.makedirs(parent, exist_ok=True)
            made.add(parent)
        with fs.open(rel, "wb") as f:
            f.write(files[path])
    return fs


def _try_fill(files: dict[str, bytes], block_size: int, block_count: int) -> LittleFS | None:
    """The filled filesystem, or None when the files do not fit in `block_count` blocks."""
    LittleFSError = _littlefs().LittleFSError
    try:
        return _fill(files, block_size, block_count)
    except LittleFSError as e:
        if e.code != LittleFSError.Error.LFS_ERR_NOSPC:
            raise
        return None


def build_fs_image(files: dict[str, bytes], partition_size: int, block_size: int = 4096) -> FsImage:
    """Format a LittleFS v2 image for a partition of `partition_size` bytes holding `files`."""
    if partition_size % block_size:
        raise UsageError(f"filesystem partition size {partition_size:#x} is not a multiple of "
                         f"the {block_size}-byte block")
    full_count = partition_size // block_size
    # littlefs starts allocating at a pseudo-random block, which would spread a small bundle
    # over megabytes. So fill the smallest filesystem that holds the files, then grow it
    # (lfs_fs_grow rewrites the superblock's block count) to the partition: the files stay
    # packed at the front and the image can be trimmed to little more than the used blocks.
    # Start from a lower bound of the blocks needed (usually exact: one fill) and grow in small steps.
    count = min(full_count, max(2, _blocks_at_least(files, block_size)))
    fs = _try_fill(files, block_size, count)
    while fs is None:
        if count >= full_count:
            raise FsOverflowError(_needed_bytes(files, block_size, count), partition_size)
        count = min(full_count, count + max(1, count // 16))
        fs = _try_fill(files, block_size, count)
    # Refill with just the blocks that were used (a little more if that is too tight): the
    # allocator then has nowhere to wander. Each try costs a fill, so only a few.
    used_blocks = fs.used_block_count  # (littlefs walks the whole filesystem to count them)
    for tight in range(used_blocks, min(count, used_blocks + 3)):
        smaller = _try_fill(files, block_size, tight)
        if smaller is not None:
            count, fs = tight, smaller
            used_blocks = fs.used_block_count
            break
    used = used_blocks * block_size
    if count < full_count:
        fs.fs_grow(full_count)
    fs.unmount()
    buf = bytes(fs.context.buffer)
    # The erased tail need not be flashed: littlefs never reads a block it has not allocated.
    end = len(buf.rstrip(b"\xff"))
    end = -(-end // block_size) * block_size
    return FsImage(buf[:end], partition_size, used)


def _blocks_at_least(files: dict[str, bytes], block_size: int) -> int:
    """A lower bound of the blocks littlefs allocates for ``files``: a metadata pair per directory
    (the root's is the superblock's) and the data blocks of every file too big to be inlined in its
    directory's metadata (CACHE_SIZE bytes)."""
    dirs = {""} | {p.rpartition("/")[0] for p in files}
    for d in list(dirs):  # the parents of nested directories
        while d:
            d = d.rpartition("/")[0]
            dirs.add(d)
    return 2 * len(dirs) + sum(-(-len(v) // block_size) for v in files.values() if len(v) > CACHE_SIZE)


def _needed_bytes(files: dict[str, bytes], block_size: int, block_count: int) -> int:
    """How big the partition would have to be (for the overflow message)."""
    LittleFSError = _littlefs().LittleFSError
    count = block_count
    while True:
        count *= 2
        try:
            fs = _fill(files, block_size, count)
        except LittleFSError as e:
            if e.code != LittleFSError.Error.LFS_ERR_NOSPC or count > (1 << 20):
                raise
            continue
        return fs.used_block_count * block_size


def read_fs_image(data: bytes, partition_size: int, block_size: int = 4096) -> dict[str, bytes]:
    """Mount an image (as the device would, blank tail included) and return every file."""
    buf = bytearray(data) + bytearray(b"\xff" * (partition_size - len(data)))
    fs = _new_fs(block_size, partition_size // block_size, mount=False)
    fs.context.buffer[:] = buf
    fs.mount()
    out: dict[str, bytes] = {}
    for top, _dirs, names in fs.walk("/"):
        for name in names:
            path = (top.rstrip("/") + "/" + name) if top != "/" else "/" + name
            with fs.open(path.lstrip("/"), "rb") as f:
                out[path] = f.read()
    fs.unmount()
    return out
