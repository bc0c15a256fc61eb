"""Helpers for the heap tests on the MicroPython unix-port VM: build an example agent against the
scripted model server, script one turn (3 model requests, 4 tool calls), bisect a heapsize."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clawgen.build import BuildResult, build_spec
from clawgen.sim.llmserver import LLMServer, Reply, tool_call
from tests.runtime.telnet_client import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
ANSWER = "All four results are in."
LINE = "check the four things"
REGISTER_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("hw_register_lookup", {"query": "GPIO.OUT"}), ("hw_register_read", {"address": "GPIO.OUT"}),
    ("hw_register_write", {"address": "GPIO.OUT", "value": "0x1"}), ("hw_module_list", {})]


def build_example(name: str, tmp: Path, base_url: str, **opts: Any) -> BuildResult:
    work = tmp / f"{name}-src"
    shutil.copytree(EXAMPLES, work)
    # The device listens for Telnet on a real host port: a fixed port (2323, 23) taken by a device of a
    # test running beside this one would leave this device without its Telnet server, and so with a
    # smaller heap. Each build gets a port of its own.
    spec = work / f"{name}.yaml"
    text, n = re.subn(r"(?m)^  telnet: .*$", f"  telnet: {{port: {free_port()}}}", spec.read_text())
    assert n <= 1, name
    spec.write_text(text)
    return build_spec(work / f"{name}.yaml", out_dir=tmp / f"{name}-build", images=False, force=True,
                      board="esp32s3", model_override=base_url, **opts)


def script_turn(server: LLMServer, calls: list[tuple[str, dict[str, Any]]] = REGISTER_CALLS) -> None:
    c = [tool_call(n, a, f"c{i}") for i, (n, a) in enumerate(calls, 1)]
    server.push(Reply.tool_calls(*c[:2]), Reply.tool_calls(*c[2:]), Reply.text(ANSWER))


def reset(server: LLMServer) -> None:
    with server._lock:
        server._queue.clear()
    server.requests.clear()


def turn_ok(res: Any, server: LLMServer) -> bool:
    """The whole turn ran: 3 requests, the answer shown, no error and no tool out of memory."""
    return (res.returncode == 0 and ANSWER in res.stdout and len(server.requests) == 3
            and "[error]" not in res.stdout and "out of memory" not in res.stdout
            and "MemoryError" not in res.stdout + res.stderr)


def smallest(ok: Callable[[int], bool], lo_kb: int, hi_kb: int) -> int:
    """Smallest KB in (lo_kb, hi_kb] where ok holds (ok must hold at hi_kb, fail at lo_kb), by
    bisection: ok was seen to hold at the result and to fail at the result minus 1 KB. (On a real GC
    success is not monotonic in the heap size, so a re-run at another size may differ; a caller that
    needs the run at the result minus 1 KB keeps it from its own ok.)"""
    assert ok(hi_kb), f"fails even at {hi_kb} KB"
    assert not ok(lo_kb), f"works even at {lo_kb} KB"
    while hi_kb - lo_kb > 1:
        mid = (lo_kb + hi_kb) // 2
        if ok(mid):
            hi_kb = mid
        else:
            lo_kb = mid
    return hi_kb
