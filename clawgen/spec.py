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
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from clawgen.diagnostics import Diagnostic, Mark
from clawgen.loader import Document, PathT, Secret, format_path

T = TypeVar("T")


def derived(source: str) -> dict[str, str]:
    """Metadata of a field resolve fills in from ``source`` (the board, another field): no static default."""
    return {"default_from": source}


# -- sections ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Hardware:
    PATH: ClassVar[str] = "hardware"
    flash_size: str = field(metadata=derived("board"))  # "8MB": the spec's spelling; Resolved.flash_size is the bytes
    psram: bool = field(metadata=derived("board"))


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class RoutingWeights:
    """How much each feature of a turn counts in its routing score (normalised by their sum)."""

    PATH: ClassVar[str] = "model.routing.weights"
    length: float = 0.3  # the user message's length, saturating at Routing.long_message characters
    code: float = 0.3  # the message holds a code block (```)
    tools: float = 0.25  # share of the last Routing.tool_window turns that called tools
    depth: float = 0.15  # conversation depth, saturating at Routing.deep_conversation turns


@dataclass(frozen=True, kw_only=True)
class Routing:
    """Cheap-first routing: a turn whose score (0..1) is below threshold goes to model.light."""

    PATH: ClassVar[str] = "model.routing"
    threshold: float = 0.3
    weights: RoutingWeights = field(default_factory=RoutingWeights)
    long_message: int = 400  # characters at which the length feature is 1
    deep_conversation: int = 8  # turns in the history at which the depth feature is 1
    tool_window: int = 3  # recent turns looked at for tool calls


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class Network:
    PATH: ClassVar[str] = "network"
    ssid: Secret | str | None = None
    password: Secret | None = None
    hostname: str = field(metadata=derived("name"))
    connect_retries: int = 5


@dataclass(frozen=True, kw_only=True)
class Uart:
    PATH: ClassVar[str] = "transports.uart"
    SHORTHAND: ClassVar[str] = "enabled"
    enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class Telnet:
    PATH: ClassVar[str] = "transports.telnet"
    SHORTHAND: ClassVar[str] = "enabled"
    enabled: bool = True
    port: int = 2323


@dataclass(frozen=True, kw_only=True)
class Transports:
    """A transport left out of a ``transports:`` block is off; no block at all means the UART."""

    PATH: ClassVar[str] = "transports"
    uart: Uart = field(default_factory=lambda: Uart(enabled=False))
    telnet: Telnet = field(default_factory=lambda: Telnet(enabled=False))


@dataclass(frozen=True, kw_only=True)
class Web:
    PATH: ClassVar[str] = "web"
    fetch_max_bytes: int = field(metadata=derived("limits.tool_result_bytes"))
    brave_api_key: Secret | None = None


@dataclass(frozen=True, kw_only=True)
class Tls:
    PATH: ClassVar[str] = "tls"
    verify: bool = True
    ca_certs: str | None = None  # a PEM file relative to the spec; None: built-in roots


@dataclass(frozen=True, kw_only=True)
class PolicyRule:
    PATH: ClassVar[str] = "registers.allow[]"
    SHORTHAND: ClassVar[str] = "match"
    match: str
    access: str = "read-write"


@dataclass(frozen=True, kw_only=True)
class Registers:
    PATH: ClassVar[str] = "registers"
    defaults: bool = True
    allow: tuple[PolicyRule, ...] = ()
    deny: tuple[PolicyRule, ...] = ()


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Fixed buffer sizes and bounds; every default comes from the board file."""

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


@dataclass(frozen=True, kw_only=True)
class Persistence:
    PATH: ClassVar[str] = "persistence"
    SHORTHAND: ClassVar[str] = "mode"
    mode: str  # "none" | "flash"
    max_bytes: int = 16384


@dataclass(frozen=True, kw_only=True)
class Ota:
    """OTA updates of the app bundle (docs/ota.md); no ``ota:`` block means none."""

    PATH: ClassVar[str] = "ota"
    port: int = 8266
    key: Secret | str
    confirm_timeout: int = 120  # seconds a new bundle has to reach "ready" before it is rolled back


@dataclass(frozen=True, kw_only=True)
class Debug:
    PATH: ClassVar[str] = "debug"
    SHORTHAND: ClassVar[str] = "trace"
    trace: bool = False


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant running on a microcontroller."


@dataclass(frozen=True, kw_only=True)
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


# -- the generic part: YAML value <-> dataclass ---------------------------------------------------

def spec_path(cls: type, name: str) -> str:
    """``spec_path(Limits, "request_bytes")`` -> ``"limits.request_bytes"``."""
    base = getattr(cls, "PATH", "")
    return f"{base}.{name}" if base else name


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


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
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        if f.name in computed:
            kwargs[f.name] = computed[f.name]
        elif f.name in raw:
            kwargs[f.name] = _convert(hints[f.name], raw[f.name])
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

@dataclass(frozen=True)
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
