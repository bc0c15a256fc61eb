"""The resolved agent spec, typed: frozen dataclasses, the one source of every default.

``resolve`` turns a schema-valid ``Document`` into an ``AgentSpec``; ``plan`` reads only that
(plus a ``Locator`` to put FILE:LINE:COL on its diagnostics). Each section of the YAML is one
dataclass; a field's default is the spec's default, and its spec path (``limits.request_bytes``)
is ``spec_path(Section, "field")``, derived from the section's ``PATH``.

schemas/agent.schema.json repeats the static defaults for editors; tests/spec/test_typed_spec.py
checks that every schema ``default`` equals the dataclass default and that every dataclass default
of a schema property appears in the schema, so the two cannot drift.

A field whose default depends on the board or on another field has no default here; it carries
``metadata["default_from"]`` saying where resolve takes it from (and the schema gives none).

Adding a section (telegram, triggers, ...): one dataclass below with its ``PATH``, one field on
``AgentSpec``, one block in the schema. ``from_spec`` builds it from the YAML value, ``to_spec``
prints it for `clawgen config`; neither needs to know about it. A section written either as a
scalar or as a mapping (``debug: true`` or ``debug: {trace: true}``) names the field the scalar
sets in ``SHORTHAND``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from clawgen.diagnostics import Diagnostic, Mark
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.records import record

T = TypeVar("T")


def derived(source: str) -> dict[str, str]:
    """Metadata of a field resolve fills in from ``source`` (the board, another field): no static default."""
    return {"default_from": source}


# -- sections ------------------------------------------------------------------------------------

@record(kw_only=True)
class Hardware:
    PATH: ClassVar[str] = "hardware"
    flash_size: str = field(metadata=derived("board"))  # "8MB": the spec's spelling; Resolved.flash_size is the bytes
    psram: bool = field(metadata=derived("board"))


@record(kw_only=True)
class Endpoint:
    """One chat-completions endpoint. A fallback takes every key it leaves out from the primary."""

    PATH: ClassVar[str] = "model.fallbacks[]"
    provider: str = "openai-compatible"
    api: str = "openai"  # the wire format: "openai" (chat completions) | "anthropic" (Messages)
    base_url: str = field(metadata=derived("model"))
    model: str
    api_key: Secret | None = None
    max_tokens: int = 512
    temperature: float | None = None
    connect_timeout: float = 10
    read_timeout: float = 60
    headers: dict[str, str] = field(default_factory=dict)


@record(kw_only=True)
class RoutingWeights:
    """How much each feature of a turn counts in its routing score (normalised by their sum)."""

    PATH: ClassVar[str] = "model.routing.weights"
    length: float = 0.3  # the user message's length, saturating at Routing.long_message characters
    code: float = 0.3  # the message holds a code block (```)
    tools: float = 0.25  # share of the last Routing.tool_window turns that called tools
    depth: float = 0.15  # conversation depth, saturating at Routing.deep_conversation turns


@record(kw_only=True)
class Routing:
    """Cheap-first routing: a turn whose score (0..1) is below threshold goes to model.light."""

    PATH: ClassVar[str] = "model.routing"
    threshold: float = 0.3
    weights: RoutingWeights = field(default_factory=RoutingWeights)
    long_message: int = 400  # characters at which the length feature is 1
    deep_conversation: int = 8  # turns in the history at which the depth feature is 1
    tool_window: int = 3  # recent turns looked at for tool calls


@record(kw_only=True)
class Model(Endpoint):
    PATH: ClassVar[str] = "model"
    base_url: str
    fallbacks: tuple[Endpoint, ...] = ()
    light: Endpoint | None = None  # the cheap model for easy turns (model.routing decides)
    routing: Routing = field(default_factory=Routing)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The primary, then the fallbacks in order."""
        return (self, *self.fallbacks)


@record(kw_only=True)
class Network:
    PATH: ClassVar[str] = "network"
    ssid: Secret | str | None = None
    password: Secret | None = None
    hostname: str = field(metadata=derived("name"))
    connect_retries: int = 5


@record(kw_only=True)
class Uart:
    PATH: ClassVar[str] = "transports.uart"
    SHORTHAND: ClassVar[str] = "enabled"
    enabled: bool = True


@record(kw_only=True)
class Telnet:
    PATH: ClassVar[str] = "transports.telnet"
    SHORTHAND: ClassVar[str] = "enabled"
    enabled: bool = True
    port: int = 2323
    # A connection's first line must be this before it gets the console (a !secret; none: no password).
    password: Secret | str | None = None


TELEGRAM_API = "https://api.telegram.org"  # the Bot API's base URL (transports.telegram.api)


@record(kw_only=True)
class Telegram:
    """The Telegram channel (Bot API long polling, claw_telegram); no ``telegram:`` block means none."""

    PATH: ClassVar[str] = "transports.telegram"
    token: Secret | str  # the bot token from @BotFather: must be a !secret (plan says so otherwise)
    allow_chats: tuple[int, ...]  # chat ids allowed to talk to the agent; others get one refusal line
    api: str = TELEGRAM_API
    poll_timeout_s: int = 50  # getUpdates long-poll timeout (seconds)


@record(kw_only=True)
class Transports:
    """A transport left out of a ``transports:`` block is off; no block at all means the UART."""

    PATH: ClassVar[str] = "transports"
    uart: Uart = field(default_factory=lambda: Uart(enabled=False))
    telnet: Telnet = field(default_factory=lambda: Telnet(enabled=False))
    telegram: Telegram | None = None


@record(kw_only=True)
class Web:
    PATH: ClassVar[str] = "web"
    fetch_max_bytes: int = field(metadata=derived("limits.tool_result_bytes"))
    brave_api_key: Secret | None = None


@record(kw_only=True)
class Tls:
    PATH: ClassVar[str] = "tls"
    verify: bool = True
    ca_certs: str | None = None  # a PEM file relative to the spec; None: built-in roots


@record(kw_only=True)
class PolicyRule:
    PATH: ClassVar[str] = "registers.allow[]"
    SHORTHAND: ClassVar[str] = "match"
    match: str
    access: str = "read-write"


@record(kw_only=True)
class Registers:
    PATH: ClassVar[str] = "registers"
    defaults: bool = True
    allow: tuple[PolicyRule, ...] = ()
    deny: tuple[PolicyRule, ...] = ()


@record(kw_only=True)
class Tool:
    PATH: ClassVar[str] = "tools[]"
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    handler: str  # path/to/file.py:function, relative to the spec
    confirm: bool = False

    @property
    def handler_file(self) -> str:
        return self.handler.rpartition(":")[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rpartition(":")[2]


@record(kw_only=True)
class BootLoop:
    """The boot-loop guard (claw_limits): ``reboots`` boots in a row, none of which ran ``minutes``
    minutes, suspend the triggers until ``/triggers resume`` on the console."""

    PATH: ClassVar[str] = "limits.boot_loop"
    reboots: int = 5
    minutes: int = 10


@record(kw_only=True)
class Limits:
    """Fixed buffer sizes and bounds (defaults from the board file) and the rate limits (claw_limits)."""

    PATH: ClassVar[str] = "limits"
    request_bytes: int = field(metadata=derived("board"))
    response_bytes: int = field(metadata=derived("board"))
    content_bytes: int = field(metadata=derived("board"))
    tool_args_bytes: int = field(metadata=derived("board"))
    tool_result_bytes: int = field(metadata=derived("board"))
    history_messages: int = field(metadata=derived("board"))
    history_message_bytes: int = field(metadata=derived("board"))
    max_tool_calls: int = field(metadata=derived("board"))
    max_iterations: int = field(metadata=derived("board"))
    # Rate limits, counted on the device and kept across reboots (claw_limits); zclaw's defaults.
    model_requests_per_hour: int = 100
    model_requests_per_day: int = 1000
    triggered_turns_per_hour: int = 20  # turns started by triggers: (triggers:)
    boot_loop: BootLoop = field(default_factory=BootLoop)

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


@record(kw_only=True)
class Persistence:
    PATH: ClassVar[str] = "persistence"
    SHORTHAND: ClassVar[str] = "mode"
    mode: str  # "none" | "flash"
    max_bytes: int = 16384


@record(kw_only=True)
class Ota:
    """OTA updates of the app bundle (docs/ota.md); no ``ota:`` block means none."""

    PATH: ClassVar[str] = "ota"
    port: int = 8266
    key: Secret | str
    confirm_timeout: int = 120  # seconds a new bundle has to reach "ready" before it is rolled back


@record(kw_only=True)
class McpServer:
    """The MCP server (Streamable HTTP at /mcp, claw_mcp, docs/spec.md); no ``mcp_server:`` block means none."""

    PATH: ClassVar[str] = "mcp_server"
    port: int = 8765
    token: Secret | str  # the bearer token clients send: must be a !secret (plan says so otherwise)
    allow_confirm: bool = False  # confirm: true tools callable over MCP (the client's user confirms)
    max_clients: int = 2  # connection slots (accepted connections served in turn)
    allow_origins: tuple[str, ...] = ()  # web origins allowed in an Origin header (others: 403); none by default


@record(kw_only=True)
class Memory:
    """Limits of the memory capability's notes file (claw_memory); used only with capability memory."""

    PATH: ClassVar[str] = "memory"
    max_bytes: int = 8192  # the notes file on flash, compacted when reached; a save that cannot fit is refused
    note_bytes: int = 512  # the longest note memory_save accepts
    prompt_bytes: int = 1024  # notes (newest first, JSON-escaped) added to the system prompt at each turn


@record(kw_only=True)
class Audit:
    """The audit log of tool calls (claw_audit): a ring file of fixed-size entries."""

    PATH: ClassVar[str] = "audit"
    SHORTHAND: ClassVar[str] = "enabled"
    enabled: bool = True  # on whenever the agent has tools
    entries: int = 64  # entries kept; the oldest is overwritten
    entry_bytes: int = 256  # one entry on flash (longer arguments are cut)


@record(kw_only=True)
class Watch:
    """A register field polled by a trigger (claw_triggers): ``PERIPH.REG.FIELD`` or ``...FIELD[bit]``."""

    PATH: ClassVar[str] = "triggers[].watch"
    field: str  # "GPIO.IN.DATA_NEXT[4]": checked against the chip's SVD and the register policy
    when: str = "changes"  # "changes", or a comparison: "== 1", "!= 0", "> 100", ">= 0x10", "< 5", "<= 5"
    interval: str = "1s"  # how often the field is read (at least 1 s)
    debounce: str = "0ms"  # how long a new value must hold before it counts


@record(kw_only=True)
class Trigger:
    """A turn the agent starts by itself (claw_triggers): on a schedule, at boot, or on a register change."""

    PATH: ClassVar[str] = "triggers[]"
    name: str
    prompt: str
    to: int | str  # a Telegram chat id (in transports.telegram.allow_chats), "console" or "log"
    every: str | None = None  # "30m": a duration of at least 1 minute
    at: str | None = None  # "08:00": local time of day in `timezone`, once the clock is set over NTP
    timezone: str = "UTC"  # an IANA name ("Europe/Berlin") or UTC
    on_boot: bool = False
    watch: Watch | None = None


# The hook points and the keyword arguments the device passes at each (claw_hooks, claw_tools, claw_agent).
HOOK_ARGS: dict[str, tuple[str, ...]] = {
    "before_llm": ("channel", "text", "iteration"),
    "after_llm": ("channel", "content", "tools"),
    "before_tool": ("channel", "tool", "args"),
    "after_tool": ("channel", "tool", "args", "result"),
    "approve_tool": ("channel", "tool", "args"),
}
HOOK_POINTS = tuple(HOOK_ARGS)


@record(kw_only=True)
class Hooks:
    """Python handlers called at points of the agent loop (claw_hooks); no ``hooks:`` block means none."""

    PATH: ClassVar[str] = "hooks"
    before_llm: str | None = None  # path/to/file.py:function, relative to the spec
    after_llm: str | None = None
    before_tool: str | None = None
    after_tool: str | None = None
    approve_tool: str | None = None
    limit_ms: int = 200  # a hook that runs longer is reported once and skipped from then on


@record(kw_only=True)
class Debug:
    PATH: ClassVar[str] = "debug"
    SHORTHAND: ClassVar[str] = "trace"
    trace: bool = False


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant running on a microcontroller."


@record(kw_only=True)
class AgentSpec:
    """The whole resolved spec: every default filled in, secrets still ``Secret`` objects."""

    PATH: ClassVar[str] = ""
    name: str
    board: str = "esp32s3"
    hardware: Hardware = field(metadata=derived("board"))
    chip: str = field(metadata=derived("board"))
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    model: Model
    network: Network = field(metadata=derived("name"))
    transports: Transports = field(default_factory=lambda: Transports(uart=Uart(enabled=True)))
    capabilities: tuple[str, ...] = ()
    web: Web = field(metadata=derived("limits.tool_result_bytes"))
    tls: Tls = field(default_factory=Tls)
    registers: Registers = field(default_factory=Registers)
    tools: tuple[Tool, ...] = ()
    limits: Limits = field(metadata=derived("board"))
    persistence: Persistence = field(default_factory=lambda: Persistence(mode="none"))
    debug: Debug = field(default_factory=Debug)
    ota: Ota | None = None
    mcp_server: McpServer | None = None
    memory: Memory = field(default_factory=Memory)
    audit: Audit = field(default_factory=Audit)
    hooks: Hooks | None = None
    triggers: tuple[Trigger, ...] = ()


# -- the generic part: YAML value <-> dataclass ---------------------------------------------------

def spec_path(cls: type, name: str) -> str:
    """``spec_path(Limits, "request_bytes")`` -> ``"limits.request_bytes"``."""
    base = getattr(cls, "PATH", "")
    return f"{base}.{name}" if base else name


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _hint(cls: type, name: str) -> Any:
    """``_hints(cls)[name]``, evaluating that one annotation only: a section's YAML value sets a few
    of its fields, and evaluating every field's type was half of what resolve took. The names are
    looked up as get_type_hints looks them up for a class: its module's, then the class's own."""
    for klass in cls.__mro__:
        ann = inspect.get_annotations(klass)
        if name in ann:
            one = types.SimpleNamespace(__annotations__={name: ann[name]})
            return typing.get_type_hints(one, dict(vars(klass)), vars(sys.modules[klass.__module__]))[name]
    raise KeyError(f"{cls.__name__} has no field {name!r}")


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def _section_type(tp: Any) -> type | None:
    """The dataclass in ``tp`` (``Tls``, ``Tls | None``), else None."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None


def _convert(tp: Any, value: Any) -> Any:
    sub = _section_type(tp)
    if sub is not None and value is not None:
        return from_spec(sub, value)
    origin = typing.get_origin(tp)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(_convert(item, v) for v in value)
    if origin is dict:
        return dict(value)
    return value


def field_default(f: dataclasses.Field[Any]) -> Any:
    """The static default of a field, or dataclasses.MISSING."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def default_of(cls: type, name: str) -> Any:
    """The static default of field ``name`` of section ``cls``."""
    value = field_default(next(f for f in _fields(cls) if f.name == name))
    if value is dataclasses.MISSING:
        raise KeyError(f"{cls.__name__}.{name} has no static default")
    return value


def from_spec(cls: type[T], value: Any, base: Any = None, **computed: Any) -> T:
    """Build section ``cls`` from its (schema-valid) YAML value.

    Keys the value leaves out take the attribute of ``base`` when given (a fallback takes the
    primary's), else the field's default; ``computed`` supplies the fields resolve derives.
    """
    short = getattr(cls, "SHORTHAND", None)
    if short is not None and not isinstance(value, Mapping):
        value = {short: value}
    raw: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        if f.name in computed:
            kwargs[f.name] = computed[f.name]
        elif f.name in raw:
            kwargs[f.name] = _convert(_hint(cls, f.name), raw[f.name])
        elif base is not None and hasattr(base, f.name):
            kwargs[f.name] = getattr(base, f.name)
    return cls(**kwargs)


def to_spec(value: Any) -> Any:
    """A typed value back as YAML data (dicts in field order, lists), for `clawgen config`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_spec(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, tuple):
        return [to_spec(v) for v in value]
    if isinstance(value, dict):
        return {k: to_spec(v) for k, v in value.items()}
    return value


def walk_fields(cls: type = AgentSpec, prefix: str = "") -> list[tuple[str, type, dataclasses.Field[Any]]]:
    """Every field of the spec tree: (spec path, section class, field), each section before its fields.

    Paths are as written in the spec, with ``[]`` for list items: ``model.fallbacks[].max_tokens``.
    """
    out: list[tuple[str, type, dataclasses.Field[Any]]] = []
    hints = _hints(cls)
    for f in _fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        out.append((path, cls, f))
        tp = hints[f.name]
        sub = _section_type(tp)
        if sub is None and typing.get_origin(tp) is tuple:
            sub = _section_type(typing.get_args(tp)[0])
            path += "[]"
        if sub is not None:
            out.extend(walk_fields(sub, path))
    return out


def _admits_secret(tp: Any) -> bool:
    return tp is Secret or (typing.get_origin(tp) in (typing.Union, types.UnionType) and Secret in typing.get_args(tp))


def secret_paths() -> list[str]:
    """The spec paths that take a ``!secret`` (fields typed ``Secret``): ``model.fallbacks[].api_key``, ..."""
    return [path for path, cls, f in walk_fields() if _admits_secret(_hints(cls)[f.name])]


# -- where things are written ---------------------------------------------------------------------

@record
class Locator:
    """Maps a spec path to FILE:LINE:COL: all that later stages may ask of the source document."""

    _doc: Document = field(repr=False)

    @property
    def spec_file(self) -> Path:
        return self._doc.path

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the spec was read from (the spec, its includes, secrets.yaml)."""
        return tuple(self._doc.files)

    def mark(self, path: PathT, key: bool = False) -> Mark:
        """The position of ``path`` (of its key with ``key=True``), else of its nearest parent."""
        return self._doc.mark(path, key=key)

    def written(self, path: PathT) -> bool:
        """Whether the spec itself sets ``path`` (rather than leaving it to a default)."""
        return tuple(path) in self._doc.marks

    def diag(self, path: PathT, message: str, severity: str = "error", key: bool = False) -> Diagnostic:
        return Diagnostic.at(self.mark(path, key=key), format_path(path), message, severity=severity)

    def position(self) -> Callable[[PathT], Mark | None]:
        return self._doc.position()
