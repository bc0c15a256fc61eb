"""Image stage timings and sizes for a typical bundle (fs.bin, nvs.bin, merged firmware.bin).

Run: python bench/images.py  (builds a synthetic stock base image; needs no network or board)

Also prints, measured side by side: clawgen's own NVS writer against Espressif's generator
(import included, in fresh interpreters: what a build pays), and the whole image stage with the
filesystem-image cache empty and warm.
"""

from __future__ import annotations

import os
import subprocess
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
    _nvs_writers(secrets)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CLAWGEN_CACHE"] = str(Path(tmp) / "cache")  # the filesystem-image cache starts empty
        base = Path(tmp) / "base.bin"
        base.write_bytes(synth.stock_firmware("esp32s3"))
        times = []
        for run in ("empty", "warm"):
            out = Path(tmp) / f"out-{run}"
            out.mkdir()
            t = time.perf_counter()
            build_images(ImageInputs(out_dir=out, board=board, flash_size=8 << 20, files=files, secrets=secrets,
                                     base_firmware=base, spec_name="bench"))
            times.append(time.perf_counter() - t)
            fw = (out / "image" / "firmware.bin").stat().st_size
            print(f"whole image stage, fs cache {run} (fs, nvs, table, merged {fw} bytes) in "
                  f"{1000 * times[-1]:.1f} ms")
        print(f"ratio image stage cache warm / empty: {times[1] / times[0]:.2f}x")


def _nvs_writers(secrets: dict[str, bytes]) -> None:
    """Each writer in a fresh interpreter, import included: what a `clawgen build` process pays."""
    code = ("import sys, time\nt = time.perf_counter()\nfrom clawgen.image import nvs\n"
            "s = {k: bytes.fromhex(v) for k, v in (a.split('=') for a in sys.argv[2:])}\n"
            "nvs.build_nvs_image(s, 0x6000) if sys.argv[1] == 'own' else nvs._generate(s, 0x6000, None)\n"
            "print(time.perf_counter() - t)\n")
    args = [f"{k}={v.hex()}" for k, v in secrets.items()]
    got = {}
    for which in ("own", "espressif"):
        runs = [float(subprocess.run([sys.executable, "-c", code, which, *args], capture_output=True, text=True,
                                     check=True, cwd=Path(__file__).resolve().parent.parent).stdout)
                for _ in range(5)]
        got[which] = sorted(runs)[2]
    print(f"nvs.bin, import included: clawgen's writer {1000 * got['own']:.1f} ms, Espressif's generator "
          f"{1000 * got['espressif']:.1f} ms, ratio {got['espressif'] / got['own']:.1f}x")


if __name__ == "__main__":
    main()
