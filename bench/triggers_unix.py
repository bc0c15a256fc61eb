"""What triggers and rate limits cost on the MicroPython unix-port VM (claw_triggers, claw_limits).

    python bench/triggers_unix.py [--steps 20000]

One build with four triggers (every, at with Europe/Berlin, on_boot, a register watch). Printed,
all measured in this one run: the .mpy bytes of the two modules; the heap they hold once imported
and started, beyond the runtime's own modules (gc.mem_alloc difference, 64-bit unix build: about 1.28x a 32-bit ESP32's); the time
of one scheduler step() with nothing due against a bare function call (a ratio), and of one
counted model request (claw_limits.request(): a 32-byte slot written to the counter file) against
one step (a ratio). The tests check behaviour, not times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clawgen.sim.unixvm import UnixDevice  # noqa: E402
from tests.runtime.agent_builds import build, make_spec  # noqa: E402

TRIGGERS = [
    {"name": "beat", "prompt": "Heartbeat.", "to": "log", "every": "30m"},
    {"name": "morning", "prompt": "Report.", "to": "console", "at": "08:00", "timezone": "Europe/Berlin"},
    {"name": "hello", "prompt": "Booted.", "to": "console", "on_boot": True},
    {"name": "door", "prompt": "Door {value}.", "to": "log",
     "watch": {"field": "GPIO.IN.DATA_NEXT[4]", "when": "== 1", "interval": "1s", "debounce": "200ms"}},
]

PROG = """
import gc, time
import claw_config, claw_log, claw_loop, clawhw, clawreg  # in the runtime anyway (clawreg: with a watch)
clawreg.read(0x6000403C)  # (its table file opened, as after any register read)
gc.collect()
a0 = gc.mem_alloc()
import claw_limits
claw_limits.status()  # (its record loaded)
gc.collect()
a1 = gc.mem_alloc()
import claw_triggers as T
T.start()
T.step(lambda to: False, lambda *a: None)  # the on_boot run, the watch's baseline
gc.collect()
print("HEAP", a1 - a0, gc.mem_alloc() - a1)
busy = lambda to: False
def run(*a):
    pass
N = %d
def nop(b, r):
    return 0
t0 = time.ticks_us()
for _ in range(N):
    nop(busy, run)
base = time.ticks_diff(time.ticks_us(), t0)
t0 = time.ticks_us()
for _ in range(N):
    T.step(busy, run)
step = time.ticks_diff(time.ticks_us(), t0)
M = 200
t0 = time.ticks_us()
for _ in range(M):
    claw_limits.request()
req = time.ticks_diff(time.ticks_us(), t0)
print("TIMES", base, step, req, N, M)
print("COUNTED", claw_limits.status())
"""

LONE = """
import gc
import claw_config, claw_log, claw_loop
gc.collect()
a0 = gc.mem_alloc()
import claw_limits
claw_limits.request()
gc.collect()
print("HEAP", gc.mem_alloc() - a0)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        spec = make_spec("http://127.0.0.1:9/v1", tools=[], capabilities=[], triggers=TRIGGERS,
                         limits={"model_requests_per_hour": 65535, "model_requests_per_day": 65535})
        out = build(Path(d) / "b", spec)
        sizes = {n: (out / "mpy" / f"{n}.mpy").stat().st_size for n in ("claw_triggers", "claw_limits")}
        with UnixDevice(out, workdir=Path(d) / "dev", modules={"prog": PROG % args.steps}) as dev:
            res = dev.run(entry="import prog", timeout=120)
        if res.returncode != 0:
            raise SystemExit(res.stdout + res.stderr)
        heap_l, heap_t = (int(x) for x in res.stdout.split("HEAP ")[1].split()[:2])
        plain = build(Path(d) / "p", make_spec("http://127.0.0.1:9/v1", tools=[], capabilities=[]))
        lone_mpy = (plain / "mpy" / "claw_limits.mpy").stat().st_size
        with UnixDevice(plain, workdir=Path(d) / "dev2", modules={"prog": LONE}) as dev:
            res2 = dev.run(entry="import prog", timeout=120)
        if res2.returncode != 0:
            raise SystemExit(res2.stdout + res2.stderr)
        lone_heap = int(res2.stdout.split("HEAP ")[1].split()[0])
        base, step, req, n, m = (int(x) for x in res.stdout.split("TIMES ")[1].split()[:5])
    print(f"claw_limits alone (an agent without triggers: request limits only): {lone_mpy} B .mpy, {lone_heap} B heap")
    print(f".mpy: claw_triggers {sizes['claw_triggers']} B, claw_limits {sizes['claw_limits']} B")
    print(f"with triggers, heap held after import (64-bit unix build): claw_limits {heap_l} B; claw_triggers "
          f"{heap_t} B with 4 triggers, started")
    print(res.stdout.split("COUNTED ")[1].splitlines()[0])
    print(f"step() with nothing due: {step / n:.1f} us, {step / max(base, 1):.1f}x a bare call ({base / n:.2f} us)")
    print(f"counted model request (file slot written): {req / m:.1f} us, {req / m / (step / n):.1f}x a step()")


if __name__ == "__main__":
    main()
