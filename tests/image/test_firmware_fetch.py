"""Base firmware for the quick start: `clawgen flash` on a build without one says exactly what to do,
and `clawgen firmware fetch` downloads a release (here from a local HTTP server on 127.0.0.1 through
--url / $CLAWGEN_FIRMWARE_URL), checks it and caches it; a refused or failed download caches nothing.
After the fetch, the next build merges and the flash step writes the board (the emulated ROM)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from clawgen.boards import load_board
from clawgen.cli import cli
from clawgen.diagnostics import DiagnosticError
from clawgen.image.basefw import fetch_firmware
from tests.fakes.esp_rom import MB, EspRomEmulator
from tests.image import synth

SPEC = """\
name: fetch-agent
board: esp32s3
system_prompt: Answer in one sentence.
model:
  base_url: http://127.0.0.1:9/v1
  model: small-model
transports:
  uart: true
"""
GOOD = synth.stock_firmware("esp32s3")
# One byte of the application changed: its checksum/SHA-256 no longer hold.
CORRUPT = GOOD[:0x10000 + 0x200] + bytes([GOOD[0x10000 + 0x200] ^ 0x55]) + GOOD[0x10000 + 0x201:]


class Files(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    short: ClassVar[set[str]] = set()  # paths whose body is cut short of its Content-Length
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if self.path == "/fw/escape.bin":  # a reason phrase that would drive the user's terminal
            self.send_error(403, "Forbidden\x1b]0;owned\x07\x1b[2J")
            return
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if self.path in self.short else body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Files.files = {"/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin": GOOD, "/fw/corrupt.bin": CORRUPT,
                   "/fw/c3.bin": synth.stock_firmware("esp32c3"),
                   "/fw/old.bin": synth.stock_firmware("esp32s3", banner="MicroPython v1.28.0 on 2026-04-06"),
                   "/fw/page.html": b"<!DOCTYPE html><html>download page</html>", "/fw/short.bin": GOOD}
    Files.short = {"/fw/short.bin"}
    Files.requests = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLAWGEN_FIRMWARE_URL", raising=False)
    return tmp_path / "cache" / "firmware" / "ESP32_GENERIC_S3-v1.29.0.bin"


def _cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


def _errors(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if "error:" in ln]


def test_download_with_url_option_checks_and_caches(server: str, cache: Path) -> None:
    code, out = _cli("firmware", "fetch", "--board", "esp32s3", "--url", f"{server}/fw/{{board_id}}-20261101-v{{version}}.bin")
    assert code == 0, out
    assert Files.requests == ["/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin"]
    assert cache.read_bytes() == GOOD
    assert f"cached MicroPython v1.29.0 (built 2026-11-01) for esp32s3 at {cache}" in out


def test_download_url_from_environment(server: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_FIRMWARE_URL", f"{server}/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin")
    code, out = _cli("firmware", "fetch", "--board", "esp32s3")
    assert code == 0, out
    assert cache.read_bytes() == GOOD


@pytest.mark.parametrize(("path", "code", "message"), [
    ("/fw/corrupt.bin", 2, "the application image"),  # checksum or SHA-256 of the app
    ("/fw/c3.bin", 2, "base firmware is for esp32c3"),
    ("/fw/old.bin", 2, "base firmware is MicroPython v1.28.0"),
    ("/fw/page.html", 2, "not an ESP firmware image"),
    ("/fw/missing.bin", 1, "HTTP 404 Not Found"),
    ("/fw/escape.bin", 1, "HTTP 403 Forbidden?]0;owned??[2J"),
    ("/fw/short.bin", 1, "the download stopped"),
])
def test_refused_or_failed_download_caches_nothing(server: str, cache: Path, path: str, code: int,
                                                     message: str) -> None:
    got, out = _cli("firmware", "fetch", "--board", "esp32s3", "--url", server + path)
    assert got == code, out
    assert message in _errors(out)[0], out
    assert not cache.parent.exists() or not any(cache.parent.iterdir())
    if code == 1:  # a failed download keeps the offline instructions
        assert "nothing was cached" in out and "https://micropython.org/download/ESP32_GENERIC_S3/" in out
        assert "clawgen firmware fetch --board esp32s3 --file" in out


def test_failed_download_keeps_the_previous_cache(server: str, cache: Path) -> None:
    assert _cli("firmware", "fetch", "--board", "esp32s3", "--url", f"{server}/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin")[0] == 0
    assert _cli("firmware", "fetch", "--board", "esp32s3", "--url", f"{server}/fw/corrupt.bin")[0] == 2
    assert _cli("firmware", "fetch", "--board", "esp32s3", "--url", f"{server}/fw/missing.bin")[0] == 1
    assert cache.read_bytes() == GOOD
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]


def test_pinned_sha256_refuses_another_release(server: str, cache: Path) -> None:
    import hashlib

    board = dict(load_board("esp32s3").data)
    board["firmware"] = {**board["firmware"], "sha256": hashlib.sha256(b"the real release").hexdigest()}
    with pytest.raises(DiagnosticError) as e:
        fetch_firmware(board, url=f"{server}/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin")
    assert "sha256 is " + hashlib.sha256(GOOD).hexdigest() in str(e.value)
    assert not cache.exists()
    board["firmware"]["sha256"] = hashlib.sha256(GOOD).hexdigest()
    path, _info, digest = fetch_firmware(board, url=f"{server}/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin")
    assert path == cache and cache.read_bytes() == GOOD and digest == board["firmware"]["sha256"]


def test_file_and_url_together_are_refused(tmp_path: Path, cache: Path) -> None:
    code, out = _cli("firmware", "fetch", "--board", "esp32s3", "--file", str(tmp_path / "x.bin"), "--url",
                     "http://127.0.0.1:9/x.bin")
    assert code == 1 and "--file and --url exclude each other" in out


def test_quick_start_flash_says_what_to_do_then_works_after_fetch(tmp_path: Path, server: str, cache: Path) -> None:
    """The README's quick start: build without a base firmware, flash -> one line saying which file,
    from where, the import command, and to build again; after that the flash writes the board."""
    (tmp_path / "agent.yaml").write_text(SPEC)
    out = tmp_path / "out"
    assert _cli("build", str(tmp_path / "agent.yaml"), "--out", str(out))[0] == 0
    with EspRomEmulator(flash_size=8 * MB) as rom:
        code, text = _cli("flash", str(out), "--port", rom.url, "--connect-attempts", "1")
        assert rom.commands == []  # refused before touching the board
    assert code == 2
    (line,) = _errors(text)
    assert line.startswith(f"{out / 'image' / 'flash_args.json'}:1:1: error:")
    assert "no stock MicroPython v1.29.0 base firmware for esp32s3" in line
    assert "https://micropython.org/download/ESP32_GENERIC_S3/" in line
    assert "`clawgen firmware fetch --board esp32s3 --file <the downloaded .bin>`" in line
    assert "then build again" in line and "--app-only" in line

    # Follow it (downloading instead of importing), build again, flash.
    assert _cli("firmware", "fetch", "--board", "esp32s3", "--url", f"{server}/fw/ESP32_GENERIC_S3-20261101-v1.29.0.bin")[0] == 0
    assert _cli("build", str(tmp_path / "agent.yaml"), "--out", str(out))[0] == 0
    firmware = (out / "image" / "firmware.bin").read_bytes()
    with EspRomEmulator(flash_size=8 * MB) as rom:
        code, text = _cli("flash", str(out), "--port", rom.url, "--connect-attempts", "1")
    assert code == 0, text
    assert bytes(rom.flash[:len(firmware)]) == firmware
