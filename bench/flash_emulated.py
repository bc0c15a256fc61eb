"""Flash benchmark against the emulated ESP32-S3 ROM bootloader (tests/fakes/esp_rom.py).

    python bench/flash_emulated.py [--size-kib 1024] [--used-kib 256]

Writes one synthetic image (``used`` random bytes, then erased 0xFF, like a filesystem
image) with `clawgen flash`'s code path, three ways: ROM uncompressed, ROM compressed,
flasher stub (compressed, the default). Prints wall time, commands, and the bytes that
crossed the wire (which, divided by the UART rate, is what a real board costs: at
460800 baud about 46 KB/s). Wall times here are host-side only (local TCP socket);
much of it is esptool formatting trace strings for every packet.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clawgen.image.flash import FlashOptions, flash_build, load_flash_plan  # noqa: E402
from tests.fakes.esp_rom import EspRomEmulator  # noqa: E402


def make_build(root: Path, size: int, used: int) -> bytes:
    image = root / "image"
    image.mkdir(parents=True)
    data = random.Random(0).randbytes(used) + b"\xff" * (size - used)
    (image / "fs.bin").write_bytes(data)
    (image / "flash_args.json").write_text(json.dumps({
        "merged": None, "app_only": [{"offset": 0x200000, "file": "fs.bin", "name": "vfs"}],
        "chip": "esp32s3", "flash_size": "8MB"}))
    return data


def run(build: Path, data: bytes, label: str, **options: object) -> None:
    with EspRomEmulator() as rom:
        opts = FlashOptions(port=rom.url, connect_attempts=1, progress=False, **options)  # type: ignore[arg-type]
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # esptool's own log
            flash_build(load_flash_plan(build, app_only=True), opts, echo=lambda _: None)
        elapsed = time.perf_counter() - started
    ok = bytes(rom.flash[0x200000:0x200000 + len(data)]) == data
    wire = rom.bytes_received
    print(f"{label:<20} {elapsed:6.2f} s  {len(rom.commands):5d} commands  {wire / 1024:7.0f} KiB sent  "
          f"~{wire * 10 / 460800:5.1f} s at 460800 baud  {'ok' if ok else 'MISMATCH'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-kib", type=int, default=1024)
    ap.add_argument("--used-kib", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        data = make_build(build, args.size_kib * 1024, args.used_kib * 1024)
        print(f"image: {len(data) // 1024} KiB ({args.used_kib} KiB random, rest 0xFF)")
        run(build, data, "ROM, uncompressed", stub=False, compress=False)
        run(build, data, "ROM, compressed", stub=False, compress=True)
        run(build, data, "stub (default)", stub=True)


if __name__ == "__main__":
    main()
