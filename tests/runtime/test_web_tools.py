"""web_fetch and web_search on the MicroPython unix-port VM (real sockets) against a local HTTP
server: text extraction and the byte cap."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec

PAGE = (b"<html><head><style>p {color: red}</style><script>var x = '<b>';</script></head>"
        b"<body><h1>Greenhouse</h1><p>Temperature   is 23 C.</p>" + b"<p>filler</p>" * 300 + b"</body></html>")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE if self.path == "/page" else b"short text"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_web_fetch_text_and_cap(tmp_path: Path, llm_server, unix_run, web_server):
    out = build(tmp_path, make_spec(llm_server.base_url, capabilities=["web_browsing"], tools=[],
                                    web={"fetch_max_bytes": 1024}, limits={"tool_result_bytes": 4096}))
    llm_server.push(Reply.tool_calls(("web_fetch", {"url": web_server + "/page"}),
                                     ("web_fetch", {"url": web_server + "/small"}),
                                     ("web_fetch", {"url": "ftp://example.com/x"})),
                    Reply.text("fetched"))
    res = unix_run(out, stdin=["fetch it", "/quit"])
    assert res.returncode == 0, res.stderr
    page, small, bad = [m["content"] for m in llm_server.requests[1].messages if m["role"] == "tool"]
    assert page.startswith("HTTP 200\nGreenhouse Temperature is 23 C. filler filler")
    assert "color" not in page and "var x" not in page
    assert page.endswith("...[truncated at 1024 bytes, web.fetch_max_bytes]")
    assert small == "HTTP 200\nshort text"
    assert bad == "error: only http:// and https:// URLs can be fetched"
    assert "fetched" in res.stdout


class _Search(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        _Search.seen.append((self.path, self.headers.get("X-Subscription-Token")))
        body = json.dumps({"type": "search", "web": {"results": [
            {"title": "MicroPython", "url": "https://micropython.org", "description": "Python for microcontrollers",
             "profile": {"name": "x"}},
            {"title": "ESP32", "url": "https://espressif.com", "description": "Wi-Fi SoC"}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _search_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A local search API answering with ``handler``; yields the device's SEARCH_URL for it."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/res/v1/web/search"
    finally:
        srv.shutdown()
        srv.server_close()


def _search_run(tmp_path: Path, unix_run, url: str, program: str):  # type: ignore[no-untyped-def]
    """``program`` on the unix VM in a web_browsing build, claw_webtools (as W) pointed at ``url``."""
    out = build(tmp_path, make_spec("http://127.0.0.1:9/v1", capabilities=["web_browsing"], tools=[]))
    prog = f"import json\nimport claw_webtools as W\nW.SEARCH_URL = {url!r}\n" + program
    res = unix_run(out, modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_web_search_request_and_summary(tmp_path: Path, unix_run):
    with _search_server(_Search) as url:
        res = _search_run(tmp_path, unix_run, url, "print(W.web_search('x'))\n"
                          "W.set_search_key(b'brave-test-key')\n"
                          "print('---')\n"
                          "print(W.web_search('esp32 & micropython/ü'))\n")
    no_key, results = res.stdout.split("---\n")
    assert "error" not in results, res.stdout + res.stderr + repr(_Search.seen)
    assert no_key.strip() == "error: no Brave Search API key configured (web.brave_api_key)"
    assert results.strip() == ("MicroPython\nhttps://micropython.org\nPython for microcontrollers\n\n"
                               "ESP32\nhttps://espressif.com\nWi-Fi SoC")
    path, token = _Search.seen[-1]
    assert path.startswith("/res/v1/web/search?q=esp32+%26+micropython%2F%C3%BC&count=5")
    assert token == "brave-test-key"


ODD_SEARCH_BODIES = [b"[]", b'"x"', b"null", b'{"web": []}', b'{"web": {"results": {}}}',
                     b'{"web": {"results": "abc"}}', b'{"web": {"results": [1, "x", null, []]}}',
                     b'{"web": {"results": [{"title": 5, "url": null, "description": ["d"]}]}}',
                     b'{"web": {"results": [{"title": "' + b"t" * 3000 + b'"}]}}', b'{"web": {"res', b"\xff\xfe"]


class _OddSearch(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ODD_SEARCH_BODIES[int(self.path.split("q=", 1)[1].split("&", 1)[0])]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_web_search_answers_of_another_shape(tmp_path: Path, unix_run):
    # The search API's JSON of another shape raised KeyError, TypeError or AttributeError out of
    # the tool (when the model calls it, the dispatcher catches that: "error: KeyError ..."); now
    # each is a line of the tool's own.
    with _search_server(_OddSearch) as url:
        res = _search_run(tmp_path, unix_run, url, "W.set_search_key(b'k')\n"
                          f"for i in range({len(ODD_SEARCH_BODIES)}):\n"
                          "    print(json.dumps(W.web_search(str(i))))\n")
    got = [json.loads(line) for line in res.stdout.strip().splitlines()]
    malformed = "error: search: malformed response"
    assert got == [malformed] * 6 + ["no results", "5\nNone\n['d']", "t" * 3000 + "\n\n", malformed, malformed]
