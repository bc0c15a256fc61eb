"""`clawgen sim --model mock`: a deterministic local stand-in for an OpenAI-compatible model.

"read register 0x60004004" -> a hw_register_read tool call; "write register 0x60004004 to 0x1"
-> a hw_register_write tool call; after the tool result comes back, a text answer quoting it.
Anything else gets a short echo. So the device's real HTTP client, JSON handling and tool loop
run with no network and no API key.
"""

from __future__ import annotations

import re
from typing import Any

from clawgen.sim.llmserver import LLMServer, Reply, Request, tool_call

_READ = re.compile(r"\bread\s+(?:the\s+)?register\s+(0x[0-9a-fA-F]+|[A-Za-z_][\w.]*)", re.I)
_WRITE = re.compile(r"\b(?:write|set)\s+(?:the\s+)?register\s+(0x[0-9a-fA-F]+|[A-Za-z_][\w.]*)\s+(?:to\s+)?"
                    r"(0x[0-9a-fA-F]+|\d+)", re.I)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _tool_names(req: Request) -> set[str]:
    names = set()
    for t in (req.json or {}).get("tools") or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and "name" in fn:
            names.add(str(fn["name"]))
    return names


def respond(req: Request) -> Reply:
    if req.method != "POST" or not req.path.endswith("/chat/completions"):
        return Reply.error(404, f"the mock model serves POST .../chat/completions, not {req.method} {req.path}")
    if not isinstance(req.json, dict) or not isinstance(req.json.get("messages"), list):
        return Reply.error(400, "request body is not a chat-completions JSON object")
    messages = req.json["messages"]
    last = messages[-1] if messages else {}
    calls_so_far = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool")
    if isinstance(last, dict) and last.get("role") == "tool":
        return Reply.text(f"The tool returned: {_text(last.get('content'))}")
    user = next((_text(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    tools = _tool_names(req)
    call_id = f"call_{calls_so_far + 1}"
    m = _WRITE.search(user)
    if m:
        if "hw_register_write" not in tools:
            return Reply.text("I have no hw_register_write tool on this device.")
        return Reply.tool_calls(tool_call("hw_register_write", {"address": m.group(1), "value": m.group(2)},
                                          call_id))
    m = _READ.search(user)
    if m:
        if "hw_register_read" not in tools:
            return Reply.text("I have no hw_register_read tool on this device.")
        return Reply.tool_calls(tool_call("hw_register_read", {"address": m.group(1)}, call_id))
    return Reply.text(f"(mock model) You said: {user.strip()[:200]}. "
                      "Try \"read register 0x60004004\" or \"write register 0x60004004 to 0x1\".")


#: The model URL a `clawgen sim --model mock` build gets. The simulator redirects the device's
#: connections to it to wherever the mock model listens (a free port each run), so the build stays
#: the same from run to run and is not rebuilt each time.
DEVICE_URL = "http://127.0.0.1:9999/v1"
DEVICE_ADDR = ("127.0.0.1", 9999)


def start_mock_model() -> LLMServer:
    """Start the mock model on 127.0.0.1 (a free port); its base URL is `.base_url`."""
    return LLMServer(responder=respond)
