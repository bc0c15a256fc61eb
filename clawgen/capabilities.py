"""Built-in capability bundles: the tools each contributes and its system-prompt fragment.

The device implements each tool in the runtime templates; this table is what the
model is told (rendered once into the static tools JSON at build time).
"""

from __future__ import annotations

from clawgen.model import ToolDef
from clawgen.records import record


@record
class Capability:
    name: str
    prompt: str
    tools: tuple[ToolDef, ...]


# The runtime module implementing each bundle's tools (function name = tool name).
_MODULE = {
    "hw_register_control": "claw_hwtools",
    "hw_datasheet": "claw_hwtools",
    "web_browsing": "claw_webtools",
    "system": "claw_systools",
    "memory": "claw_memory",
}


def _tool(cap: str, name: str, description: str, properties: dict, required: list[str],
          confirm: bool = False) -> ToolDef:
    params = {"type": "object", "properties": properties, "required": required}
    return ToolDef(name=name, description=description, parameters=params, capability=cap, confirm=confirm,
                   module=_MODULE[cap], function=name)


_ADDR = {"type": "string", "description": "Register address (hex, e.g. 0x60004004) or name (e.g. GPIO.OUT)."}

CAPABILITIES: dict[str, Capability] = {
    "hw_register_control": Capability(
        "hw_register_control",
        "You can read and write the chip's memory-mapped registers with hw_register_read and "
        "hw_register_write. Only registers allowed by the device policy can be accessed; report "
        "errors to the user as they are.",
        (
            _tool("hw_register_control", "hw_register_read", "Read a 32-bit hardware register.",
                  {"address": _ADDR}, ["address"]),
            _tool("hw_register_control", "hw_register_write", "Write a 32-bit value to a hardware register.",
                  {"address": _ADDR,
                   "value": {"type": "string", "description": "Value to write (hex like 0x1 or decimal)."}},
                  ["address", "value"]),
        ),
    ),
    "hw_datasheet": Capability(
        "hw_datasheet",
        "Use hw_module_list and hw_register_lookup to find peripherals, register addresses, "
        "bit fields and reset values before touching hardware.",
        (
            _tool("hw_datasheet", "hw_module_list", "List the chip's peripherals the agent may use.", {}, []),
            _tool("hw_datasheet", "hw_register_lookup",
                  "Look up a peripheral, register or field: address, access, reset value, bit fields.",
                  {"query": {"type": "string", "description": "e.g. GPIO, GPIO.OUT or 0x60004004"}},
                  ["query"]),
        ),
    ),
    "web_browsing": Capability(
        "web_browsing",
        "You can fetch web pages with web_fetch (content is truncated) and search with web_search.",
        (
            _tool("web_browsing", "web_fetch", "Fetch a URL over HTTP(S) and return the start of its text.",
                  {"url": {"type": "string", "description": "http:// or https:// URL"}}, ["url"]),
            _tool("web_browsing", "web_search", "Search the web (Brave Search) and return the top results.",
                  {"query": {"type": "string"}}, ["query"]),
        ),
    ),
    "system": Capability(
        "system",
        "You can check the device's uptime and free memory, and reboot it (the user is asked first).",
        (
            _tool("system", "system_uptime", "Seconds since the device booted.", {}, []),
            _tool("system", "system_free_heap", "Free and allocated MicroPython heap in bytes.", {}, []),
            _tool("system", "system_reboot", "Reboot the device.", {}, [], confirm=True),
        ),
    ),
    "memory": Capability(
        "memory",
        "You have a long-term memory that survives reboots: save short facts worth keeping with "
        "memory_save, find them with memory_search, and remove wrong or outdated ones with memory_delete "
        "(by the id in brackets). The newest notes are listed below when there are any.",
        (
            _tool("memory", "memory_save", "Save a short note to long-term memory; returns its id.",
                  {"text": {"type": "string", "description": "The note, one fact or preference."}}, ["text"]),
            _tool("memory", "memory_search",
                  "Find saved notes containing every word of the query (case-insensitive), newest first; "
                  "an empty query lists the newest notes.",
                  {"query": {"type": "string"}}, ["query"]),
            _tool("memory", "memory_delete", "Delete a saved note by its id.",
                  {"id": {"type": "integer", "description": "The note's id, as memory_save or memory_search gave it."}},
                  ["id"]),
        ),
    ),
}

REGISTER_CAPABILITIES = ("hw_register_control", "hw_datasheet")


def builtin_tool_names() -> set[str]:
    return {t.name for c in CAPABILITIES.values() for t in c.tools}
