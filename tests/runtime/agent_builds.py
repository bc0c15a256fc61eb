"""Helpers for the runtime tests: write a spec (and handler files) into a directory and build it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from clawgen.build import build_spec

# A custom tool module used by several tests (runs on the VM).
HANDLERS = '''
_state = {"relay": False, "calls": 0}


def set_relay(on):
    _state["relay"] = bool(on)
    _state["calls"] += 1
    return {"relay": "on" if _state["relay"] else "off", "calls": _state["calls"]}


def big_text(n):
    return "0123456789" * n


def explode(reason, **context):  # (**context: undeclared arguments reach it, ToolDef.extra_args)
    raise ValueError("sensor bus stuck: " + reason + "".join(" %s=%s" % kv for kv in sorted(context.items())))


def add(a, b):
    return a + b
'''

CUSTOM_TOOLS: list[dict[str, Any]] = [
    {"name": "set_relay", "description": "Switch the relay.", "handler": "tools/handlers.py:set_relay",
     "confirm": True,
     "parameters": {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]}},
    {"name": "big_text", "description": "Return a long text.", "handler": "tools/handlers.py:big_text",
     "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
    {"name": "explode", "description": "Always fails.", "handler": "tools/handlers.py:explode",
     "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}},
    {"name": "add", "description": "Add two numbers.", "handler": "tools/handlers.py:add",
     "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a", "b"]}},
]


def make_spec(base_url: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "rt-agent",
        "board": "esp32s3",
        "system_prompt": "You are a test agent.",
        "model": {"base_url": base_url, "model": "test-model", "read_timeout": 3, "connect_timeout": 2},
        "transports": {"uart": True},
        "capabilities": ["system"],
        "tools": CUSTOM_TOOLS,
    }
    spec.update(overrides)
    return spec


def build(tmp: Path, spec: dict[str, Any], secrets: dict[str, str] | None = None) -> Path:
    """Build spec in tmp; returns the output directory (bytecode in out/mpy)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tools").mkdir(exist_ok=True)
    (tmp / "tools" / "handlers.py").write_text(HANDLERS)
    if secrets:
        (tmp / "secrets.yaml").write_text(yaml.safe_dump(secrets))
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    # Values written as "!secret NAME" become real !secret tags.
    text = re.sub(r"'(!secret [A-Za-z0-9_]+)'", r"\1", text)
    (tmp / "agent.yaml").write_text(text)
    res = build_spec(tmp / "agent.yaml", out_dir=tmp / "out", images=False, force=True)
    return res.out_dir
