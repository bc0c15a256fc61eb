"""`clawgen sim --model mock`: a deterministic local stand-in for a model, speaking OpenAI's
chat-completions format or Anthropic's Messages API (whichever the spec's model.api asks).

"read register 0x60004004" -> a hw_register_read tool call; "write register 0x60004004 to 0x1"
-> a hw_register_write tool call; after the tool result comes back, a text answer quoting it.
Anything else gets a short echo. So the device's real HTTP client, JSON handling and tool loop
run with no network and no API key.
"""

from __future__ import annotations

import re
from typing import Any

from clawgen.sim.llmserver import LLMServer, Reply, Request, tool_call, tool_use

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
    """The tools the request offers: OpenAI's {"function": {"name"}} or Anthropic's {"name"}."""
    names = set()
    for t in (req.json or {}).get("tools") or []:
        fn = t.get("function", t) if isinstance(t, dict) else None
        if isinstance(fn, dict) and "name" in fn:
            names.add(str(fn["name"]))
    return names


def _tool_result(message: Any) -> str | None:
    """The text of the tool result a message carries (OpenAI: a "tool" message; Anthropic: a user
    message with a tool_result block), else None."""
    if not isinstance(message, dict):
        return None
    if message.get("role") == "tool":
        return _text(message.get("content"))
    content = message.get("content")
    if message.get("role") == "user" and isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                return _text(block.get("content"))
    return None


def _answer(messages: list[Any], tools: set[str]) -> tuple[str, Any]:
    """What the mock model says: ("text", words) or ("call", (tool, arguments)), the same for
    either wire format."""
    last = messages[-1] if messages else {}
    result = _tool_result(last)
    if result is not None:
        return "text", f"The tool returned: {result}"
    user = next((_text(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user" and _tool_result(m) is None), "")
    m = _WRITE.search(user)
    if m:
        if "hw_register_write" not in tools:
            return "text", "I have no hw_register_write tool on this device."
        return "call", ("hw_register_write", {"address": m.group(1), "value": m.group(2)})
    m = _READ.search(user)
    if m:
        if "hw_register_read" not in tools:
            return "text", "I have no hw_register_read tool on this device."
        return "call", ("hw_register_read", {"address": m.group(1)})
    return "text", (f"(mock model) You said: {user.strip()[:200]}. "
                    "Try \"read register 0x60004004\" or \"write register 0x60004004 to 0x1\".")


def respond(req: Request) -> Reply:
    """OpenAI's POST .../chat/completions or Anthropic's POST .../messages (model.api: anthropic)."""
    anthropic = req.path.endswith("/messages")
    if req.method != "POST" or not (anthropic or req.path.endswith("/chat/completions")):
        return Reply.error(404, "the mock model serves POST .../chat/completions and POST .../messages, "
                           f"not {req.method} {req.path}")
    if not isinstance(req.json, dict) or not isinstance(req.json.get("messages"), list):
        if anthropic:
            return Reply.anthropic_error(400, "invalid_request_error", "request body is not a Messages JSON object")
        return Reply.error(400, "request body is not a chat-completions JSON object")
    messages = req.json["messages"]
    kind, what = _answer(messages, _tool_names(req))
    calls_so_far = sum(1 for m in messages if _tool_result(m) is not None)
    if kind == "text":
        return Reply.message(what) if anthropic else Reply.text(what)
    name, args = what
    if anthropic:
        return Reply.tool_use(tool_use(name, args, f"toolu_{calls_so_far + 1}"))
    return Reply.tool_calls(tool_call(name, args, f"call_{calls_so_far + 1}"))


#: The model URL a `clawgen sim --model mock` build gets. The simulator redirects the device's
#: connections to it to wherever the mock model listens (a free port each run), so the build stays
#: the same from run to run and is not rebuilt each time.
DEVICE_URL = "http://127.0.0.1:9999/v1"
DEVICE_ADDR = ("127.0.0.1", 9999)


def start_mock_model() -> LLMServer:
    """Start the mock model on 127.0.0.1 (a free port); its base URL is `.base_url`."""
    return LLMServer(responder=respond)
