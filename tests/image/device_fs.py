"""The device's view of the app filesystem, for tests: MicroPython's littlefs mount on ESP32 flash."""

from __future__ import annotations

from littlefs import LittleFS, UserContext


class NorFlash(UserContext):
    """An ESP32 flash partition: programming only clears bits, erasing sets a block to 0xFF.

    A write littlefs did not erase first shows up as corrupt data, as on the chip.
    """

    def prog(self, cfg, block: int, off: int, data: bytes) -> int:
        start = block * cfg.block_size + off
        old = int.from_bytes(self.buffer[start:start + len(data)], "little")
        self.buffer[start:start + len(data)] = (old & int.from_bytes(data, "little")).to_bytes(len(data), "little")
        return 0

    def erase(self, cfg, block: int) -> int:
        self.buffer[block * cfg.block_size:(block + 1) * cfg.block_size] = b"\xff" * cfg.block_size
        return 0


def mount_like_micropython(flash: bytearray, partition_size: int) -> LittleFS:
    """VfsLfs2 on esp32.Partition (extmod/vfs_lfsx.c init_config): 4096-byte blocks, block count =
    partition size / 4096, read/prog 32, lookahead 32, cache 128, block_cycles 100; no format."""
    fs = LittleFS(context=NorFlash(buffer=flash), block_size=4096, block_count=partition_size // 4096,
                  read_size=32, prog_size=32, lookahead_size=32, cache_size=128, block_cycles=100, mount=False)
    fs.mount()  # raises on failure; never falls back to formatting
    return fs


def files_of(fs: LittleFS) -> dict[str, bytes]:
    found = {}
    for top, _dirs, names in fs.walk("/"):
        for name in names:
            path = top.rstrip("/") + "/" + name
            with fs.open(path.lstrip("/"), "rb") as f:
                found[path] = f.read()
    return found
