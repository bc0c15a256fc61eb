"""Which modules make up the app bundle, from which templates, and where they go on the device.

The runtime is one module per concern (docs/runtime.md); modules a capability needs are only
shipped when the spec enables it, so the bundle stays within the board's .mpy budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from clawgen.mcpserver import TOOLS_PATH as MCP_TOOLS_PATH
from clawgen.model import Plan
from clawgen.records import record
from clawgen.regtab import TAB_PATH


@record
class AppModule:
    name: str  # module name on the device
    template: str  # path under templates/
    device_path: str  # where it lives on the device filesystem
    compile: bool = True  # False: shipped as source (boot.py / main.py must be)
    data: bool = False  # a data file (not Python): shipped as rendered, named `name` as is
    # A data file that is plan data as it is (no template, no Jinja): its text, made by this function.
    make: Callable[[Plan], str] | None = None

    @property
    def source_rel(self) -> str:
        """The rendered file, relative to the build output."""
        return f"app/{self.name}" if self.data else f"app/{self.name}.py"

    @property
    def artifact(self) -> str:
        """The build output file that goes to device_path."""
        return f"mpy/{self.name}.mpy" if self.compile else self.source_rel


CA_PATH = "/ca.pem"  # the device file with the build's CA certificates (claw_config.CA_PATH)
PROMPT_PATH = "/claw_prompt.json"  # the system message and tools JSON (claw_config.PROMPT_PATH)
# The prompt file begins with its index: the byte lengths of its three parts, each written in
# PROMPT_INDEX_DIGITS decimal digits and followed by a space (the last by a newline). The device
# reads it at boot (claw_config), so an edit of the prompt or of a tool description changes this
# file only: no module is rendered or compiled again, and an OTA update sends just this file.
PROMPT_INDEX_DIGITS = 7  # up to 9,999,999 bytes each
PROMPT_INDEX_BYTES = 3 * (PROMPT_INDEX_DIGITS + 1)


@record
class PromptFile:
    """The request body's two big build-time constants as one device file, streamed into the
    request buffer (claw_config.Stored) instead of sitting in the heap as bytes constants. Offsets
    are from the start of the file, its index (PROMPT_INDEX_BYTES) included."""

    system_msg: str  # {"role": "system", "content": ...} as JSON
    tools_json: str  # the request's "tools" array
    anthropic_tools: str = ""  # the tools array as Anthropic's Messages API wants it; "" when no endpoint does

    @property
    def index(self) -> str:
        """The file's first line: the byte lengths of the system message and the two tools arrays."""
        sizes = (self.system_bytes, self.tools_bytes, self.anthropic_tools_bytes)
        if max(sizes) >= 10 ** PROMPT_INDEX_DIGITS:
            raise ValueError(f"a prompt file part of {max(sizes)} bytes does not fit its index")
        return " ".join(f"{n:0{PROMPT_INDEX_DIGITS}d}" for n in sizes) + "\n"

    @property
    def text(self) -> str:
        return self.index + self.system_msg + self.tools_json + self.anthropic_tools

    @property
    def anthropic_tools_bytes(self) -> int:
        return len(self.anthropic_tools.encode("utf-8"))

    @property
    def system_text_offset(self) -> int:
        """Where the system prompt's JSON string starts in the file (Anthropic's top-level "system")."""
        return PROMPT_INDEX_BYTES + SYSTEM_TEXT_OFFSET

    @property
    def system_text_bytes(self) -> int:
        return self.system_bytes - SYSTEM_TEXT_OFFSET - 1  # less the closing brace

    @property
    def system_bytes(self) -> int:
        return len(self.system_msg.encode("utf-8"))

    @property
    def tools_bytes(self) -> int:
        return len(self.tools_json.encode("utf-8"))


SYSTEM_MSG_HEAD = '{"role":"system","content":'
SYSTEM_TEXT_OFFSET = len(SYSTEM_MSG_HEAD)  # where the system prompt's JSON string starts in the message


def anthropic_tools_json(plan: Plan) -> str:
    """The tools as Anthropic's Messages API takes them: {name, description, input_schema}."""
    arr = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in plan.tools]
    return json.dumps(arr, separators=(",", ":"), ensure_ascii=False)


def prompt_file(plan: Plan) -> PromptFile:
    """Jinja global ``prompt_file(plan)`` (claw_config.py and claw_prompt.json render from it)."""
    system = json.dumps({"role": "system", "content": plan.system_prompt}, separators=(",", ":"),
                        ensure_ascii=False)
    assert system.startswith(SYSTEM_MSG_HEAD)
    anthropic = anthropic_tools_json(plan) if "anthropic" in plan.apis and plan.tools else ""
    return PromptFile(system, plan.tools_json, anthropic)

def prompt_text(plan: Plan) -> str:
    """The prompt file's text (its index first): the app module claw_prompt.json."""
    return prompt_file(plan).text


# The core runtime, always shipped (order: dependencies first, for readability only).
CORE_MODULES = (
    "claw_config",  # build-time constants (limits, endpoints, tools JSON)
    "claw_log",  # log lines, debug trace, secret redaction
    "claw_loop",  # the cooperative event loop (docs/runtime.md, "The event loop")
    "claw_buf",  # the fixed buffers
    "claw_http",  # HTTP/1.1 client over socket/ssl
    "claw_httpx",  # its exchange (connect, send, read the response), imported while an exchange runs
    "claw_openai",  # OpenAI chat-completions wire format (the default provider adapter)
    "claw_tls",  # SSL context and CA loading, imported by claw_http at the first TLS connection only
    "claw_neterr",  # the HTTP client's error texts, imported by claw_http only when an exchange failed
    "claw_session",  # bounded history + persistence log
    "claw_limits",  # model-request and triggered-turn rate limits, the boot-loop guard (limits.*)
    "claw_tools",  # static tool table, dispatch, confirmation, audit entries
    "claw_toolx",  # claw_tools' argument check and refusal texts, imported for the moment they are needed
    "claw_agent",  # the agent loop with fallbacks
    "claw_agentx",  # the words of the turn's rare paths, imported for the moment one is needed
    "claw_commands",  # /help /status /tools /reset /quit
    "claw_console",  # UART edge (the simulator swaps it)
    "claw_transport",  # UART and Telnet transports
    "claw_boot",  # Wi-Fi, clock, NVS secrets
    "claw_bootmsg",  # the words of a boot that failed, imported only then
    "claw_main",  # boot + serving loop
)

# The wire-format adapter of each model.api, shipped only when an endpoint uses it.
ADAPTER_MODULES: dict[str, str] = {
    "openai": "claw_openai",  # OpenAI chat completions
    "anthropic": "claw_anthropic",  # Anthropic Messages
}

# Built-in tool implementations per capability bundle.
CAPABILITY_MODULES: dict[str, tuple[str, ...]] = {
    "hw_register_control": ("claw_hwtools", "clawhw", "clawreg", "clawsheet"),
    "hw_datasheet": ("claw_hwtools", "clawhw", "clawreg", "clawsheet"),
    "web_browsing": ("claw_webtools",),
    "system": ("claw_systools",),
    "memory": ("claw_memory",),
}


def _lib(name: str) -> AppModule:
    return AppModule(name, f"app/{name}.py.j2", f"/lib/{name}.mpy")


def app_modules(plan: Plan) -> list[AppModule]:
    mods = [
        AppModule("boot", "app/boot.py.j2", "/boot.py", compile=False),
        AppModule("main", "app/main.py.j2", "/main.py", compile=False),
    ]
    names = list(CORE_MODULES)
    # Another wire-format adapter when an endpoint's model.api needs it (claw_agent._ADAPTERS).
    for api in sorted(plan.apis):
        if ADAPTER_MODULES[api] not in names:
            names.insert(names.index("claw_session"), ADAPTER_MODULES[api])
    for cap in plan.capabilities:
        for name in CAPABILITY_MODULES.get(cap, ()):
            if name not in names:
                names.append(name)
    if plan.hooks:
        names.insert(names.index("claw_tools"), "claw_hooks")  # hooks: handlers (claw_hooks)
    if plan.audit is not None:
        names.insert(names.index("claw_tools"), "claw_audit")  # the audit ring of tool calls
    if plan.transports.telnet_password_slot:
        names.insert(names.index("claw_transport") + 1, "claw_login")  # the Telnet password, while one logs in
    if plan.ota is not None:
        names.append("claw_ota")  # OTA updates (docs/ota.md)
    if plan.telegram is not None:
        names.append("claw_telegram")  # the Telegram channel (transports.telegram)
    if plan.mcp is not None:
        names.append("claw_mcp")  # the MCP server (mcp_server:, clawgen/mcpserver.py)
    if plan.triggers:
        names.append("claw_triggers")  # triggers: (clawgen/triggers.py)
        if any(t.kind == "watch" for t in plan.triggers):  # watches read through the register policy
            names += [n for n in ("clawhw", "clawreg") if n not in names]
    if "clawreg" in names:
        # The register layer in three: the table file's reader (clawtab, all a datasheet lookup
        # needs), the policy (clawreg), its rare paths (clawregx: write_field, the refusal messages).
        names.insert(names.index("clawreg"), "clawtab")
        names.insert(names.index("clawreg") + 1, "clawregx")
    mods += [_lib(n) for n in names]
    mods.append(AppModule("claw_prompt.json", "", PROMPT_PATH, compile=False, data=True, make=prompt_text))
    if plan.mcp is not None:
        # The tools/list "tools" array, streamed from the file into the reply (claw_mcp).
        mods.append(AppModule("claw_mcp.json", "app/claw_mcp.json.j2", MCP_TOOLS_PATH, compile=False, data=True))
    if "clawreg" in names:
        # The register tables as a file read by offset (clawgen/regtab.py): as constants of
        # clawreg/clawsheet they would sit in the GC heap once a register tool is used.
        mods.append(AppModule("clawreg.tab", "app/clawreg.tab.j2", TAB_PATH, compile=False, data=True))
    if plan.tls.verify and plan.tls.ca_certs:
        # CA certificates as a file, read only when the first TLS connection is made: as a str
        # constant they cost ~6 KB of the .mpy budget and as much heap from boot on.
        mods.append(AppModule("ca.pem", "app/ca.pem.j2", CA_PATH, compile=False, data=True))
    return mods
