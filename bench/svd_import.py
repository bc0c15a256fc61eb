"""SVD import benchmark: prints the figures the issue asks for.

1. esp32s3.svd: import time vs a bare lxml parse of the same file (target: within 3x).
2. nrf54lm20a.svd (4.4 MB, in the pyocd corpus): time and peak memory (target: < 10 s, < 1 GB).
3. The whole pyocd 0.46.0 corpus: time and peak memory per file.

Usage:  python bench/svd_import.py [--esp32s3 PATH] [--corpus DIR] [--skip-corpus]
PATH defaults to ../shared/svd/esp32s3.svd (beside the checkout) when present. The corpus defaults
to the one the tests download (tests/chips/conftest.py; $CLAWGEN_TEST_CACHE or
~/.cache/clawgen-tests). Times are CPU seconds (process time, best of N) so that a busy machine
skews them less; each corpus file is imported in a fresh child process to measure its own peak
memory (VmHWM, or ru_maxrss off Linux, of that child; it includes the interpreter, ~20 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_CHILD = r"""
import json, resource, sys, time
from clawgen.chips.svd import import_svd
t0 = time.process_time(); w0 = time.perf_counter()
chip, warnings = import_svd(sys.argv[1], "bench")
cpu = time.process_time() - t0; wall = time.perf_counter() - w0
n = 0
for _ in chip.iter_registers():
    n += 1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:  # VmHWM restarts at exec; ru_maxrss may carry the parent's peak over on Linux
    with open("/proc/self/status") as f:
        peak = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    pass
print(json.dumps({"cpu": cpu, "wall": wall, "registers": n, "peripherals": len(chip.peripherals),
                  "warnings": len(warnings), "peak_mb": peak}))
"""


def best_of(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


_ONE_SHOT = r"""
import sys, time
from lxml import etree
from clawgen.chips.svd import import_svd
t = time.process_time()
result = etree.parse(sys.argv[2]) if sys.argv[1] == "parse" else import_svd(sys.argv[2], "bench")
del result
print(time.process_time() - t)
"""


def one_shot(what: str, path: Path) -> float:
    """CPU seconds of one parse or import in a fresh interpreter (what `clawgen svd import` does)."""
    r = subprocess.run([sys.executable, "-c", _ONE_SHOT, what, str(path)], capture_output=True, text=True,
                       cwd=REPO, check=True, timeout=300)
    return float(r.stdout)


def bench_esp32s3(path: Path) -> None:
    from lxml import etree

    from clawgen.chips.svd import import_svd

    # Both include freeing what they built (the parse's tree; the import's tree and nodes), as
    # a user's run would. "Warm": best of 9 back to back in this process (the allocator reuses
    # the memory of the previous run); "cold": best of 5 fresh processes, one run each.
    size = f"esp32s3.svd ({path.stat().st_size / 1e6:.1f} MB)"
    parse = best_of(lambda: etree.parse(str(path)), 9)
    imp = best_of(lambda: import_svd(path, "esp32s3"), 9)
    print(f"{size} warm: lxml parse {parse * 1000:.0f} ms, import {imp * 1000:.0f} ms, "
          f"ratio {imp / parse:.2f}x (target <= 3x)")
    parse = min(one_shot("parse", path) for _ in range(5))
    imp = min(one_shot("import", path) for _ in range(5))
    print(f"{size} cold: lxml parse {parse * 1000:.0f} ms, import {imp * 1000:.0f} ms, "
          f"ratio {imp / parse:.2f}x")


def run_child(path: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, cwd=REPO,
                       timeout=600)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout)


def default_corpus() -> Path | None:
    sys.path.insert(0, str(REPO / "tests" / "chips"))
    try:
        import conftest  # the tests' pinned, checksummed download

        return conftest.obtain_corpus()
    except Exception as e:
        print(f"corpus unavailable: {e}")
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--esp32s3", type=Path, default=REPO.parent / "shared" / "svd" / "esp32s3.svd")
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--skip-corpus", action="store_true")
    args = ap.parse_args()
    if args.esp32s3.is_file():
        bench_esp32s3(args.esp32s3)
    else:
        print(f"{args.esp32s3} not found: pass --esp32s3 PATH to measure the esp32s3 ratio")
    corpus = args.corpus or default_corpus()
    if corpus is None:
        return
    nrf = corpus / "nrf54lm20a.svd"
    if nrf.is_file():
        r = run_child(nrf)
        print(f"nrf54lm20a.svd ({nrf.stat().st_size / 1e6:.1f} MB): {r.get('cpu', 0):.2f} s CPU "
              f"({r.get('wall', 0):.2f} s wall), peak {r.get('peak_mb', 0):.0f} MB, {r.get('registers')} registers "
              f"(targets < 10 s, < 1 GB) {r.get('error', '')}")
    if args.skip_corpus:
        return
    files = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))
    print(f"\n{'file':<28} {'MB':>6} {'cpu s':>7} {'peak MB':>8} {'periph':>6} {'registers':>9} {'warn':>5}")
    total_cpu = 0.0
    worst_peak = 0.0
    t0 = time.perf_counter()
    for p in files:
        r = run_child(p)
        if "error" in r:
            print(f"{p.name:<28} ERROR {r['error']}")
            continue
        total_cpu += r["cpu"]
        worst_peak = max(worst_peak, r["peak_mb"])
        print(f"{p.name:<28} {p.stat().st_size / 1e6:6.1f} {r['cpu']:7.2f} {r['peak_mb']:8.0f} "
              f"{r['peripherals']:6} {r['registers']:9} {r['warnings']:5}")
    print(f"corpus: {len(files)} files, import CPU total {total_cpu:.1f} s, worst peak {worst_peak:.0f} MB, "
          f"wall {time.perf_counter() - t0:.0f} s (incl. one interpreter start per file)")


if __name__ == "__main__":
    main()
