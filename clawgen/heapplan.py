"""Heap estimate for one agent turn on the device (package stage: it needs the compiled bundle).

The figure is what boot plus one turn keeps live at its peak, on the board's 32-bit MicroPython
with the app installed as .mpy files (bytecode loaded into the GC heap, not frozen in flash):

- buffers: the fixed buffers allocated at boot (claw_buf; request and response share one
  bytearray, and so do tool_args and tool_result: the larger limit of each pair; the tool pair
  shares the request/response one when ``tool_buffers_share_http``) and the UART's line editor
  (claw_console);
- history: every session's bounded history at its bound (plan.sessions x history_messages x
  history_message_bytes: the console, the Telnet client slot and each Telegram chat have one);
- code: the loaded bytecode and its constants, ``CODE_FACTOR`` x the .mpy bytes of the bundle;
- turn: a turn's own working set (parsed response, this turn's messages, a tool's result).

Calibration: bench/runtime_heap_unix.py on the unix-port VM (a 64-bit build, figures divided by
``WORD_RATIO``); boot + one turn of each example works from the estimate up
(tests/runtime/test_heap_unix.py checks it for the register-assistant). The build report prints the estimate and
warns when it exceeds the board's starting GC heap (``heap.gc_heap`` in the board file, or
``gc_heap_psram`` with PSRAM): an ESP32 grows its GC heap into the IDF heap when it can, but that
memory is then missing for TLS buffers and Wi-Fi.
"""

from __future__ import annotations

from dataclasses import asdict

from clawgen.model import Plan
from clawgen.records import record

#: GC heap bytes per .mpy byte once a module is imported (bytecode, constants, function objects,
#: interned names, and the fragmentation a module imported during a turn leaves), 32-bit. Measured
#: (bench/runtime_heap_unix.py, smallest heap of boot + one turn without the harness, divided by
#: WORD_RATIO, minus the buffers, over the .mpy bytes of the whole bundle): 1.52 (local-chat), 1.53
#: (sensor-agent), 1.64 (register-assistant) earlier on 2026-12-04; 1.33, 1.31 and 1.16 after the
#: third round of that day, since the register layer loads by parts and the words of rare paths
#: are in modules imported for one text (docs/runtime.md, "A smaller device, third round"): more
#: of the bundle is never in the heap during a turn. The factor counts every module of the bundle
#: although a turn never has all of them in the heap at once: an upper bound with some room.
CODE_FACTOR = 1.5
#: A turn's working set beyond the buffers and the history, in bytes (32-bit).
TURN_BYTES = 8192
#: 64-bit unix-port heap figures over 32-bit ESP32 ones for the same program (measured, FACTS.md).
WORD_RATIO = 1.28


@record
class HeapEstimate:
    buffers_bytes: int
    history_bytes: int
    code_bytes: int
    turn_bytes: int
    board_heap_bytes: int  # the board's starting GC heap (with PSRAM when the build uses it)

    @property
    def estimate_bytes(self) -> int:
        return self.buffers_bytes + self.history_bytes + self.code_bytes + self.turn_bytes

    @property
    def fits(self) -> bool:
        return self.estimate_bytes <= self.board_heap_bytes

    def as_json(self) -> dict[str, int | bool]:
        return {**asdict(self), "estimate_bytes": self.estimate_bytes, "fits": self.fits}

    def report(self) -> str:
        """Lines for the build report: the estimate, and a warning when it exceeds the heap."""
        kb = 1024
        line = (f"heap: boot + one turn needs at most about {self.estimate_bytes // kb} KB of GC heap (an upper "
                f"bound: buffers {self.buffers_bytes // kb} KB, every session's history full "
                f"{self.history_bytes // kb} KB, all the code {self.code_bytes // kb} KB as .mpy, turn "
                f"{self.turn_bytes // kb} KB); the board starts with {self.board_heap_bytes // kb} KB")
        if self.fits:
            return line
        return (line + "\nwarning: the heap estimate exceeds the board's starting GC heap by "
                f"{(self.estimate_bytes - self.board_heap_bytes) // kb} KB: lower limits.request_bytes / "
                "response_bytes / history_messages, drop capabilities, or use a board with PSRAM")


def tool_buffers_share_http(plan: Plan) -> bool:
    """True when the tool buffers (tool_args, tool_result) share the request/response bytearray
    (claw_buf; the one rule for the device and the estimate). A tool call runs between two model
    requests: the response was parsed into objects before the first call, and the next request is
    built anew after the last one, so nothing of the turn lives in that memory meanwhile. Not when
    something else uses it during a tool call: the MCP server (its HTTP request and reply are in
    the request buffer around claw_tools.call), web_fetch/web_search (they read into the response
    buffer inside the handler), hooks (user code run around a call). And only when the tool buffers
    fit in it."""
    b = plan.limits.buffers()
    return (plan.mcp is None and "web_browsing" not in plan.capabilities and not plan.hooks
            and max(b["tool_args"], b["tool_result"]) <= max(b["request"], b["response"]))


def estimate(plan: Plan, mpy_bytes: int) -> HeapEstimate:
    """The estimate for a build of ``plan`` whose .mpy bundle is ``mpy_bytes`` bytes."""
    lim = plan.limits
    b = lim.buffers()
    shared = ("request", "response", "tool_args", "tool_result")  # two pairs that share memory
    buffers = (sum(v for k, v in b.items() if k not in shared) + max(b["request"], b["response"])
               + (0 if tool_buffers_share_http(plan) else max(b["tool_args"], b["tool_result"])))
    if plan.telegram is not None:  # claw_telegram's own poll and send buffers
        buffers += plan.telegram.poll_bytes + plan.telegram.send_bytes
    heap = plan.board.heap["gc_heap_psram"] if plan.psram else plan.board.heap["gc_heap"]
    # Every session's history at its bound (the console, Telnet, each Telegram chat: plan.sessions).
    history = plan.sessions * lim.history_messages * lim.history_message_bytes
    return HeapEstimate(buffers_bytes=buffers, history_bytes=history,
                        code_bytes=int(mpy_bytes * CODE_FACTOR), turn_bytes=TURN_BYTES, board_heap_bytes=heap)
