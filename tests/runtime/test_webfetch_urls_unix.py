"""URLs the model gives web_fetch (a network peer's words: a page it read may have put them there)
on the MicroPython unix-port VM: each is fetched, or refused with a line the model can act on;
nothing in a URL reaches the request line but a host, a port and a path."""

from __future__ import annotations

from pathlib import Path

from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.test_web_tools import web_server  # noqa: F401  (a fixture)

PORT_RANGE = "error: the URL's port is not a number from 1 to 65535"
SPACE = "error: the URL has a space or a control character: percent-encode it (%20)"
NO_HOST = "error: URL has no host"
CASES = [
    # Before: "connection refused" (the port wrapped), a resolver error, a header injected into
    # the request ("X-Evil"), a request line the server refused, a resolver error, ...
    ("http://127.0.0.1:99999/x", PORT_RANGE), ("http://127.0.0.1:0/x", PORT_RANGE),
    ("http://127.0.0.1:{port}:x/", PORT_RANGE),
    ("http://[::1]:{port}/small", "error: IPv6 addresses are not supported: use a host name or an IPv4 address"),
    ("http://a b/x", SPACE), ("http://127.0.0.1:{port}/x\r\nX-Evil: 1", SPACE), ("http://127.0.0.1:{port}/x y", SPACE),
    ("http://\x00/", SPACE), ("http://127.0.0.1:{port}/\x7f", SPACE),
    ("http://user:pw@127.0.0.1:{port}/", "error: user:password@ in a URL is not supported"),
    ("http:///x", NO_HOST), ("http://:80/x", NO_HOST), ("https://", NO_HOST), ("http://?x", NO_HOST),
    ("ftp://127.0.0.1/x", "error: only http:// and https:// URLs can be fetched"),
    # Fetched: a scheme in capitals, a query right after the host, a fragment (not sent), UTF-8.
    ("HTTP://127.0.0.1:{port}/small", "HTTP 200\nshort text"), ("http://127.0.0.1:{port}?q=1", "HTTP 200\nshort text"),
    ("http://127.0.0.1:{port}/page#part", "HTTP 200\nGreenhouse"), ("http://127.0.0.1:{port}/ü", "HTTP 200\nshort text"),
]


def test_odd_urls_are_fetched_or_refused_with_a_reason(tmp_path: Path, llm_server, unix_run, web_server):  # noqa: F811
    port = web_server.rsplit(":", 1)[1]
    out = build(tmp_path, make_spec(llm_server.base_url, capabilities=["web_browsing"], tools=[],
                                    web={"fetch_max_bytes": 1024},
                                    limits={"tool_result_bytes": 4096, "max_tool_calls": len(CASES)}))
    urls = [u.replace("{port}", port) for u, _ in CASES]
    llm_server.push(Reply.tool_calls(*[("web_fetch", {"url": u}) for u in urls]), Reply.text("fetched"))
    res = unix_run(out, stdin=["fetch them", "/quit"])
    assert res.returncode == 0, res.stderr
    results = [m["content"] for m in llm_server.requests[1].messages if m["role"] == "tool"]
    assert len(results) == len(CASES)
    for (url, want), got in zip(CASES, results, strict=True):
        assert got.startswith(want), (url, got[:200])
    assert "fetched" in res.stdout
