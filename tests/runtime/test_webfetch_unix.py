"""web_fetch (claw_webtools -> claw_http) on the MicroPython unix-port VM against a scripted HTTP
server on 127.0.0.1: every framing, a server that keeps the connection open although asked to
close it, replies in pieces, one byte per 100 ms, a stall mid-body, peer close and oversize bodies.

web_fetch keeps its connection for the next fetch to the same server within a turn, and closes it
when the turn ends (a board keeps no idle socket or TLS session for a server it may never use again)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.httpscript import (
    CLOSE,
    RESET,
    Drip,
    Pause,
    ScriptServer,
    Stall,
    chunked,
    response,
)

PROG = """
import json
import claw_webtools as W
W.READ_TIMEOUT = 1
for url in %r:
    print(json.dumps(W.web_fetch(url)))
"""


@pytest.fixture(scope="module")
def fetcher(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("webfetch"),
                 make_spec("http://127.0.0.1:9/v1", capabilities=["web_browsing"], tools=[],
                           web={"fetch_max_bytes": 1024}, limits={"tool_result_bytes": 4096}))


@pytest.fixture
def server():
    made: list[ScriptServer] = []

    def make(*replies, **kw) -> ScriptServer:
        made.append(ScriptServer(*replies, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def fetch(unix_run, build_dir: Path, *urls: str) -> list[str]:
    res = unix_run(build_dir, modules={"prog": PROG % (list(urls),)}, entry="import prog", timeout=90)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith('"')]


def page(text: str) -> bytes:
    return b"<html><body><p>" + text.encode() + b"</p></body></html>"


def test_fetches_to_one_server_reuse_the_connection(fetcher, server, unix_run):
    # Keep-alive: consecutive fetches to the same server share one connection (replies shorter
    # than the buffer, so a read that waited for a full buffer would hang); a server that says
    # "Connection: close" gets a new connection next time; another server gets its own.
    srv = server([response(page("first"))], [response(page("second"))],
                 [response(page("third"), "Connection: close"), CLOSE], [response(page("fourth"))])
    other = server([response(page("elsewhere"))])
    got = fetch(unix_run, fetcher, *[srv.url(f"/p{i}") for i in range(4)], other.url("/x"))
    assert got == ["HTTP 200\nfirst", "HTTP 200\nsecond", "HTTP 200\nthird", "HTTP 200\nfourth",
                   "HTTP 200\nelsewhere"]
    assert [r.conn for r in srv.requests] == [1, 1, 1, 2]
    assert all(r.header("Connection") == "keep-alive" for r in srv.requests)
    assert srv.requests[1].head.startswith(b"GET /p1 HTTP/1.1\r\n")
    assert other.connections == 1


def test_the_web_connection_is_closed_when_the_turn_ends(tmp_path, server, llm_server, unix_run):
    web = server([response(page("one"))], [response(page("two"))], [response(page("three"))])
    out = build(tmp_path, make_spec(llm_server.base_url, capabilities=["web_browsing"], tools=[]))
    llm_server.push(Reply.tool_calls(("web_fetch", {"url": web.url("/1")}), ("web_fetch", {"url": web.url("/2")})),
                    Reply.text("fetched two"),
                    Reply.tool_calls(("web_fetch", {"url": web.url("/3")})), Reply.text("fetched one"))
    res = unix_run(out, stdin=["fetch two", "fetch one", "/quit"], timeout=60)
    assert res.returncode == 0, res.stderr
    assert "fetched two" in res.stdout and "fetched one" in res.stdout
    tools = [m["content"] for m in llm_server.requests[3].messages if m["role"] == "tool"]
    assert tools == ["HTTP 200\nthree"]
    # Two fetches in one turn share a connection; the next turn's fetch opens a new one.
    assert [r.conn for r in web.requests] == [1, 1, 2]


def test_body_until_eof_chunked_pieces_and_1xx(fetcher, server, unix_run):
    body = chunked(page("in chunks"), size=5)
    pieces: list = [response(b"", "Transfer-Encoding: chunked", length=False)]
    for i in range(0, len(body), 9):
        pieces += [body[i:i + 9], Pause(0.02)]
    srv = server([response(page("to the end"), "Connection: close", length=False), Pause(0.2), CLOSE],
                 pieces,
                 [b"HTTP/1.1 100 Continue\r\n\r\n", Pause(0.1),
                  b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", Pause(0.1),
                  response(page("after 1xx"))])
    got = fetch(unix_run, fetcher, srv.url("/eof"), srv.url("/chunked"), srv.url("/interim"))
    assert got == ["HTTP 200\nto the end", "HTTP 200\nin chunks", "HTTP 200\nafter 1xx"]


def test_redirect_is_reported_not_followed(fetcher, server, unix_run):
    srv = server([response(b"moved", "Location: https://example.com/new", status="301 Moved Permanently")],
                 [response(b"", status="302 Found")])
    got = fetch(unix_run, fetcher, srv.url("/old"), srv.url("/nowhere"))
    assert got == [
        "HTTP 301: redirect to https://example.com/new (not followed; call web_fetch with that URL to follow it)",
        "HTTP 302: redirect to nowhere: no Location header (not followed; call web_fetch with that URL to follow it)"]
    assert len(srv.requests) == 2


def test_truncated_body_peer_close_and_reset(fetcher, server, unix_run):
    body = page("cut " * 20)
    srv = server([response(body)[:-30], CLOSE],
                 [CLOSE],
                 [response(body)[:-30], Pause(0.2), RESET],
                 [response(page("fine"))])
    got = fetch(unix_run, fetcher, *[srv.url(f"/{i}") for i in range(4)])
    assert got[0] == f"error: 127.0.0.1 closed the connection after {len(body) - 30} of {len(body)} body bytes"
    assert got[1] == "error: 127.0.0.1 closed the connection without a response"
    assert got[2] in ("error: read from 127.0.0.1: connection reset",
                      f"error: 127.0.0.1 closed the connection after {len(body) - 30} of {len(body)} body bytes")
    assert got[3] == "HTTP 200\nfine"


def test_slow_server_and_a_stall_mid_body(fetcher, server, unix_run):
    # One byte per 100 ms for the whole reply (about 7 s against a 1 s read timeout) is read to
    # the end; a server that stops mid-body gives a clean timeout, and the next fetch works.
    srv = server([Drip(response(b"slow but whole"), 0.1)],
                 [response(page("never ends"))[:-10], Stall(8)],
                 [response(page("after the stall"))])
    got = fetch(unix_run, fetcher, srv.url("/slow"), srv.url("/stall"), srv.url("/next"))
    assert got == ["HTTP 200\nslow but whole", "error: read from 127.0.0.1: timed out after 1s",
                   "HTTP 200\nafter the stall"]


@pytest.mark.parametrize("kind", ["content-length", "chunked", "eof"])
def test_oversize_page_is_cut_at_fetch_max_bytes(fetcher, server, unix_run, kind):
    text = "".join(f"word{i} " for i in range(600))  # about 4.5 KB
    if kind == "content-length":
        first = [response(text.encode())]
    elif kind == "chunked":
        first = [response(b"", "Transfer-Encoding: chunked", length=False) + chunked(text.encode(), 700)]
    else:
        first = [response(text.encode(), "Connection: close", length=False), CLOSE]
    srv = server(first, [response(b"small")])
    got = fetch(unix_run, fetcher, srv.url("/big"), srv.url("/small"))
    assert got[0].startswith("HTTP 200\nword0 word1 ")
    assert got[0].endswith(" ...[truncated at 1024 bytes, web.fetch_max_bytes]")
    assert len(got[0]) < 1024 + 80
    assert got[1] == "HTTP 200\nsmall"
    assert [r.conn for r in srv.requests] == [1, 2]
