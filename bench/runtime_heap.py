"""Heap use of the device runtime, measured on the MicroPython VM (clawgen sim).

    python bench/runtime_heap.py [--turns 50]

Two properties of the VM shape what can be measured (see docs/sim.md):
- its GC heap is a fixed ~200 KB base plus `heapsize`, and it grows the heap instead of failing
  (split heap), so there is no "smallest heapsize that still works" to bisect for;
- it only collects garbage between top-level calls into the VM (gc.collect() inside a running
  program just schedules one). So the runtime is booted by one call and each turn is run as its own
  call (vm.run(steps=...)), with a real collection and a heap reading between them.

Figures (all relative to an empty program on the same VM):
- retained after boot: live heap once boot is done (modules, fixed buffers, config, session).
- turn allocation: bytes allocated while one 3-request, 4-tool-call turn runs with 8 KB
  buffers and no collection inside it (mem_alloc's rise across the turn). That is an upper bound on the turn's peak above the boot heap on a device, where the GC
  also runs inside the turn.
- live heap after each of N turns: must level off once the history is full (no leak).
- bundle: the .mpy bytes of the build.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clawgen.build import build_spec
from clawgen.sim import vm
from clawgen.sim.install import ensure_installed
from clawgen.sim.llmserver import LLMServer, Reply, tool_call

SPEC = """\
name: heapbench
board: esp32s3
system_prompt: You are a test agent on a small device. Keep answers short.
model:
  base_url: http://127.0.0.1:9/v1
  model: bench-model
  read_timeout: 5
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
capabilities: [system]
tools:
  - name: add
    description: Add two integers.
    parameters:
      type: object
      properties: {a: {type: integer}, b: {type: integer}}
      required: [a, b]
    handler: tools/calc.py:add
limits:
  request_bytes: 8192
  response_bytes: 8192
  max_iterations: 3
  max_tool_calls: 4
  # 50 turns of 3 requests: above the default 100 requests an hour, the rate limit would end them.
  model_requests_per_hour: 1000
"""

SMALL_HEAP = 16 * 1024


def build(tmp: Path, server: LLMServer, web: bool = False) -> tuple[Path, dict[str, bytes], dict]:
    (tmp / "agent.yaml").write_text(SPEC.replace("[system]", "[system, web_browsing]") if web else SPEC)
    (tmp / "secrets.yaml").write_text("wifi_ssid: benchnet\nwifi_password: benchpass\n")
    (tmp / "tools").mkdir()
    (tmp / "tools" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    res = build_spec(tmp / "agent.yaml", out_dir=tmp / "build", images=False, model_override=server.base_url)
    return res.out_dir, dict(res.nvs_values), res.info


def script_turn(server: LLMServer) -> None:
    """3 model requests, 4 tool calls, then the answer."""
    server.push(
        Reply.tool_calls(tool_call("add", {"a": 1, "b": 2}, "c1"), tool_call("add", {"a": 3, "b": 4}, "c2")),
        Reply.tool_calls(tool_call("add", {"a": 5, "b": 6}, "c3"), tool_call("add", {"a": 7, "b": 8}, "c4")),
        Reply.text("The sums are 3, 7, 11 and 15. " * 8),
    )


def checked(res: vm.SimResult, what: str) -> vm.SimResult:
    if res.returncode != 0:
        raise SystemExit(f"{what} failed (rc {res.returncode}, {res.reason}):\n{res.stdout}\n{res.stderr}")
    return res


# Boot exactly as main.py does (claw_main.main: buffers, tool modules, runtime, Wi-Fi ...), keeping
# what it hands to its serving loop instead of serving.
BOOT = "import claw_main\nS = []\nclaw_main.serve = lambda *a: S.extend(a)\nclaw_main.main()\n"
TURN = 'claw_main.handle("add some numbers", S[2], S[0], S[1], S[4])'
# Nothing is freed inside a step, so mem_alloc's rise across it is what the turn allocated.
MEASURED_TURN = f"import gc\n_a0 = gc.mem_alloc()\n{TURN}\nprint('TURN_ALLOC', gc.mem_alloc() - _a0)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=50)
    ap.add_argument("--web", action="store_true",
                    help="add the web_browsing capability (ships the default CA certificates)")
    args = ap.parse_args()
    ensure_installed()
    with tempfile.TemporaryDirectory() as d, LLMServer() as server:
        out, secrets, info = build(Path(d), server, args.web)
        empty = checked(vm.run(None, entry="pass", steps=["pass"], heapsize=SMALL_HEAP), "empty program")
        script_turn(server)
        one = checked(vm.run(out, entry=BOOT, steps=["pass", MEASURED_TURN], secrets=secrets, heapsize=SMALL_HEAP),
                      "one turn")
        if "The sums are" not in one.stdout or len(server.requests) != 3:
            raise SystemExit(f"the scripted turn did not run as planned:\n{one.stdout}\n{one.stderr}")
        for _ in range(args.turns):
            script_turn(server)
        many = checked(vm.run(out, entry=BOOT, steps=[TURN] * args.turns, secrets=secrets, timeout=600),
                       "many turns")
        if server.pending:
            raise SystemExit(f"{server.pending} scripted replies unused:\n{many.stdout[-2000:]}\n{many.stderr}")

    base = empty.steps[0]["heap"]
    booted, turned = one.steps[0]["heap"], one.steps[1]["heap"]
    live = [st["heap"]["mem_alloc"] - base["mem_alloc"] for st in many.steps]
    print(f"empty program: GC heap {base['gc_total']} B (heapsize {SMALL_HEAP}), live {base['mem_alloc']} B")
    print(f"retained after boot:      {booted['mem_alloc'] - base['mem_alloc']:>8} B live")
    turn_alloc = int(re.search(r"TURN_ALLOC (\d+)", one.stdout).group(1))
    print(f"turn allocation (3 model requests, 4 tool calls, 8 KB buffers, no GC inside): {turn_alloc:>8} B")
    print(f"live after that turn:     {turned['mem_alloc'] - base['mem_alloc']:>8} B")
    print(f"bundle: {info['bundle']['mpy_bytes']} B of .mpy")
    tail = live[len(live) // 5:]
    print(f"live heap after each of {len(live)} turns (B): {live[:8]} ... {live[-4:]}")
    print(f"  after the first {len(live) - len(tail)} turns: min {min(tail)}, max {max(tail)}, "
          f"spread {max(tail) - min(tail)} B; last minus first of those {live[-1] - tail[0]:+d} B")


if __name__ == "__main__":
    main()
