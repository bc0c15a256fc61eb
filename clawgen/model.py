"""The build plan: everything the templates see, decided at build time.

Templates get ``plan`` (a ``Plan``) and ``header`` (the provenance header). Nothing here
holds a secret value: secrets appear only as ``SecretSlot`` NVS keys.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawgen.records import record
from clawgen.spec import Limits  # the spec's limits are the plan's: one definition
from clawgen.triggers import TriggerDef

__all__ = ["NVS_NAMESPACE", "AuditPlan", "Board", "CustomModule", "HookDef", "Limits", "McpServer", "MemoryPlan",
           "ModelEndpoint", "Network", "Ota", "Persistence", "Plan", "Routing", "SecretSlot", "Telegram", "Tls",
           "ToolDef", "Transports", "TriggerDef", "Web"]

if TYPE_CHECKING:
    from clawgen.chips.policy import PolicyTable

NVS_NAMESPACE = "clawgen"


@record
class Board:
    name: str
    title: str
    chip: str
    chip_id: int
    mpy_arch: str
    micropython: str
    mpy_version: tuple[int, int]
    firmware: dict[str, Any]
    flash_sizes: tuple[int, ...]
    default_flash: int
    psram_supported: bool
    psram_default: bool
    partitions: dict[str, Any]
    filesystem: dict[str, Any]
    heap: dict[str, int]
    bundle_budget: int
    limits: dict[str, int]
    data: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)  # the raw board file

    def vfs_size(self, flash_size: int) -> int:
        return flash_size - int(self.partitions["vfs"]["offset"])


@record
class SecretSlot:
    key: str  # NVS key (at most 15 characters)
    spec_path: str  # where the spec asked for it, e.g. "model.api_key"
    name: str  # the key in secrets.yaml


@record
class ModelEndpoint:
    index: int  # 0 = primary, then fallbacks in order
    provider: str  # "openai-compatible"
    base_url: str
    tls: bool
    host: str
    port: int
    path_prefix: str  # e.g. "/v1"; requests go to path_prefix + "/chat/completions"
    model: str
    max_tokens: int
    temperature: float | None
    connect_timeout: float
    read_timeout: float
    api_key_slot: str | None  # NVS key of the API key, None for keyless local servers
    headers: dict[str, str]  # extra non-secret headers
    api: str = "openai"  # wire format: "openai" | "anthropic" (the device adapter claw_<api>)
    light: bool = False  # model.light: the cheap model for easy turns, last in Plan.models


@record
class Routing:
    """Cheap-first routing rendered for the device: integer weights in per mille (summing to 1000),
    so the score is computed the same on every port (no float rounding differences)."""

    threshold: int  # per mille: a turn scoring below goes to the light model
    w_length: int
    w_code: int
    w_tools: int
    w_depth: int
    long_message: int  # characters
    deep_conversation: int  # turns
    tool_window: int  # turns


@record
class Network:
    ssid_slot: str | None
    password_slot: str | None
    hostname: str
    connect_retries: int


@record
class Transports:
    uart: bool
    telnet_port: int | None
    telnet_password_slot: str | None  # NVS key of the Telnet password; None: no password


@record
class Telegram:
    """The Telegram channel (claw_telegram): the Bot API server, the NVS key of the token, who may talk."""

    host: str
    port: int
    tls: bool
    path_prefix: str  # of transports.telegram.api; requests go to {prefix}/bot<token>/<method>
    token_slot: str  # NVS key of the bot token
    allow_chats: tuple[int, ...]
    poll_timeout: int  # seconds of one getUpdates long poll
    poll_bytes: int  # the fixed buffer getUpdates answers are read into (larger ones are cut and skipped)
    send_bytes: int  # the fixed buffer of a sendMessage request (and its answer)


@record
class Ota:
    port: int
    key_slot: str  # NVS key of the HMAC key
    confirm_timeout: int  # seconds


@record
class McpServer:
    port: int
    token_slot: str  # NVS key of the bearer token
    allow_confirm: bool  # confirm: true tools callable over MCP
    max_clients: int  # connection slots
    tools_json: str  # the tools/list "tools" array (clawgen.mcpserver.tools_json), the device file's text
    allow_origins: tuple[str, ...] = ()  # lower-cased web origins an Origin header may name (others: 403)


@record
class Persistence:
    mode: str  # "none" | "flash"
    max_bytes: int
    path: str


@record
class Tls:
    verify: bool
    ca_certs: str  # PEM text (may hold several certificates); "" when no endpoint uses TLS


@record
class Web:
    fetch_max_bytes: int
    search_key_slot: str | None


@record
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]
    capability: str | None  # the bundle it comes from; None for a custom tool
    confirm: bool
    module: str | None = None  # custom tools: module in the bundle holding the handler
    function: str | None = None
    # The device passes arguments the parameters do not declare to the handler (it takes
    # **kwargs, or a decorator may change its signature, and the parameters do not say
    # additionalProperties: false); otherwise it refuses them (plan._tools).
    extra_args: bool = False


@record
class HookDef:
    """A hooks: handler: where it is called (clawgen.spec.HOOK_POINTS), the bundled module and function."""

    point: str
    module: str
    function: str
    handler: str  # the spec's file.py:function, for messages


@record
class MemoryPlan:
    """The memory capability's notes file (claw_memory)."""

    path: str
    max_bytes: int
    note_bytes: int
    prompt_bytes: int


@record
class AuditPlan:
    """The audit ring file (claw_audit): entries of entry_bytes each."""

    path: str
    entries: int
    entry_bytes: int


@record
class CustomModule:
    module: str  # module name in the bundle
    source: Path  # the handler file from the user's project


@record
class Plan:
    """Everything the templates read: a pure function of the resolved spec (see plan.make_plan)."""

    name: str
    spec_file: str
    board: Board
    flash_size: int
    psram: bool
    system_prompt: str
    models: list[ModelEndpoint]
    network: Network
    transports: Transports
    capabilities: list[str]
    tools: list[ToolDef]
    tools_json: str
    limits: Limits
    persistence: Persistence
    debug_trace: bool
    tls: Tls
    web: Web
    secrets: list[SecretSlot]
    custom_modules: list[CustomModule]
    chip: str
    registers: PolicyTable | None = None  # the register policy when a register capability is on
    routing: Routing | None = None  # when the spec has model.light
    ota: Ota | None = None  # when the spec has ota: (OTA updates, claw_ota)
    mcp: McpServer | None = None  # when the spec has mcp_server: (claw_mcp)
    telegram: Telegram | None = None  # when the spec has transports.telegram (claw_telegram)
    hooks: tuple[HookDef, ...] = ()  # hooks: handlers (claw_hooks)
    hook_limit_ms: int = 0  # hooks.limit_ms
    memory: MemoryPlan | None = None  # when the memory capability is on (claw_memory)
    audit: AuditPlan | None = None  # when the agent has tools and audit is enabled (claw_audit)
    triggers: tuple[TriggerDef, ...] = ()  # triggers: (claw_triggers; clawgen/triggers.py)

    @property
    def apis(self) -> set[str]:
        """The wire formats the endpoints speak (one adapter module each)."""
        return {m.api for m in self.models}

    @property
    def sessions(self) -> int:
        """Conversations the device keeps at most, each with its own history and log (claw_main's
        _MAX_SESSIONS): the console, the Telnet client slot, each allowed Telegram chat."""
        return (1 + (1 if self.transports.telnet_port else 0)
                + (len(self.telegram.allow_chats) if self.telegram is not None else 0)
                + (1 if any(t.to == "log" for t in self.triggers) else 0))  # triggers to: log share one
