"""Resolve stage: board, chip, secrets and defaults -> a fully specified spec.

Input is a schema-valid ``Document``; output is ``Resolved``: the typed spec
(``clawgen.spec.AgentSpec``, every default filled in: what `clawgen config` prints), the
board, a ``Locator`` for diagnostics, and the secret values held apart for the NVS image and
the simulator. This is the last stage that reads the document's data; the defaults live in
clawgen/spec.py, and the board-dependent ones are filled in here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clawgen.boards import board_names, format_size, load_board, parse_size
from clawgen.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.model import Board
from clawgen.records import record
from clawgen.spec import (
    AgentSpec,
    Endpoint,
    Hardware,
    Limits,
    Locator,
    Model,
    Network,
    Transports,
    Web,
    default_of,
    from_spec,
)

DEFAULT_BOARD: str = default_of(AgentSpec, "board")
# The path each wire format (model.api) appends to base_url.
API_PATHS = {"openai": "/chat/completions", "anthropic": "/messages"}
# Roots that cover the common LLM and web endpoints (Let's Encrypt, Google Trust Services,
# DigiCert); taken from certifi at build time when a spec gives no CA file.
DEFAULT_CA_LABELS = ("ISRG Root X1", "GTS Root R1", "GTS Root R4", "DigiCert Global Root G2")


@record
class Resolved:
    """The output of resolve: the typed spec, the board, and where each spec path is written."""

    spec: AgentSpec  # every default filled in; secrets still as Secret objects
    board: Board
    locator: Locator
    secret_values: dict[PathT, Secret] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def flash_size(self) -> int:
        return parse_size(self.spec.hardware.flash_size)

    @property
    def psram(self) -> bool:
        return self.spec.hardware.psram

    @property
    def spec_dir(self) -> Path:
        return self.locator.spec_file.parent


def _err(doc: Document, path: PathT, msg: str, key: bool = False) -> Diagnostic:
    return Diagnostic.at(doc.mark(path, key=key), format_path(path), msg)


def choose_board(doc: Document, board_override: str | None) -> str:
    """The board name: --board, else the spec's board, else the default; unknown -> diagnostic."""
    if board_override:
        return board_override
    data = doc.data if isinstance(doc.data, dict) else {}
    name = data.get("board", DEFAULT_BOARD)
    if not isinstance(name, str) or name not in board_names():
        raise DiagnosticError(_err(doc, ("board",), f"unknown board '{name}'"
                                   f"{did_you_mean(str(name), board_names())}; "
                                   f"known boards: {', '.join(board_names())}"))
    return name


def _non_finite(doc: Document, value: Any, path: PathT, out: list[Diagnostic]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        out.append(_err(doc, path, "must be a finite number"))
    elif isinstance(value, dict):
        for k, v in value.items():
            _non_finite(doc, v, (*path, k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _non_finite(doc, v, (*path, i), out)


def url_host(url: object) -> str:
    """The host of a URL, "" when there is none or the URL does not parse (a stray "[" or "]",
    a character that NFKC turns into "/"): ``_endpoint`` reports those as "invalid URL"."""
    if not isinstance(url, str):
        return ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def parse_base_url(url: str) -> tuple[bool, str, int, str]:
    """-> (tls, host, port, path_prefix)."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    prefix = parts.path.rstrip("/")
    return tls, parts.hostname or "", port, prefix


def _endpoint(doc: Document, raw: dict[str, Any], base: Endpoint | None, path: PathT,
              out: list[Diagnostic]) -> Endpoint:
    """The primary (``base`` None) or a fallback, which takes every key it leaves out from ``base``."""
    cls = Model if base is None else Endpoint
    url = raw.get("base_url", base.base_url if base is not None else None)
    if url is None:
        out.append(_err(doc, path, "missing base_url"))
        return from_spec(cls, raw, base, base_url="")
    ep = from_spec(cls, raw, base)
    try:
        _tls, host, port, _ = parse_base_url(ep.base_url)
    except ValueError as e:
        out.append(_err(doc, (*path, "base_url"), f"invalid URL: {e}"))
        return ep
    if not host:
        out.append(_err(doc, (*path, "base_url"), "the URL has no host"))
    if not 0 < port < 65536:
        out.append(_err(doc, (*path, "base_url"), f"port {port} is out of range"))
    prefix = parse_base_url(ep.base_url)[3]
    suffix = API_PATHS.get(ep.api, "/chat/completions")
    if "base_url" in raw and prefix.endswith(suffix):
        out.append(_err(doc, (*path, "base_url"), f"base_url must stop before {suffix}, which clawgen "
                        f"appends: write {ep.base_url.rstrip('/')[:-len(suffix)]}"))
    said = "temperature" in raw or base is None or base.api != "anthropic"  # else the primary's error says it
    if ep.api == "anthropic" and ep.temperature is not None and ep.temperature > 1 and said:
        out.append(_err(doc, (*path, "temperature"), f"temperature {ep.temperature} is above 1, the most "
                        "the Anthropic Messages API accepts; use 0..1"))
    for name in raw.get("headers", {}):
        if name.lower() in ("authorization", "x-api-key", "api-key"):
            out.append(_err(doc, (*path, "headers", name), f"the {name} header would put a key in the spec: "
                            "give the key as api_key: !secret NAME (sent as a Bearer token)", key=True))
    key = ep.api_key
    if key is not None and not isinstance(key, Secret):
        out.append(_err(doc, (*path, "api_key"), "an API key must not be written in the spec: "
                        "put it in secrets.yaml and write api_key: !secret NAME"))
    return ep


def _light(doc: Document, raw: dict[str, Any], primary: Endpoint, out: list[Diagnostic]) -> Endpoint:
    """model.light: like a fallback, but the primary's api_key only goes with the primary's base_url
    (a key is never sent to another server); a light model on another https server without a key
    of its own, while the primary has one, is an error."""
    path: PathT = ("model", "light")
    own_url = "base_url" in raw and raw["base_url"] != primary.base_url
    base = dataclasses.replace(primary, api_key=None) if own_url else primary
    ep = _endpoint(doc, raw, base, path, out)
    if own_url and ep.api_key is None and primary.api_key is not None and str(raw["base_url"]).startswith("https://"):
        out.append(_err(doc, path, "a light model without a key: model.light has its own https base_url but no "
                        "api_key (the primary's key is only sent to the primary's server); add "
                        "api_key: !secret NAME to model.light", key=True))
    return ep


def _unless_given(raw: dict[str, Any], **derived: Any) -> dict[str, Any]:
    """The derived defaults of the keys ``raw`` leaves out."""
    return {k: v for k, v in derived.items() if k not in raw}


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def resolve(doc: Document, board_name: str) -> Resolved:
    """Fill defaults and check the semantic rules that need the board. Raises DiagnosticError."""
    board = load_board(board_name)
    data: dict[str, Any] = doc.data
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    _non_finite(doc, data, (), errors)

    hw = _section(data, "hardware")
    flash = board.default_flash
    if "flash_size" in hw:
        flash = parse_size(hw["flash_size"])
        if flash not in board.flash_sizes:
            errors.append(_err(doc, ("hardware", "flash_size"),
                               f"{board.name} has no {hw['flash_size']} variant; choose one of "
                               + ", ".join(format_size(s) for s in board.flash_sizes)))
    psram = bool(hw.get("psram", board.psram_default))
    if psram and not board.psram_supported:
        errors.append(_err(doc, ("hardware", "psram"), f"{board.name} has no PSRAM; remove 'psram: true'"))
    hardware = from_spec(Hardware, hw, flash_size=format_size(flash), psram=psram)
    chip = data.get("chip", board.chip)
    from clawgen.boards import all_boards

    if chip != board.chip and chip in {b.chip for b in all_boards()}:
        errors.append(_err(doc, ("chip",), f"the {board.name} board has an {board.chip} chip, not an "
                           f"{chip}; remove 'chip' or choose another board"))

    model_raw = data["model"]
    primary = _endpoint(doc, {k: v for k, v in model_raw.items() if k not in ("fallbacks", "light")}, None,
                        ("model",), errors)
    fallbacks = tuple(_endpoint(doc, fb, primary, ("model", "fallbacks", i), errors)
                      for i, fb in enumerate(model_raw.get("fallbacks", [])))
    light = _light(doc, model_raw["light"], primary, errors) if isinstance(model_raw.get("light"), dict) else None
    model = dataclasses.replace(primary, fallbacks=fallbacks, light=light)
    w = model.routing.weights
    if "routing" in model_raw and w.length + w.code + w.tools + w.depth <= 0:
        errors.append(_err(doc, ("model", "routing", "weights"), "the routing weights are all 0: give at least "
                           "one feature (length, code, tools, depth) a positive weight"))

    net_raw = _section(data, "network")
    net = from_spec(Network, net_raw, **_unless_given(
        net_raw, hostname=re.sub(r"[^a-zA-Z0-9-]", "-", data["name"])[:32]))
    if net.password is not None and not isinstance(net.password, Secret):
        errors.append(_err(doc, ("network", "password"), "a Wi-Fi password must not be written in the spec: "
                           "put it in secrets.yaml and write password: !secret NAME"))
    if net.password is not None and net.ssid is None:
        errors.append(_err(doc, ("network",), "a Wi-Fi password is given but no ssid"))

    tr = from_spec(Transports, data["transports"]) if "transports" in data else default_of(AgentSpec, "transports")
    if not tr.uart.enabled and not tr.telnet.enabled and tr.telegram is None:
        errors.append(_err(doc, ("transports",), "no transport is enabled: enable uart, telnet or telegram, "
                           "or nobody can talk to the agent"))
    if tr.telnet.enabled and net.ssid is None:
        errors.append(_err(doc, ("transports", "telnet"), "telnet needs Wi-Fi: set network.ssid and "
                           "network.password"))

    caps = data.get("capabilities", [])
    lim_raw = _section(data, "limits")
    limits = from_spec(Limits, lim_raw, **_unless_given(lim_raw, **board.limits))
    web_raw = _section(data, "web")
    web = from_spec(Web, web_raw, **_unless_given(web_raw, fetch_max_bytes=limits.tool_result_bytes))
    if web.brave_api_key is not None and not isinstance(web.brave_api_key, Secret):
        errors.append(_err(doc, ("web", "brave_api_key"), "an API key must not be written in the spec: "
                           "use !secret NAME"))
    if "web_browsing" in caps and web.brave_api_key is None:
        warnings.append(Diagnostic.at(doc.mark(("capabilities",)), "capabilities",
                                      "web_browsing without web.brave_api_key: web_search will report "
                                      "that it is not configured", severity="warning"))

    def plain_http_with_key(ep: Endpoint) -> bool:
        url = ep.base_url or ""
        host = url_host(url)
        loopback = host == "localhost" or host.startswith("127.")
        return url.startswith("http://") and ep.api_key is not None and not loopback

    if any(plain_http_with_key(ep) for ep in (*model.endpoints, *((light,) if light else ()))):
        warnings.append(Diagnostic.at(doc.mark(("model", "base_url")), "model.base_url",
                                      "an API key would be sent over plain http; use https",
                                      severity="warning"))

    # The agent runs on the board: there, localhost is the board itself, not the developer's PC.
    raw_fallbacks = model_raw.get("fallbacks") if isinstance(model_raw.get("fallbacks"), list) else []
    endpoints: list[tuple[PathT, Any]] = [(("model",), model_raw),
                                          *((("model", "fallbacks", i), f) for i, f in enumerate(raw_fallbacks)),
                                          *(((("model", "light"), model_raw["light"]),) if light else ())]
    for path, raw_ep in endpoints:
        url = raw_ep.get("base_url") if isinstance(raw_ep, dict) else None
        host = url_host(url)
        if host == "localhost" or host.startswith("127.") or host == "::1":
            warnings.append(Diagnostic.at(doc.mark((*path, "base_url")), format_path((*path, "base_url")),
                                          f"{host} is the board itself, not your computer: give the LAN address "
                                          "of the machine running the server (and bind the server to 0.0.0.0)",
                                          severity="warning"))

    spec = from_spec(AgentSpec, data, board=board.name, hardware=hardware, chip=chip, model=model, network=net,
                     transports=tr, web=web, limits=limits)
    if not spec.tls.verify:
        warnings.append(Diagnostic.at(doc.mark(("tls", "verify")), "tls.verify",
                                      "certificate verification is off: anyone on the network can read "
                                      "the API key", severity="warning"))

    if errors:
        raise DiagnosticError(errors + warnings)
    return Resolved(spec=spec, board=board, locator=Locator(doc), secret_values=dict(doc.secrets),
                    warnings=warnings)

