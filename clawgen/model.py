"""The build plan: everything the templates see, decided at build time.

Templates get ``plan`` (a ``Plan``) and ``header`` (the provenance header). Nothing here
holds a secret value: secrets appear only as ``SecretSlot`` NVS keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NVS_NAMESPACE = "clawgen"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class SecretSlot:
    key: str  # NVS key (at most 15 characters)
    spec_path: str  # where the spec asked for it, e.g. "model.api_key"
    name: str  # the key in secrets.yaml


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Network:
    ssid_slot: str | None
    password_slot: str | None
    hostname: str
    connect_retries: int


@dataclass(frozen=True)
class Transports:
    uart: bool
    telnet_port: int | None


@dataclass(frozen=True)
class Limits:
    request_bytes: int
    response_bytes: int
    content_bytes: int
    tool_args_bytes: int
    tool_result_bytes: int
    history_messages: int
    history_message_bytes: int
    max_tool_calls: int
    max_iterations: int

    def buffers(self) -> dict[str, int]:
        """The buffers the device allocates once at boot, by name."""
        return {
            "request": self.request_bytes,
            "response": self.response_bytes,
            "content": self.content_bytes,
            "tool_args": self.tool_args_bytes,
            "tool_result": self.tool_result_bytes,
            "console_line": self.content_bytes,  # the UART's line editor buffer
        }

    def static_ram(self) -> int:
        """Bytes of RAM the fixed buffers and the bounded history take at most."""
        return sum(self.buffers().values()) + self.history_messages * self.history_message_bytes


@dataclass(frozen=True)
class Persistence:
    mode: str  # "none" | "flash"
    max_bytes: int
    path: str


@dataclass(frozen=True)
class Tls:
    verify: bool
    ca_certs: str  # PEM text (may hold several certificates); "" when no endpoint uses TLS


@dataclass(frozen=True)
class Web:
    fetch_max_bytes: int
    search_key_slot: str | None


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]
    capability: str | None  # the bundle it comes from; None for a custom tool
    confirm: bool
    module: str | None = None  # custom tools: module in the bundle holding the handler
    function: str | None = None


@dataclass(frozen=True)
class CustomModule:
    module: str  # module name in the bundle
    source: Path  # the handler file from the user's project


@dataclass
class Plan:
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
    registers: Any = None  # clawgen.chips.policy.PolicyTable when the chip database is available
    extra: dict[str, Any] = field(default_factory=dict)
