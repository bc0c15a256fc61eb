"""The build report's heap estimate against what the board's GC heap can grow to (clawgen.heapplan):
the limit per board, with PSRAM and per TLS connection held open; the report's lines and warning;
a new agent (`clawgen init`'s defaults) builds without a heap warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.boards import all_boards, load_board
from clawgen.build import BuildOptions, load_and_plan
from clawgen.cli import cli
from clawgen.heapplan import TLS_CONNECTION_BYTES, HeapEstimate, heap_limit, tls_connections
from tests.build.helpers import SECRETS, project

KB = 1024
# MicroPython 1.29 ports/esp32/mpconfigport.h, MICROPY_GC_INITIAL_HEAP_SIZE per chip.
INITIAL_HEAP = {"esp32": 56 * KB, "esp32s3": 64 * KB, "esp32c3": 64 * KB, "esp32c6": 64 * KB}


@pytest.mark.parametrize("board", sorted(INITIAL_HEAP))
def test_board_heaps_are_the_ports_start_and_one_doubling(board: str) -> None:
    heap = load_board(board).heap
    assert heap["gc_heap"] == INITIAL_HEAP[board]
    assert heap["gc_heap_grown"] == 2 * INITIAL_HEAP[board]


def test_every_board_file_has_the_heap_figures() -> None:
    for b in all_boards():
        assert {"gc_heap", "gc_heap_grown", "gc_heap_psram"} <= b.heap.keys(), b.name
        assert b.heap["gc_heap"] < b.heap["gc_heap_grown"]
        assert b.heap["gc_heap_psram"] == 0 or b.heap["gc_heap_psram"] > b.heap["gc_heap_grown"]


def test_each_tls_connection_beyond_one_takes_from_the_limit() -> None:
    b = load_board("esp32s3")
    assert heap_limit(b, psram=False, tls=0) == heap_limit(b, psram=False, tls=1) == 128 * KB
    assert heap_limit(b, psram=False, tls=2) == 128 * KB - TLS_CONNECTION_BYTES
    assert heap_limit(b, psram=False, tls=3) == 128 * KB - 2 * TLS_CONNECTION_BYTES
    assert heap_limit(b, psram=False, tls=50) == 64 * KB  # never below the heap it starts with
    assert heap_limit(b, psram=True, tls=3) == b.heap["gc_heap_psram"]


_ENDPOINT = "  base_url: {url}\n  model: m\n"


def _spec(model_url: str = "https://api.example.com/v1", extra: str = "", fallback: str | None = None) -> str:
    fb = f"  fallbacks:\n    - base_url: {fallback}\n      model: m2\n" if fallback else ""
    return ("name: tiny\nboard: esp32s3\nmodel:\n" + _ENDPOINT.format(url=model_url) + fb
            + "network:\n  ssid: !secret ssid\n  password: !secret pw\n" + extra)


@pytest.mark.parametrize(("spec", "expected"), [
    (_spec(), 1),
    (_spec("http://192.168.1.20:11434/v1"), 0),
    (_spec(fallback="https://openrouter.ai/api/v1"), 2),
    (_spec("http://192.168.1.20:11434/v1", fallback="https://openrouter.ai/api/v1"), 1),
    (_spec(extra="capabilities: [web_browsing]\n"), 2),
    (_spec(extra="transports:\n  telegram:\n    token: !secret tg\n    allow_chats: [1]\n"), 3),
])
def test_tls_connections_counts_what_may_be_open_at_once(tmp_path: Path, spec: str, expected: int) -> None:
    path = project(tmp_path, spec, SECRETS + "tg: 123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi\n")
    assert tls_connections(load_and_plan(path, BuildOptions()).plan) == expected


def _estimate(code_kb: int, tls: int = 1, psram: bool = False) -> HeapEstimate:
    b = load_board("esp32s3")
    return HeapEstimate(buffers_bytes=12 * KB, history_bytes=20 * KB, code_bytes=code_kb * KB, turn_bytes=8 * KB,
                        board_heap_bytes=b.heap["gc_heap_psram" if psram else "gc_heap"],
                        heap_grown_bytes=b.heap["gc_heap_grown"],
                        heap_limit_bytes=heap_limit(b, psram, tls), tls_connections=tls, psram=psram)


def test_report_within_the_starting_heap() -> None:
    e = _estimate(code_kb=20)  # 60 KB
    assert e.fits
    assert e.report().splitlines()[1] == "heap: the board's GC heap starts at 64 KB: enough"
    assert "warning" not in e.report()


def test_report_when_the_heap_grows_once() -> None:
    e = _estimate(code_kb=56)  # 96 KB: more than the start, within one doubling
    assert e.fits and "warning" not in e.report()
    assert "starts at 64 KB and grows on demand" in e.report() and "up to 128 KB" in e.report()


def test_report_warns_past_the_limit_that_tls_connections_leave() -> None:
    e = _estimate(code_kb=70, tls=3)  # 110 KB against 128 - 2 x 20 = 88 KB
    assert not e.fits
    lines = e.report().splitlines()
    assert "may hold 3 TLS connections open at once, 20 KB of IDF heap each, so 88 KB" in lines[1]
    assert lines[2].startswith("warning: the heap estimate exceeds by 22 KB the 88 KB the GC heap can grow to")
    assert _estimate(code_kb=70, tls=1).fits  # the same agent with one TLS connection fits


def test_report_with_psram() -> None:
    e = _estimate(code_kb=500, psram=True)
    assert e.fits
    assert e.report().splitlines()[1] == "heap: with PSRAM the GC heap grows into it, up to 2048 KB"


@pytest.mark.parametrize("board", sorted(INITIAL_HEAP))
def test_a_new_agent_builds_without_a_heap_warning(tmp_path: Path, board: str) -> None:
    r = CliRunner().invoke(cli, ["init", str(tmp_path), "-y", "--name", "demo", "--board", board])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    b = CliRunner().invoke(cli, ["build", str(tmp_path / "demo.yaml"), "--out", str(out), "--no-images"])
    assert b.exit_code == 0, b.output
    heap = json.loads((out / "build.json").read_text())["heap"]
    assert heap["fits"] is True and heap["estimate_bytes"] <= heap["heap_limit_bytes"]
    assert heap["estimate_bytes"] > heap["board_heap_bytes"]  # (it does need the heap to grow)
    assert "warning" not in b.output.lower(), b.output
