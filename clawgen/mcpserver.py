"""The device's MCP server (``mcp_server:``, templates/app/claw_mcp.py.j2): its wire constants, one
source for the plan's checks, the secret-value check and the device module, and the tools list it
serves (rendered at build time into the device file TOOLS_PATH).

Transport: MCP's Streamable HTTP at ``/mcp``, JSON responses only (no SSE stream), one request per
connection (``Connection: close``), no session ids (the server keeps no per-client state).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clawgen import __version__

if TYPE_CHECKING:
    from clawgen.model import ToolDef

PATH = "/mcp"  # the endpoint
TOKEN_NVS_SLOT = "mcp_token"  # NVS key of the bearer token
TOKEN_MIN_BYTES = 16
TOKEN_MAX_BYTES = 128  # the Authorization line must fit the device's header line
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"  # RFC 6750 b64token
# Protocol revisions the device answers, newest first: an initialize asking for one of them gets it,
# any other gets the first (the client then decides whether it can go on).
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
TOOLS_PATH = "/claw_mcp.json"  # the tools/list result's "tools" array as a device file
# The JSON-RPC envelope the device writes around the tools array (claw_mcp._tools_list), at most.
TOOLS_ENVELOPE_BYTES = 96
# Bytes at the start of the request buffer kept for a reply's status line and headers: the body is
# written after them and the head right before the body.
HEAD_RESERVE = 160
IDLE_MS = 5000  # a connection that sends nothing for this long is dropped
REQUEST_MS = 10000  # the longest one request may take to arrive and its reply to go out
SERVER_VERSION = __version__  # serverInfo.version (the agent's name is serverInfo.name)


def tools_json_of(tools: Sequence[ToolDef], allow_confirm: bool) -> str:
    """The tools as MCP's tools/list gives them ({name, description, inputSchema}); tools marked
    ``confirm: true`` only when the spec lets MCP clients call them. A tool that refuses arguments
    it does not declare (not ``extra_args``) says so: ``additionalProperties: false``."""
    arr = [{"name": t.name, "description": t.description, "inputSchema": _input_schema(t)}
           for t in tools if allow_confirm or not t.confirm]
    return json.dumps(arr, separators=(",", ":"), ensure_ascii=False)


def _input_schema(t: ToolDef) -> dict[str, Any]:
    if t.extra_args or "additionalProperties" in t.parameters:
        return t.parameters
    return {**t.parameters, "additionalProperties": False}
