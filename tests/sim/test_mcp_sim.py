"""`clawgen sim` serves the device's MCP server (mcp_server:) on 127.0.0.1, through the WebAssembly
simulator's listening-socket bridge (the same one its Telnet and OTA servers use), so a desktop MCP
client can use a simulated device: here the official MCP Python SDK lists and calls its tools."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.runtime.telnet_client import free_port
from tests.sim.test_ota_sim import REPO, Lines

TOKEN = "sim-mcp-token-0123456789abcdef"
SPEC = """\
name: simmcp
board: esp32s3
model:
  base_url: https://api.example.invalid/v1
  model: test-model
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
capabilities: [system]
tools:
  - name: add
    description: Add two numbers.
    parameters:
      type: object
      properties: {{a: {{type: number}}, b: {{type: number}}}}
      required: [a, b]
    handler: tools.py:add
mcp_server:
  port: {port}
  token: !secret mcp_token
"""


def _project(tmp_path: Path, port: int) -> None:
    (tmp_path / "agent.yaml").write_text(SPEC.format(port=port))
    (tmp_path / "tools.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "secrets.yaml").write_text(f"wifi_ssid: lab\nwifi_password: pw-123456\nmcp_token: {TOKEN}\n")


def test_sim_serves_mcp_to_the_sdk_client(tmp_path: Path, mpvm: Path) -> None:
    port = free_port()
    _project(tmp_path, port)
    sim = subprocess.Popen([sys.executable, "-m", "clawgen.cli", "sim", str(tmp_path / "agent.yaml"),
                            "--model", "mock", "--out", str(tmp_path / "out")], cwd=REPO, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ})
    assert sim.stdin is not None and sim.stdout is not None and sim.stderr is not None
    try:
        out, err = Lines(sim.stdout), Lines(sim.stderr)
        out.wait_for(f"mcp: serving the tools on port {port} at /mcp")
        err.wait_for(f"clawsim: device port {port} is reachable at 127.0.0.1:{port}")

        async def session() -> tuple[set[str], str, bool]:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(60.0))
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as c:
                names = {t.name for t in (await c.list_tools()).tools}
                r = await c.call_tool("add", {"a": 19, "b": 23})
                return names, str(r.content[0].text), bool(r.is_error)

        names, text, is_error = asyncio.run(session())
        assert {"add", "system_uptime"} <= names
        assert (text, is_error) == ("42", False)
        sim.stdin.write("/quit\n")
        sim.stdin.close()
        assert sim.wait(60) == 0
        assert TOKEN not in "".join(out.seen + err.seen)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()


def test_sim_mcp_port_in_use_moves_to_a_free_port(tmp_path: Path, mpvm: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        _project(tmp_path, port)
        p = subprocess.run([sys.executable, "-m", "clawgen.cli", "sim", str(tmp_path / "agent.yaml"), "--model",
                            "mock", "--out", str(tmp_path / "out")], input="/quit\n", capture_output=True,
                           text=True, cwd=REPO, timeout=180)
    assert p.returncode == 0, p.stderr
    assert f"clawsim: port {port} is in use on this machine; the device's MCP server gets a free port" in p.stderr
    assert f"clawsim: device port {port} is reachable at 127.0.0.1:" in p.stderr
    assert f"mcp: serving the tools on port {port} at /mcp" in p.stdout
