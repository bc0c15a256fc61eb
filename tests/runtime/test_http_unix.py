"""The model client (claw_agent -> claw_openai -> claw_http) on the MicroPython unix-port VM against
a scripted HTTP server on 127.0.0.1 that sends exact bytes, in pieces, slowly, or not at all.

MicroPython's blocking stream reads wait until the buffer is full; these tests prove the client
never does: keep-alive replies shorter than the buffer, chunks in pieces, a reply dripping one
byte per 100 ms, a server that stalls mid-body (a clean timeout, then the next turn works)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from tests.runtime.agent_builds import build, make_spec
from tests.runtime.httpscript import (
    CLOSE,
    RESET,
    Drip,
    Pause,
    ScriptServer,
    Stall,
    answer,
    chunked,
    response,
)


@pytest.fixture
def server():
    made: list[ScriptServer] = []

    def make(*replies, **kw) -> ScriptServer:
        made.append(ScriptServer(*replies, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def agent(tmp: Path, srv: ScriptServer, read_timeout: float = 3, **overrides) -> Path:
    url = srv.url()
    model = {"base_url": url, "model": "test-model", "read_timeout": read_timeout, "connect_timeout": 2}
    return build(tmp, make_spec(url, model=model, **overrides))


def turns(unix_run, out: Path, *lines: str):
    res = unix_run(out, stdin=[*lines, "/quit"], timeout=90)
    assert res.returncode == 0, res.stderr
    return res


def answers(stdout: str) -> list[str]:
    """The lines the agent printed after the banner (prompts removed), up to "bye"."""
    lines = stdout.split("for commands\n", 1)[1].splitlines()
    return [ln[2:] if ln.startswith("> ") else ln for ln in lines if ln != "> bye"]


def test_keep_alive_reuses_one_connection(tmp_path, server, unix_run):
    srv = server([response(answer("one"))],
                 [response(b'{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c1","type":"function",'
                           b'"function":{"name":"add","arguments":"{\\"a\\":1,\\"b\\":2}"}}]}}]}')],
                 [response(answer("three"))],
                 [response(answer("four"))])
    res = turns(unix_run, agent(tmp_path, srv), "first", "add 1 and 2", "last")
    assert answers(res.stdout) == ["one", "[tool] add {\"a\":1,\"b\":2} -> 3", "three", "four"]
    assert srv.connections == 1  # four requests, one TCP connection
    assert [r.conn for r in srv.requests] == [1, 1, 1, 1]
    assert all(r.header("Connection") == "keep-alive" for r in srv.requests)


def test_connection_close_and_a_body_until_eof(tmp_path, server, unix_run):
    srv = server([response(answer("closing"), "Connection: close"), CLOSE],
                 [response(answer("until eof"), "Connection: close", length=False), Pause(0.2), CLOSE],
                 [response(answer("third"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b", "c")
    assert answers(res.stdout) == ["closing", "until eof", "third"]
    assert [r.conn for r in srv.requests] == [1, 2, 3]


def test_chunked_in_pieces_keeps_the_connection(tmp_path, server, unix_run):
    body = chunked(answer("chunked answer"), size=16)
    pieces: list = [response(b"", "Transfer-Encoding: chunked", length=False)]
    for i in range(0, len(body), 11):  # cut across size lines, data and CRLFs
        pieces += [body[i:i + 11], Pause(0.02)]
    srv = server(pieces, [response(answer("same connection"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b")
    assert answers(res.stdout) == ["chunked answer", "same connection"]
    assert srv.connections == 1  # the chunked body was consumed exactly


def test_interim_1xx_responses_are_skipped(tmp_path, server, unix_run):
    srv = server([b"HTTP/1.1 100 Continue\r\n\r\n", Pause(0.1),
                  b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", Pause(0.1),
                  response(answer("after two interim heads"))],
                 [b"HTTP/1.1 100 Continue\r\n\r\n" + response(answer("in one packet"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b")
    assert answers(res.stdout) == ["after two interim heads", "in one packet"]
    assert srv.connections == 1


def test_only_interim_responses_is_an_error(tmp_path, server, unix_run):
    flood = [b"HTTP/1.1 100 Continue\r\n\r\n" * 8, Pause(0.5), CLOSE]
    srv = server(flood, flood, [response(answer("a real one"))])  # the agent retries a proto error once
    res = turns(unix_run, agent(tmp_path, srv), "a", "b")
    assert answers(res.stdout) == ["[error] 127.0.0.1 sent only interim (1xx) responses", "a real one"]


def test_redirect_is_refused_with_a_clear_message(tmp_path, server, unix_run):
    srv = server([response(b"", "Location: https://api.example.com/v1/chat/completions",
                           status="301 Moved Permanently")],
                 [response(answer("still serving"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b")
    assert answers(res.stdout) == [
        "[error] HTTP 301 from 127.0.0.1 (test-model): redirect to https://api.example.com/v1/chat/completions "
        "not followed -- put the final URL in the model's base_url",
        "still serving"]
    assert len(srv.requests) == 2  # not retried, not followed


def test_truncated_body_is_an_error_then_the_next_turn_works(tmp_path, server, unix_run):
    body = answer("this answer is cut")
    cut = response(body)[:-(len(body) // 2)]
    srv = server([cut, CLOSE], [cut, CLOSE],  # the agent tries the primary once more after a backoff
                 [response(answer("whole again"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b")
    got = answers(res.stdout)
    assert got[0] == (f"[error] 127.0.0.1 closed the connection after {len(body) - len(body) // 2} "
                      f"of {len(body)} body bytes")
    assert got[1] == "whole again"


def test_slow_server_one_byte_per_100ms(tmp_path, server, unix_run):
    # The whole reply takes about 8 s, far beyond the 1 s read timeout: the timeout is how long
    # the client waits for the next byte, not for the whole reply.
    reply = response(b'{"choices":[{"message":{"content":"slow ok"}}]}')
    srv = server([Drip(reply, 0.1)], [response(answer("fast again"))])
    res = turns(unix_run, agent(tmp_path, srv, read_timeout=1), "a", "b")
    assert answers(res.stdout) == ["slow ok", "fast again"]
    assert srv.connections == 1


def test_stall_mid_body_times_out_cleanly(tmp_path, server, unix_run):
    body = answer("never completed")
    part = response(body)[:-10]
    srv = server([part, Stall(8)], [part, Stall(8)], [response(answer("back"))])
    res = turns(unix_run, agent(tmp_path, srv, read_timeout=1), "a", "b")
    got = answers(res.stdout)
    assert re.fullmatch(r"\[error\] read from 127\.0\.0\.1: timed out after 1(\.0)?s", got[0]), got
    assert got[1] == "back"
    assert [r.conn for r in srv.requests] == [1, 2, 3]  # a timed-out connection is never reused


def test_idle_connection_closed_by_the_server_reconnects_once(tmp_path, server, unix_run):
    # The server says keep-alive, then closes the idle connection: the next request notices and
    # reconnects transparently; a fresh connection closed without an answer is an error.
    srv = server([response(answer("first")), CLOSE],
                 [response(answer("second"))],
                 [CLOSE],  # on the kept-alive connection: reconnect at once
                 [CLOSE], [CLOSE],  # on a fresh connection, and again on the agent's one retry
                 [response(answer("fourth"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b", "c", "d")
    got = answers(res.stdout)
    assert got[:2] == ["first", "second"]
    assert got[2] in ("[error] 127.0.0.1 closed the connection without a response",
                      "[error] exchange with 127.0.0.1: connection reset")
    assert got[3] == "fourth"
    # The request on the closed idle connection never reached the server (1 -> 2 in turn b).
    assert [r.conn for r in srv.requests] == [1, 2, 2, 3, 4, 5]


def test_reset_mid_body(tmp_path, server, unix_run):
    part = response(answer("reset in the middle"))[:-12]
    srv = server([part, Pause(0.2), RESET], [part, Pause(0.2), RESET], [response(answer("ok"))])
    res = turns(unix_run, agent(tmp_path, srv), "a", "b")
    got = answers(res.stdout)
    assert got[0] in ("[error] read from 127.0.0.1: connection reset",
                      f"[error] 127.0.0.1 closed the connection after {len(answer('reset in the middle')) - 12} "
                      f"of {len(answer('reset in the middle'))} body bytes")
    assert got[1] == "ok"


@pytest.mark.parametrize("kind", ["content-length", "chunked", "eof"])
def test_oversize_response_is_refused_then_the_next_turn_works(tmp_path, server, unix_run, kind):
    big = answer("x" * 3000)
    if kind == "content-length":
        first = [response(big)]
        msg = f"[error] response from 127.0.0.1 is {len(big)} bytes, larger than the 2048-byte buffer"
    elif kind == "chunked":
        first = [response(b"", "Transfer-Encoding: chunked", length=False) + chunked(big, 500)]
        msg = "[error] chunked response from 127.0.0.1 larger than the 2048-byte buffer"
    else:
        first = [response(big, "Connection: close", length=False), CLOSE]
        msg = "[error] response from 127.0.0.1 larger than the 2048-byte buffer"
    srv = server(first, [response(answer("small"))])
    res = turns(unix_run, agent(tmp_path, srv, limits={"response_bytes": 2048}), "a", "b")
    assert answers(res.stdout) == [msg + " (limits.response_bytes)", "small"]
    assert len(srv.requests) == 2  # a size error is not retried


def test_endpoint_fields_are_read_by_name(tmp_path, unix_run):
    # claw_config.MODELS entries are read through the _M_* indices (templates/app/_model_fields.j2,
    # rendered as private const() into each module that reads a field): in every such module,
    # each name must give the spec's value from the tuple claw_config holds on the device (a tuple
    # order changed on one side only fails here).
    spec = make_spec("https://api.example.com:8443/openai/v1", model={
        "base_url": "https://api.example.com:8443/openai/v1", "model": "m-primary", "max_tokens": 321,
        "temperature": 0.25, "connect_timeout": 4, "read_timeout": 7, "api_key": "!secret key_a",
        "headers": {"X-Team": "blue"}})
    out = build(tmp_path, spec, secrets={"key_a": "sk-test-aaaa"})
    prog = "import json\nimport claw_config as C\nprint(json.dumps(C.MODELS[0]))\n"
    res = unix_run(out, modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stderr
    t = json.loads(res.stdout.strip().splitlines()[-1])
    want = {"HOST": "api.example.com", "PORT": 8443, "TLS": True, "PATH": "/openai/v1", "MODEL": "m-primary",
            "MAX_TOKENS": 321, "TEMPERATURE": 0.25, "CONNECT_TIMEOUT": 4, "READ_TIMEOUT": 7, "KEY": "m0_key",
            "HEADERS": {"X-Team": "blue"}, "PROVIDER": "openai-compatible", "API": "openai"}
    assert len(t) == len(want)
    readers = 0
    for src in sorted((Path(out) / "app").glob("*.py")):
        fields = {m[1]: int(m[2]) for m in re.finditer(r"^_M_(\w+) = const\((\d+)\)", src.read_text(), re.M)}
        if "_M_" in src.read_text():
            readers += 1
            assert {n: t[i] for n, i in fields.items()} == want, src.name
    assert readers >= 3  # claw_agent, claw_openai, claw_boot


def test_connect_timeout(tmp_path, unix_run):
    # A listener whose backlog is full drops new connection attempts: the connect waits for its
    # timeout (connect_timeout), and the turn ends with one clear line.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        url = f"http://127.0.0.1:{port}/v1"
        out = build(tmp_path, make_spec(url, model={"base_url": url, "model": "test-model", "read_timeout": 2,
                                                    "connect_timeout": 1}))
        res = turns(unix_run, out, "a")
        assert re.fullmatch(r"\[error\] connect 127\.0\.0\.1: timed out after 1(\.0)?s",
                            answers(res.stdout)[0]), res.stdout
    finally:
        for c in fillers:
            c.close()
        srv.close()
