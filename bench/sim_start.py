"""`clawgen sim` to the first prompt, against a bare start of the same VM.

    python bench/sim_start.py [--example local-chat] [--runs 7]

Measured side by side in one run, each the median of --runs after one warm-up (the warm-up builds the
example into the simulator's cache, as a user's first run does, and fills Python's bytecode cache;
later runs find the build unchanged):

- sim:  `clawgen sim examples/agents/EXAMPLE.yaml --model mock` from the command until the agent's
        "ready:" line is on its stdout (Python start, spec load and up-to-date check, VM start, boot);
- bare: `node` loading the same MicroPython WebAssembly VM and running `print(1)`.

Prints both and their ratio (goal: at most 2x).
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clawgen.sim.install import ensure_installed, node_executable  # noqa: E402

BARE = """\
const { loadMicroPython } = await import(process.argv[2]);
const mp = await loadMicroPython({ heapsize: 65536, linebuffer: true, stdout: (s) => process.stdout.write(s + "\\n") });
mp.runPython("print(1)");
"""


def time_bare(node: str, script: Path, entry: Path) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([node, str(script), entry.as_uri()], capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    assert p.stdout.strip() == "1", p.stdout
    return dt


def time_sim(spec: Path, pycache: Path | None) -> float:
    """Seconds from starting `clawgen sim` to its "ready:" line; then ends the session.

    Python's bytecode cache is on (in `pycache`, outside the tree), as for an installed clawgen: with
    PYTHONDONTWRITEBYTECODE set, every run would compile clawgen's modules from source again."""
    if pycache is None:  # --no-bytecode-cache: as the environment says
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    else:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONPYCACHEPREFIX": str(pycache)})
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "clawgen", "sim", str(spec), "--model", "mock"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert p.stdout is not None and p.stdin is not None
    buf = b""
    deadline = t0 + 120
    while b"\nready:" not in b"\n" + buf:
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            p.kill()
            raise SystemExit(f"no ready line from clawgen sim; output so far: {buf[-500:]!r}")
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            raise SystemExit(f"clawgen sim ended before its ready line: {buf[-500:]!r}")
        buf += chunk
    dt = time.perf_counter() - t0
    p.stdin.write(b"/quit\n")
    p.stdin.close()
    p.wait(timeout=60)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", default="local-chat")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="keep the environment's PYTHONDONTWRITEBYTECODE (clawgen compiled from source each run)")
    args = ap.parse_args()
    spec = REPO / "examples" / "agents" / f"{args.example}.yaml"
    mpvm = ensure_installed()
    entry = mpvm / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
    node = node_executable()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare.mjs"
        script.write_text(BARE)
        time_bare(node, script, entry)
        pycache = None if args.no_bytecode_cache else Path(tmp) / "pycache"
        time_sim(spec, pycache)  # warm-up: builds the example into the simulator's cache, fills pycache
        bare, sim = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            bare.append(time_bare(node, script, entry))
            sim.append(time_sim(spec, pycache))
    b, s = statistics.median(bare), statistics.median(sim)
    print(f"bare VM start (node, load VM, print(1)): {b * 1000:7.1f} ms  (median of {args.runs})")
    cache = "no bytecode cache" if args.no_bytecode_cache else "bytecode cached"
    print(f"clawgen sim {args.example} to 'ready:' ({cache}): {s * 1000:7.1f} ms  (median of {args.runs})")
    # Each round ran both side by side: the median of the rounds' own ratios is the steadier figure
    # on a machine whose speed drifts (the ratio of the medians mixes rounds).
    paired = statistics.median(x / y for x, y in zip(sim, bare, strict=True))
    print(f"ratio sim / bare: {s / b:.2f}x  (median of the rounds' ratios {paired:.2f}x; goal <= 2x; 4.7x before "
          f"this work)")


if __name__ == "__main__":
    main()
