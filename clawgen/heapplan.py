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
(tests/runtime/test_heap_unix.py checks it for the register-assistant).

What the estimate is compared with (``heap_limit``): MicroPython's ESP32 port starts the GC heap
small (``heap.gc_heap`` in the board file: 64 KiB, 56 KiB on the ESP32) and adds areas taken from
the IDF heap when an allocation fails. Upstream chose the start so that the heap can double once
and still leave enough internal RAM to start Wi-Fi and make one HTTPS request
(ports/esp32/mpconfigport.h): ``heap.gc_heap_grown``. Each TLS connection beyond that one holds
``TLS_CONNECTION_BYTES`` of IDF heap, which the GC heap then cannot have. With PSRAM the heap
grows into PSRAM (``heap.gc_heap_psram``). The build report prints the estimate and the limit and
warns when the estimate exceeds the limit.
"""

from __future__ import annotations

from dataclasses import asdict

from clawgen.model import Board, Plan
from clawgen.records import record

#: GC heap bytes per .mpy byte once a module is imported (bytecode, constants, function objects,
#: interned names, and the fragmentation a module imported during a turn leaves), 32-bit. Measured
#: (bench/runtime_heap_unix.py, smallest heap of boot + one turn without the harness, divided by
#: WORD_RATIO, minus the buffers, over the .mpy bytes of the whole bundle): 1.52 (local-chat), 1.53
#: (sensor-agent), 1.64 (register-assistant) early on 2026-12-04; 1.33, 1.31 and 1.16 after the
#: third round of that day, since the register layer loads by parts and the words of rare paths
#: are in modules imported for one text (docs/runtime.md, "A smaller device, third round"); 1.20,
#: 1.14 and 1.04 after the fourth (the HTTP exchange and the tool dispatcher in the heap only while
#: they run; measured late on 2026-12-04, when 1.5 became 1.3): more of the bundle is never in
#: the heap during a turn. The factor counts every module of the bundle although a turn never has
#: all of them in the heap at once: an upper bound, with room above the largest measured (1.20).
CODE_FACTOR = 1.3
#: A turn's working set beyond the buffers and the history, in bytes (32-bit).
TURN_BYTES = 8192
#: 64-bit unix-port heap figures over 32-bit ESP32 ones for the same program (measured, FACTS.md).
WORD_RATIO = 1.28
#: IDF heap one open TLS connection holds: mbedTLS's record buffers, 16 KB in and 4 KB out, kept for
#: the connection's life (MicroPython's ports/esp32/boards/sdkconfig.base: asymmetric content
#: lengths, no dynamic buffers; FACTS.md).
TLS_CONNECTION_BYTES = 20 * 1024


@record
class HeapEstimate:
    buffers_bytes: int
    history_bytes: int
    code_bytes: int
    turn_bytes: int
    board_heap_bytes: int  # the board's starting GC heap (with PSRAM: what it grows to)
    heap_grown_bytes: int  # what it grows to with room for Wi-Fi and one TLS connection (gc_heap_grown)
    heap_limit_bytes: int  # what the GC heap can grow to, room left for Wi-Fi and TLS (heap_limit)
    tls_connections: int  # TLS connections the device may hold open at once (tls_connections)
    psram: bool

    @property
    def estimate_bytes(self) -> int:
        return self.buffers_bytes + self.history_bytes + self.code_bytes + self.turn_bytes

    @property
    def fits(self) -> bool:
        return self.estimate_bytes <= self.heap_limit_bytes

    def as_json(self) -> dict[str, int | bool]:
        return {**asdict(self), "estimate_bytes": self.estimate_bytes, "fits": self.fits}

    def report(self) -> str:
        """Lines for the build report: the estimate, the limit, and a warning when it exceeds it."""
        kb = 1024
        lines = [f"heap: boot + one turn needs at most about {self.estimate_bytes // kb} KB of GC heap (an upper "
                 f"bound: buffers {self.buffers_bytes // kb} KB, every session's history full "
                 f"{self.history_bytes // kb} KB, all the code {self.code_bytes // kb} KB as .mpy, turn "
                 f"{self.turn_bytes // kb} KB)"]
        if self.psram:
            lines.append(f"heap: with PSRAM the GC heap grows into it, up to {self.heap_limit_bytes // kb} KB")
        elif self.estimate_bytes <= self.board_heap_bytes:
            lines.append(f"heap: the board's GC heap starts at {self.board_heap_bytes // kb} KB: enough")
        else:
            tls = ""
            if self.tls_connections > 1:
                tls = (f"; this build may hold {self.tls_connections} TLS connections open at once, "
                       f"{TLS_CONNECTION_BYTES // kb} KB of IDF heap each, so {self.heap_limit_bytes // kb} KB")
            lines.append(f"heap: the GC heap starts at {self.board_heap_bytes // kb} KB and grows on demand; up to "
                         f"{self.heap_grown_bytes // kb} KB it leaves room for Wi-Fi and one TLS connection "
                         f"(MicroPython's ESP32 port){tls}")
        if not self.fits:
            lines.append(f"warning: the heap estimate exceeds by {(self.estimate_bytes - self.heap_limit_bytes) // kb} "
                         f"KB the {self.heap_limit_bytes // kb} KB the GC heap can grow to"
                         f"{'' if self.psram else ' with room left for Wi-Fi and TLS'}: lower limits.request_bytes "
                         "/ response_bytes / history_messages, drop capabilities or TLS connections, or use a "
                         "board with PSRAM")
        return "\n".join(lines)


def tls_connections(plan: Plan) -> int:
    """TLS connections the device may hold open at once, an upper bound: one per https model
    endpoint (claw_http keeps each open between requests), Telegram's poller and sender, and the
    one web_fetch/web_search keep during a turn."""
    n = sum(1 for m in plan.models if m.tls)
    if plan.telegram is not None and plan.telegram.tls:
        n += 2
    if "web_browsing" in plan.capabilities:
        n += 1
    return n


def heap_limit(board: Board, psram: bool, tls: int = 1) -> int:
    """The GC heap the board can grow to while Wi-Fi and ``tls`` TLS connections still get their
    memory (see the module's docstring); never less than the heap it starts with."""
    if psram:
        return board.heap["gc_heap_psram"]
    return max(board.heap["gc_heap"], board.heap["gc_heap_grown"] - max(0, tls - 1) * TLS_CONNECTION_BYTES)


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
    tls = tls_connections(plan)
    # Every session's history at its bound (the console, Telnet, each Telegram chat: plan.sessions).
    history = plan.sessions * lim.history_messages * lim.history_message_bytes
    return HeapEstimate(buffers_bytes=buffers, history_bytes=history,
                        code_bytes=int(mpy_bytes * CODE_FACTOR), turn_bytes=TURN_BYTES, board_heap_bytes=heap,
                        heap_grown_bytes=plan.board.heap["gc_heap_grown"],
                        heap_limit_bytes=heap_limit(plan.board, plan.psram, tls), tls_connections=tls,
                        psram=plan.psram)
