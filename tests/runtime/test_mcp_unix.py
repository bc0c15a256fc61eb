"""The device's MCP server (mcp_server:, claw_mcp) on the MicroPython unix-port VM, driven by the
official MCP Python SDK (`mcp` on PyPI) over Streamable HTTP with a bearer token, and by raw HTTP
for what no SDK client sends (a missing token, an oversized body, malformed JSON-RPC)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from clawgen.sim.unixvm import UnixDevice, UnixRun
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import free_port

TOKEN = "mcp-test-token-0123456789abcdef"
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22", "mcp_token": TOKEN}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22", "mcp_token": TOKEN.encode()}
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
HOST = "127.0.0.1"
GPIO_OUT = 0x60004004  # ESP32-S3 GPIO_OUT_REG: allowed by the policy below
GPIO_ENABLE = 0x60004020  # ESP32-S3 GPIO_ENABLE_REG: not in the allowlist

# The device as a board runs it: main.py, then claw_main's event loop with the MCP server's task.
ENTRY = 'exec(open("/main.py").read(), {"__name__": "__main__"})'


def mcp_build(tmp: Path, port: int, *, allow_confirm: bool = False, registers: bool = False,
              request_bytes: int | None = None, base_url: str = "http://192.0.2.1:9",
              allow_origins: list[str] | None = None) -> Path:
    extra: dict[str, Any] = {}
    mcp: dict[str, Any] = {"port": port, "token": "!secret mcp_token", "allow_confirm": allow_confirm}
    if allow_origins is not None:
        mcp["allow_origins"] = allow_origins
    caps = ["system"]
    if registers:
        caps.append("hw_register_control")
        extra["registers"] = {"defaults": False, "allow": [{"match": "GPIO.OUT*", "access": "read-write"}]}
    if request_bytes:
        extra["limits"] = {"request_bytes": request_bytes}
    spec = make_spec(base_url, network=WIFI, capabilities=caps,
                     mcp_server=mcp, **extra)
    return build(tmp, spec, secrets=SECRETS)


@pytest.fixture
def chips(monkeypatch: pytest.MonkeyPatch) -> None:
    from clawgen.resources import chips_dir

    monkeypatch.setenv("CLAWGEN_CHIP_PATH", str(chips_dir()))


def boot(unix_device: Callable[..., UnixDevice], out: Path, port: int, *, heapsize: int = 256 * 1024,
         registers: dict[int, int] | None = None) -> tuple[UnixDevice, UnixRun]:
    """Start the device and wait until its MCP server accepts connections."""
    dev = unix_device(out, secrets=NVS, registers=registers)
    dev.write_file("/main.py", (out / "app" / "main.py").read_bytes())
    run = dev.start(open_stdin=True, entry=ENTRY, heapsize=heapsize)
    end = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((HOST, port), timeout=5).close()
            return dev, run
        except ConnectionRefusedError:
            if run.proc.poll() is not None or time.monotonic() > end:
                res = run.wait(5)
                raise AssertionError(f"the device does not listen on {port}:\n{res.stdout}{res.stderr}") from None
            time.sleep(0.1)


def finish(run: UnixRun) -> Any:
    run.send("/quit\n")
    run.end_input()
    res = run.wait(30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert TOKEN not in res.stdout + res.stderr
    return res


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (the SDK's task group wraps errors), or exc."""
    inner = getattr(exc, "exceptions", None)
    return [x for sub in inner for x in _leaves(sub)] if inner else [exc]


def client(port: int, token: str | None = TOKEN, mode: str = "auto") -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20.0))
    return Client(streamable_http_client(f"http://{HOST}:{port}/mcp", http_client=http), mode=mode)


def http(port: int, body: bytes, *, token: str | None = TOKEN, method: str = "POST", path: str = "/mcp",
         headers: str = "", length: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request: (status, headers, body)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: device\r\nContent-Type: application/json\r\n{headers}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    with socket.create_connection((HOST, port), timeout=20) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    assert int(hdrs["content-length"]) == len(payload)
    return int(lines[0].split()[1]), hdrs, payload


def rpc(port: int, msg: Any, **kw: Any) -> dict[str, Any]:
    status, hdrs, payload = http(port, json.dumps(msg).encode() if not isinstance(msg, bytes) else msg, **kw)
    assert status == 200 and hdrs["content-type"] == "application/json", (status, payload)
    reply: dict[str, Any] = json.loads(payload)
    assert reply["jsonrpc"] == "2.0"
    return reply


@pytest.mark.filterwarnings("ignore:ping is removed")
def test_sdk_session_lists_and_calls_tools_under_the_register_policy(tmp_path, unix_device, chips):
    port = free_port()
    out = mcp_build(tmp_path, port, registers=True)
    _, run = boot(unix_device, out, port, registers={GPIO_OUT: 0, GPIO_ENABLE: 0})

    async def session() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with client(port) as c:  # mode auto: server/discover is refused, then initialize
            got["info"] = c.server_info
            got["tools"] = {t.name: t for t in (await c.list_tools()).tools}
            got["add"] = await c.call_tool("add", {"a": 2, "b": 3})
            got["write"] = await c.call_tool("hw_register_write", {"address": "0x60004004", "value": "0x5"})
            got["denied"] = await c.call_tool("hw_register_write", {"address": "0x60004020", "value": "0x1"})
            got["confirm"] = await c.call_tool("set_relay", {"on": True})
            got["bad_args"] = await c.call_tool("add", {"a": "two", "b": 3})
            got["explode"] = await c.call_tool("explode", {"reason": "test"})
            # Arguments the tool does not declare: refused unless the handler takes **kwargs.
            got["undeclared"] = await c.call_tool("add", {"a": 2, "b": 3, "c": 4})
            got["meta"] = await c.call_tool("system_uptime", {"_meta": {"progressToken": 1}})
            got["passed_on"] = await c.call_tool("explode", {"reason": "test", "bus": 2})
            with pytest.raises(MCPError) as e:
                await c.call_tool("no_such_tool", {})
            got["unknown"] = e.value
        async with client(port, mode="legacy") as c:  # the initialize handshake, then ping
            got["legacy"] = c.server_info
            await c.send_ping()
        return got

    got = asyncio.run(session())
    res = finish(run)
    assert got["info"].name == "rt-agent" and got["legacy"].name == "rt-agent"
    tools = got["tools"]
    assert {"add", "big_text", "explode", "system_uptime", "hw_register_write", "hw_register_read"} <= set(tools)
    assert "set_relay" not in tools  # confirm: true, and the spec does not allow it over MCP
    assert tools["add"].input_schema["required"] == ["a", "b"]
    # What the server enforces is in the schemas: add(a, b) takes nothing else; explode(**context) does.
    assert tools["add"].input_schema["additionalProperties"] is False
    assert "additionalProperties" not in tools["explode"].input_schema
    assert tools["system_uptime"].input_schema["additionalProperties"] is False
    assert got["add"].content[0].text == "5" and not got["add"].is_error
    assert got["write"].content[0].text.startswith("wrote 0x00000005 to 0x60004004")
    assert not got["write"].is_error
    denied = got["denied"].content[0].text
    assert got["denied"].is_error and "denied" in denied and "allowlist" in denied, denied
    assert got["confirm"].is_error and got["confirm"].content[0].text.startswith("refused: set_relay needs a confirmation")
    assert got["bad_args"].is_error
    assert got["bad_args"].content[0].text == "error: invalid arguments for add: argument 'a' must be of type number"
    assert got["explode"].is_error and "ValueError: sensor bus stuck: test" in got["explode"].content[0].text
    assert got["undeclared"].is_error
    assert got["undeclared"].content[0].text == "error: invalid arguments for add: unknown argument 'c' (it takes a, b)"
    assert got["meta"].is_error
    assert got["meta"].content[0].text == ("error: invalid arguments for system_uptime: unknown argument '_meta' "
                                           "(it takes no arguments)")
    assert got["passed_on"].content[0].text.endswith("ValueError: sensor bus stuck: test bus=2"), got["passed_on"]
    assert got["unknown"].error.code == -32602 and "no_such_tool" in got["unknown"].error.message
    # The policy held: the allowed register was written, the denied one was not.
    assert res.register_writes == [(GPIO_OUT, 5)]
    assert res.registers[GPIO_ENABLE] == 0
    assert f"mcp: serving the tools on port {port} at /mcp" in res.stdout


def test_confirm_tools_are_callable_when_the_spec_allows_them(tmp_path, unix_device):
    port = free_port()
    out = mcp_build(tmp_path, port, allow_confirm=True)
    _, run = boot(unix_device, out, port)

    async def session() -> tuple[set[str], Any]:
        async with client(port) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            return names, await c.call_tool("set_relay", {"on": True})

    names, relay = asyncio.run(session())
    finish(run)
    assert "set_relay" in names
    assert not relay.is_error and json.loads(relay.content[0].text) == {"relay": "on", "calls": 1}


HOOKS = """
def approve(channel, tool, args):
    if channel == "mcp" and tool == "add" and args.get("a", 0) > 100:
        return "big sums are for the console only"
    return True
"""


def test_the_approve_hook_and_the_audit_log_see_mcp_calls(tmp_path, unix_device):
    port = free_port()
    (tmp_path / "tools").mkdir(parents=True)
    (tmp_path / "tools" / "hooks.py").write_text(HOOKS)
    spec = make_spec("http://192.0.2.1:9", network=WIFI, hooks={"approve_tool": "tools/hooks.py:approve"},
                     mcp_server={"port": port, "token": "!secret mcp_token"})
    out = build(tmp_path, spec, secrets=SECRETS)
    _, run = boot(unix_device, out, port)

    async def session() -> list[Any]:
        async with client(port) as c:
            return [await c.call_tool("add", {"a": 1, "b": 2}), await c.call_tool("add", {"a": 500, "b": 1}),
                    await c.call_tool("set_relay", {"on": True})]

    small, big, relay = asyncio.run(session())
    run.send("/audit 3\n")
    res = finish(run)
    assert small.content[0].text == "3" and not small.is_error
    assert big.is_error and big.content[0].text == "denied by approve_tool: big sums are for the console only"
    assert relay.is_error and relay.content[0].text.startswith("refused: set_relay needs a confirmation")
    audit = [ln for ln in res.stdout.splitlines() if "\tmcp\t" in ln or " mcp " in ln]
    assert len(audit) == 3, res.stdout
    assert "hook approve_tool" in audit[1] and "mcp_server.allow_confirm" in audit[2], audit


def test_requests_without_the_token_get_401(tmp_path, unix_device):
    port = free_port()
    out = mcp_build(tmp_path, port)
    _, run = boot(unix_device, out, port)
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    for token in (None, "", "wrong-token-0123456789", TOKEN[:-1], TOKEN + "x"):
        status, hdrs, body = http(port, ping, token=token)
        assert status == 401 and hdrs["www-authenticate"].startswith("Bearer"), (token, status)
        assert b"tools" not in body
    # The scheme is case-insensitive, the token is not.
    assert http(port, ping, token=None, headers=f"authorization: bearer {TOKEN}\r\n")[0] == 200
    assert http(port, ping, token=None, headers=f"Authorization: Bearer {TOKEN.upper()}\r\n")[0] == 401

    async def unauthenticated() -> None:
        async with client(port, token=None) as c:
            await c.list_tools()

    with pytest.raises(Exception) as e:  # the SDK's task group wraps the MCPError
        asyncio.run(unauthenticated())
    assert any(isinstance(x, MCPError) and "error response" in str(x) for x in _leaves(e.value)), e.value
    res = finish(run)
    assert res.stderr.count("mcp: 401") >= 6


def test_a_foreign_origin_gets_403_and_allowed_or_absent_origins_pass(tmp_path, unix_device):
    """MCP's Streamable HTTP transport: servers must validate Origin (DNS rebinding). A request whose
    Origin is not in mcp_server.allow_origins gets 403 with a JSON-RPC error body, even with the
    token; an allowed Origin (any case) and no Origin at all (SDKs, curl) go through."""
    port = free_port()
    out = mcp_build(tmp_path, port, allow_origins=["http://localhost:6274", "https://Console.Example.org"])
    _, run = boot(unix_device, out, port)
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    for origin in ("http://evil.example", "null", "http://localhost:6275", "http://localhost:6274.evil.example",
                   "https://localhost:6274"):
        for token in (TOKEN, None):  # refused before the token is looked at
            status, hdrs, body = http(port, ping, token=token, headers=f"Origin: {origin}\r\n")
            assert status == 403, (origin, token, status, body)
            assert hdrs["content-type"] == "application/json"
            err = json.loads(body)
            assert err["jsonrpc"] == "2.0" and err["id"] is None and err["error"]["code"] == -32600
            assert "Origin" in err["error"]["message"]
    for origin in ("http://localhost:6274", "https://console.example.org", "HTTP://LOCALHOST:6274"):
        assert rpc(port, ping, headers=f"Origin: {origin}\r\n") == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert rpc(port, ping) == {"jsonrpc": "2.0", "id": 1, "result": {}}  # no Origin: as before
    # An allowed Origin still needs the token.
    assert http(port, ping, token=None, headers="Origin: http://localhost:6274\r\n")[0] == 401

    async def sdk() -> list[str]:  # the official SDK sends no Origin: unaffected
        async with client(port) as c:
            return [t.name for t in (await c.list_tools()).tools]

    assert "add" in asyncio.run(sdk())
    res = finish(run)
    assert res.stderr.count("mcp: 403 origin not allowed (mcp_server.allow_origins)") == 10


def test_without_allow_origins_every_origin_is_refused(tmp_path, unix_device):
    port = free_port()
    out = mcp_build(tmp_path, port)
    _, run = boot(unix_device, out, port)
    ping = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}).encode()
    assert http(port, ping, headers="Origin: http://localhost:6274\r\n")[0] == 403
    assert rpc(port, ping) == {"jsonrpc": "2.0", "id": 7, "result": {}}
    finish(run)


def test_bad_requests_get_errors_and_the_server_goes_on(tmp_path, unix_device):
    port = free_port()
    out = mcp_build(tmp_path, port, request_bytes=6144)
    _, run = boot(unix_device, out, port)
    # Larger than the request buffer: 413, whatever the body is (it is read and dropped).
    for size in (6144, 20000, 200_000):
        status, _, body = http(port, b"x" * size)
        assert status == 413 and b"6144" in body, (size, status, body)
    # Malformed JSON and JSON-RPC: an error reply, never a crash.
    cases: list[tuple[bytes | dict[str, Any] | list[Any], int]] = [
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700),
        (b"\xff\xfe not json", -32700),
        (b"[" * 40 + b"]" * 40, -32600),  # nested deeper than the device parses
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], -32600),  # a batch
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": 1}, -32600),
        ({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": "i" * 5000, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}, -32601),
        ({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": [1]}}, -32602),
        ({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": [1, 2]}, -32602),
        (b'"just a string"', -32600),
    ]
    for msg, code in cases:
        reply = rpc(port, msg)
        assert reply["error"]["code"] == code, (msg, reply)
        assert "result" not in reply
    assert rpc(port, {"jsonrpc": "2.0", "id": "s", "method": "ping"}) == {"jsonrpc": "2.0", "id": "s", "result": {}}
    # Notifications (and responses) are accepted with 202 and no body.
    for note in ({"jsonrpc": "2.0", "method": "notifications/initialized"},
                 {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
                 {"jsonrpc": "2.0", "id": 9, "result": {}}):
        assert http(port, json.dumps(note).encode())[:3:2] == (202, b"")
    # HTTP-level refusals.
    assert http(port, b"", method="GET")[0] == 405
    assert http(port, b"", method="DELETE")[0] == 405
    assert http(port, b"{}", path="/other")[0] == 404
    assert http(port, b"{}", length=False)[0] == 411
    assert http(port, b"{}", headers="MCP-Protocol-Version: 1999-01-01\r\n")[0] == 400
    assert http(port, b"{}", headers="X-Long: " + "a" * 7000 + "\r\n")[0] == 431
    # Expect: 100-continue (curl's way with larger bodies) gets its interim reply first.
    ping = json.dumps({"jsonrpc": "2.0", "id": 10, "method": "ping"}).encode()
    with socket.create_connection((HOST, port), timeout=20) as c:
        c.sendall((f"POST /mcp HTTP/1.1\r\nHost: d\r\nContent-Length: {len(ping)}\r\nExpect: 100-continue\r\n"
                   f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
        assert c.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.sendall(ping)
        assert _read_all(c).startswith(b"HTTP/1.1 200 OK")
    # A result longer than limits.tool_result_bytes is cut with the dispatcher's marker, as in a turn.
    big = rpc(port, {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                     "params": {"name": "big_text", "arguments": {"n": 500}}})
    text = big["result"]["content"][0]["text"]
    assert text.endswith("[truncated: 5000 bytes, limits.tool_result_bytes = 1536]") and len(text.encode()) == 1536
    # Protocol version negotiation.
    init = {"jsonrpc": "2.0", "id": 6, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    assert rpc(port, init)["result"]["protocolVersion"] == "2025-03-26"
    init["params"]["protocolVersion"] = "2099-01-01"
    assert rpc(port, init)["result"]["protocolVersion"] == "2025-11-25"
    # Many more requests than the heap could hold if each one leaked: the heap stays bounded.
    free = []
    for _ in range(3):
        for _ in range(15):
            rpc(port, {"jsonrpc": "2.0", "id": 7, "method": "tools/list"})
            assert http(port, b"y" * 7000)[0] == 413
            rpc(port, b'{"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "add", "argu')
        r = rpc(port, {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": {"name": "system_free_heap", "arguments": {}}})
        free.append(json.loads(r["result"]["content"][0]["text"])["free"])
    res = finish(run)
    assert "MemoryError" not in res.stdout + res.stderr
    assert min(free[1:]) > free[0] - 2048, free  # no growth per request (45 more requests, same heap)


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_a_second_client_is_served_while_one_is_connected(tmp_path, unix_device):
    port = free_port()
    out = mcp_build(tmp_path, port)
    _, run = boot(unix_device, out, port)

    async def interleaved() -> list[str]:
        """Two SDK sessions at once, their calls interleaved."""
        seen: list[str] = []
        async with client(port) as a:
            seen.append(str((await a.call_tool("add", {"a": 1, "b": 2})).content[0].text))
            async with client(port) as b:
                seen.append(str((await b.call_tool("add", {"a": 20, "b": 22})).content[0].text))
                seen.append(str((await a.call_tool("add", {"a": 3, "b": 4})).content[0].text))
                both = await asyncio.gather(a.call_tool("add", {"a": 5, "b": 5}), b.call_tool("add", {"a": 6, "b": 6}))
                seen += [str(r.content[0].text) for r in both]
        return seen

    assert asyncio.run(interleaved()) == ["3", "42", "7", "10", "12"]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "add", "arguments": {"a": 1, "b": 1}}}).encode()
    head = (f"POST /mcp HTTP/1.1\r\nHost: d\r\nContent-Length: {len(body)}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
    # A connection that is open and silent holds a slot, not the buffer: another client is served,
    # then the silent one sends its request and gets its answer.
    with socket.create_connection((HOST, port), timeout=20) as idle:
        time.sleep(0.3)
        assert rpc(port, {"jsonrpc": "2.0", "id": 2, "method": "ping"})["result"] == {}
        idle.sendall(head + body)
        data = _read_all(idle)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(data.partition(b"\r\n\r\n")[2])["result"]["content"][0]["text"] == "2"
    # A client that stops half-way through its request does not keep the others out: it is dropped
    # with 408 once it has been silent while another waits, and the other is answered.
    with socket.create_connection((HOST, port), timeout=20) as stalled:
        stalled.sendall(head + body[:10])
        time.sleep(0.3)
        assert rpc(port, {"jsonrpc": "2.0", "id": 3, "method": "ping"})["result"] == {}
        assert _read_all(stalled).startswith(b"HTTP/1.1 408 Request Timeout")
    res = finish(run)
    assert "mcp: 408 the request stopped arriving" in res.stderr


def test_an_mcp_request_during_a_turn_waits_for_the_turn(tmp_path, unix_device):
    """The turn's HTTP exchange and the MCP server share the one request buffer: a request that
    comes while the model is still answering is served once the turn has ended, and both come out
    whole."""
    import threading

    from clawgen.sim.llmserver import LLMServer, Reply

    answer = "The answer arrived whole: " + "x" * 300
    asked = threading.Event()
    replied = threading.Event()

    def slow(_req: Any) -> Reply:
        asked.set()
        time.sleep(1.5)  # the model thinks; the MCP request arrives meanwhile
        replied.set()
        return Reply.text(answer)

    with LLMServer(responder=slow) as model:
        port = free_port()
        out = mcp_build(tmp_path, port, base_url=model.base_url)
        _, run = boot(unix_device, out, port)
        run.send("hello\n")
        assert asked.wait(30)
        reply = rpc(port, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "big_text", "arguments": {"n": 40}}})
        assert replied.is_set()  # the model's answer went out before the MCP reply came back
        assert reply["result"]["content"][0]["text"] == "0123456789" * 40
        res = finish(run)
    assert answer in res.stdout, res.stdout


def test_a_turn_waits_for_the_mcp_request_in_the_buffer(tmp_path, unix_device):
    """The other way round: a line typed while an MCP request is half-read waits for that request's
    reply before its turn writes the model request into the same buffer."""
    import threading

    from clawgen.sim.llmserver import LLMServer, Reply

    rest_sent = threading.Event()
    order: list[bool] = []

    def model(_req: Any) -> Reply:
        order.append(rest_sent.is_set())  # the turn's request came after the MCP request was whole
        return Reply.text("turn done")

    with LLMServer(responder=model) as server:
        port = free_port()
        out = mcp_build(tmp_path, port, base_url=server.base_url)
        _, run = boot(unix_device, out, port)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "add", "arguments": {"a": 2, "b": 40}}}).encode()
        head = (f"POST /mcp HTTP/1.1\r\nHost: d\r\nContent-Length: {len(body)}\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
        with socket.create_connection((HOST, port), timeout=20) as a:
            a.sendall(head + body[:20])
            time.sleep(1.0)  # the device reads the first part into its buffer
            run.send("hello\n")
            time.sleep(0.5)
            rest_sent.set()
            a.sendall(body[20:])
            data = _read_all(a)
        res = finish(run)
    assert json.loads(data.partition(b"\r\n\r\n")[2])["result"]["content"][0]["text"] == "42"
    assert order == [True], order
    assert "turn done" in res.stdout


def test_a_turn_and_mcp_calls_share_the_device(tmp_path, unix_device, llm_server):
    from tests.llm_server import Reply

    port = free_port()
    out = mcp_build(tmp_path, port, base_url=llm_server.base_url)
    llm_server.push(Reply.tool_calls(("add", {"a": 2, "b": 2})), Reply.text("It is 4."))
    _, run = boot(unix_device, out, port)
    assert rpc(port, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "add", "arguments": {"a": 1, "b": 2}}})["result"]["content"][0]["text"] == "3"
    run.send("what is 2+2?\n")
    end = time.monotonic() + 30
    while len(llm_server.requests) < 2 and time.monotonic() < end:
        time.sleep(0.1)
    assert rpc(port, {"jsonrpc": "2.0", "id": 2, "method": "ping"})["result"] == {}
    res = finish(run)
    assert "It is 4." in res.stdout
    assert llm_server.requests[1].messages[-1]["content"] == "4"


@pytest.mark.parametrize("board", ["esp32", "esp32s3", "esp32c3", "esp32c6"])
def test_the_mcp_example_builds_for_every_board_within_budget(board, tmp_path):
    from clawgen.boards import load_board
    from clawgen.build import BuildOptions, build_spec
    from tests.conftest import EXAMPLES

    res = build_spec(EXAMPLES / "mcp-bench.yaml", BuildOptions(board=board, out_dir=tmp_path / "out", images=False))
    info = json.loads((res.out_dir / "build.json").read_text())
    mpy = {p.name: p.stat().st_size for p in (res.out_dir / "mpy").glob("*.mpy")}
    assert {"claw_mcp.mpy", "claw_anthropic.mpy", "claw_openai.mpy", "claw_hooks.mpy"} <= set(mpy)
    assert info["bundle"]["mpy_bytes"] == sum(mpy.values()) <= load_board(board).bundle_budget
    tools = json.loads((res.out_dir / "app" / "claw_mcp.json").read_text())
    assert {t["name"] for t in tools} >= {"read_sensor", "set_relay", "hw_register_write"}
    assert "mcp_token" in (res.out_dir / "app" / "claw_mcp.py").read_text()  # the NVS key, never the token
    assert "example-mcp-token" not in "".join(p.read_text() for p in (res.out_dir / "app").glob("*.py"))
