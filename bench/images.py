"""Image stage timings and sizes for a typical bundle (fs.bin, nvs.bin, merged firmware.bin).

Run: python bench/images.py  (builds a synthetic stock base image; needs no network or board)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clawgen.boards import load_board
from clawgen.image import fsimage, nvs
from clawgen.image.stage import ImageInputs, build_images
from tests.image import synth


def main() -> None:
    board = load_board("esp32s3").data
    files = {f"/lib/claw_m{i}.mpy": os.urandom(3000) for i in range(16)}
    files.update({"/boot.py": b"#", "/main.py": b"import claw_m0", "/clawgen.json": b"{}" * 200})
    secrets = {"llm_key": os.urandom(48), "wifi_pw": os.urandom(16)}
    t = time.perf_counter()
    img = fsimage.build_fs_image(files, 6 << 20)
    print(f"fs.bin: {len(files)} files, {sum(map(len, files.values()))} bytes -> image {len(img.data)} bytes "
          f"(used {img.used}) in {1000 * (time.perf_counter() - t):.1f} ms")
    t = time.perf_counter()
    nvs.build_nvs_image(secrets, 0x6000)
    print(f"nvs.bin: {len(secrets)} secrets in {1000 * (time.perf_counter() - t):.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.bin"
        base.write_bytes(synth.stock_firmware("esp32s3"))
        out = Path(tmp) / "out"
        out.mkdir()
        t = time.perf_counter()
        build_images(ImageInputs(out_dir=out, board=board, flash_size=8 << 20, files=files, secrets=secrets,
                                 base_firmware=base, spec_name="bench"))
        fw = (out / "image" / "firmware.bin").stat().st_size
        print(f"whole image stage (fs, nvs, table, merged {fw} bytes) in {1000 * (time.perf_counter() - t):.1f} ms")


if __name__ == "__main__":
    main()
