"""Allocation of heavy agent turns on the MicroPython VM (clawgen sim).

    python bench/runtime_heavy_turn.py [--turns 6] [--answer-bytes 12000]

Each turn: 3 model requests (two with 4 tool calls each, then a long text answer) with 16 KB
request/response buffers and content_bytes 4096. The VM does not collect garbage inside a running
program (docs/sim.md), so the rise of gc.mem_alloc() across a turn is the total it allocated: an
upper bound of the turn's peak above the boot heap (budget: 48 KB on an ESP32-S3).
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clawgen.sim import vm
from clawgen.sim.llmserver import LLMServer, Reply
from tests.runtime.agent_builds import build, make_spec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--answer-bytes", type=int, default=12000)
    args = ap.parse_args()
    with LLMServer() as srv, tempfile.TemporaryDirectory() as tmp:
        out = build(Path(tmp), make_spec(srv.base_url, limits={
            "request_bytes": 16384, "response_bytes": 16384, "content_bytes": 4096}))
        lines = ["/status"]
        for i in range(args.turns):
            for _ in range(2):
                srv.push(Reply.tool_calls(*[("add", {"a": i, "b": k}) for k in range(4)], content="thinking " * 20))
            srv.push(Reply.text(f"answer {i} " + "y" * args.answer_bytes))
            lines += [f"turn {i}: three requests with four tool calls each", "/status"]
        res = vm.run(out, stdin=[*lines, "/quit"], timeout=300)
        if res.returncode != 0:
            sys.exit(f"run failed: {res.stderr[-2000:]}")
    allocs = [int(x) for x in re.findall(r"allocated (\d+)", res.stdout)]
    per_turn = [b - a for a, b in itertools.pairwise(allocs)]
    print(f"answer {args.answer_bytes} B, 3 requests, 8 tool calls, 16 KB buffers")
    print(f"allocated per turn (B, includes one /status): {per_turn}")
    print(f"max {max(per_turn)} B of the 49152-B turn budget")


if __name__ == "__main__":
    main()
