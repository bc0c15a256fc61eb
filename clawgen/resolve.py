"""Resolve stage: board, chip, secrets and defaults -> a fully specified spec.

Input is a schema-valid ``Document``; output is ``Resolved``: the spec with every
default filled in (what `clawgen config` prints), plus the secret values held apart
for the NVS image and the simulator.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clawgen.boards import board_names, format_size, load_board, parse_size
from clawgen.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.model import Board

DEFAULT_BOARD = "esp32s3"
DEFAULT_TELNET_PORT = 2323
DEFAULT_PERSIST_BYTES = 16384
# Roots that cover the common LLM and web endpoints (Let's Encrypt, Google Trust Services,
# DigiCert); taken from certifi at build time when a spec gives no CA file.
DEFAULT_CA_LABELS = ("ISRG Root X1", "GTS Root R1", "GTS Root R4", "DigiCert Global Root G2")


@dataclass
class Resolved:
    doc: Document
    board: Board
    spec: dict[str, Any]  # every default filled in; secrets still as Secret objects
    flash_size: int
    psram: bool
    secret_values: dict[PathT, Secret] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def spec_dir(self) -> Path:
        return self.doc.path.parent


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


def parse_base_url(url: str) -> tuple[bool, str, int, str]:
    """-> (tls, host, port, path_prefix)."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    prefix = parts.path.rstrip("/")
    return tls, parts.hostname or "", port, prefix


def _endpoint(doc: Document, raw: dict[str, Any], base: dict[str, Any] | None, path: PathT,
              out: list[Diagnostic]) -> dict[str, Any]:
    ep: dict[str, Any] = {
        "provider": "openai-compatible",
        "base_url": None,
        "model": None,
        "api_key": None,
        "max_tokens": 512,
        "temperature": None,
        "connect_timeout": 10,
        "read_timeout": 60,
        "headers": {},
    }
    if base:
        ep.update({k: v for k, v in base.items() if k != "fallbacks"})
    ep.update(raw)
    if ep["base_url"] is None:
        out.append(_err(doc, path, "missing base_url"))
        return ep
    try:
        _tls, host, port, _ = parse_base_url(ep["base_url"])
    except ValueError as e:
        out.append(_err(doc, (*path, "base_url"), f"invalid URL: {e}"))
        return ep
    if not host:
        out.append(_err(doc, (*path, "base_url"), "the URL has no host"))
    if not 0 < port < 65536:
        out.append(_err(doc, (*path, "base_url"), f"port {port} is out of range"))
    prefix = parse_base_url(ep["base_url"])[3]
    if "base_url" in raw and prefix.endswith("/chat/completions"):
        out.append(_err(doc, (*path, "base_url"), "base_url must stop before /chat/completions, which clawgen "
                        f"appends: write {ep['base_url'].rstrip('/')[:-len('/chat/completions')]}"))
    for name in raw.get("headers", {}):
        if name.lower() in ("authorization", "x-api-key", "api-key"):
            out.append(_err(doc, (*path, "headers", name), f"the {name} header would put a key in the spec: "
                            "give the key as api_key: !secret NAME (sent as a Bearer token)", key=True))
    key = ep.get("api_key")
    if key is not None and not isinstance(key, Secret):
        out.append(_err(doc, (*path, "api_key"), "an API key must not be written in the spec: "
                        "put it in secrets.yaml and write api_key: !secret NAME"))
    return ep


def resolve(doc: Document, board_name: str) -> Resolved:
    """Fill defaults and check the semantic rules that need the board. Raises DiagnosticError."""
    board = load_board(board_name)
    data: dict[str, Any] = copy.deepcopy(doc.data)
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    _non_finite(doc, data, (), errors)

    data["board"] = board.name
    hw = data.setdefault("hardware", {})
    flash = board.default_flash
    if "flash_size" in hw:
        flash = parse_size(hw["flash_size"])
        if flash not in board.flash_sizes:
            errors.append(_err(doc, ("hardware", "flash_size"),
                               f"{board.name} has no {hw['flash_size']} variant; choose one of "
                               + ", ".join(format_size(s) for s in board.flash_sizes)))
    hw["flash_size"] = format_size(flash)
    psram = bool(hw.get("psram", board.psram_default))
    if psram and not board.psram_supported:
        errors.append(_err(doc, ("hardware", "psram"), f"{board.name} has no PSRAM; remove 'psram: true'"))
    hw["psram"] = psram
    data.setdefault("chip", board.chip)
    from clawgen.boards import all_boards

    builtin_chips = {b.chip for b in all_boards()}
    if data["chip"] != board.chip and data["chip"] in builtin_chips:
        errors.append(_err(doc, ("chip",), f"the {board.name} board has an {board.chip} chip, not an "
                           f"{data['chip']}; remove 'chip' or choose another board"))
    data.setdefault("system_prompt", "You are a helpful assistant running on a microcontroller.")

    model = data["model"]
    primary = _endpoint(doc, {k: v for k, v in model.items() if k != "fallbacks"}, None, ("model",), errors)
    fallbacks = [_endpoint(doc, fb, primary, ("model", "fallbacks", i), errors)
                 for i, fb in enumerate(model.get("fallbacks", []))]
    data["model"] = {**primary, "fallbacks": fallbacks}

    net = data.setdefault("network", {})
    net.setdefault("hostname", re.sub(r"[^a-zA-Z0-9-]", "-", data["name"])[:32])
    net.setdefault("connect_retries", 5)
    net.setdefault("ssid", None)
    net.setdefault("password", None)
    if net["password"] is not None and not isinstance(net["password"], Secret):
        errors.append(_err(doc, ("network", "password"), "a Wi-Fi password must not be written in the spec: "
                           "put it in secrets.yaml and write password: !secret NAME"))
    if net["password"] is not None and net["ssid"] is None:
        errors.append(_err(doc, ("network",), "a Wi-Fi password is given but no ssid"))

    tr = data.setdefault("transports", {"uart": True})
    uart = tr.get("uart", False)
    uart_on = uart.get("enabled", True) if isinstance(uart, dict) else bool(uart)
    telnet = tr.get("telnet", False)
    if isinstance(telnet, dict):
        telnet_on = telnet.get("enabled", True)
        telnet_port = telnet.get("port", DEFAULT_TELNET_PORT)
    else:
        telnet_on, telnet_port = bool(telnet), DEFAULT_TELNET_PORT
    data["transports"] = {"uart": {"enabled": uart_on},
                          "telnet": {"enabled": telnet_on, "port": telnet_port}}
    if not uart_on and not telnet_on:
        errors.append(_err(doc, ("transports",), "no transport is enabled: enable uart or telnet, "
                           "or nobody can talk to the agent"))
    if telnet_on and net["ssid"] is None:
        errors.append(_err(doc, ("transports", "telnet"), "telnet needs Wi-Fi: set network.ssid and "
                           "network.password"))

    caps = data.setdefault("capabilities", [])
    web = data.setdefault("web", {})
    limits = dict(board.limits)
    limits.update(data.get("limits", {}))
    data["limits"] = limits
    web.setdefault("fetch_max_bytes", limits["tool_result_bytes"])
    web.setdefault("brave_api_key", None)
    if web["brave_api_key"] is not None and not isinstance(web["brave_api_key"], Secret):
        errors.append(_err(doc, ("web", "brave_api_key"), "an API key must not be written in the spec: "
                           "use !secret NAME"))
    if "web_browsing" in caps and web["brave_api_key"] is None:
        warnings.append(Diagnostic.at(doc.mark(("capabilities",)), "capabilities",
                                      "web_browsing without web.brave_api_key: web_search will report "
                                      "that it is not configured", severity="warning"))
    def plain_http_with_key(ep: dict[str, Any]) -> bool:
        url = ep.get("base_url") or ""
        host = urlsplit(url).hostname or ""
        loopback = host == "localhost" or host.startswith("127.")
        return url.startswith("http://") and ep.get("api_key") is not None and not loopback

    if any(plain_http_with_key(ep) for ep in [primary, *fallbacks]):
        warnings.append(Diagnostic.at(doc.mark(("model", "base_url")), "model.base_url",
                                      "an API key would be sent over plain http; use https",
                                      severity="warning"))

    # The agent runs on the board: there, localhost is the board itself, not the developer's PC.
    raw_model = doc.data.get("model") if isinstance(doc.data.get("model"), dict) else {}
    raw_fallbacks = raw_model.get("fallbacks") if isinstance(raw_model.get("fallbacks"), list) else []
    endpoints: list[tuple[PathT, Any]] = [(("model",), raw_model),
                                          *((("model", "fallbacks", i), f) for i, f in enumerate(raw_fallbacks))]
    for path, raw_ep in endpoints:
        url = raw_ep.get("base_url") if isinstance(raw_ep, dict) else None
        host = (urlsplit(url).hostname or "") if isinstance(url, str) else ""
        if host == "localhost" or host.startswith("127.") or host == "::1":
            warnings.append(Diagnostic.at(doc.mark((*path, "base_url")), format_path((*path, "base_url")),
                                          f"{host} is the board itself, not your computer: give the LAN address "
                                          "of the machine running the server (and bind the server to 0.0.0.0)",
                                          severity="warning"))

    tls = data.setdefault("tls", {})
    tls.setdefault("verify", True)
    tls.setdefault("ca_certs", None)
    if not tls["verify"]:
        warnings.append(Diagnostic.at(doc.mark(("tls", "verify")), "tls.verify",
                                      "certificate verification is off: anyone on the network can read "
                                      "the API key", severity="warning"))

    p = data.get("persistence", "none")
    if isinstance(p, str):
        p = {"mode": p}
    p.setdefault("max_bytes", DEFAULT_PERSIST_BYTES)
    data["persistence"] = p
    dbg = data.get("debug", False)
    data["debug"] = {"trace": dbg.get("trace", False) if isinstance(dbg, dict) else bool(dbg)}
    data.setdefault("registers", {})
    data["registers"].setdefault("defaults", True)
    data.setdefault("tools", [])
    for t in data["tools"]:
        t.setdefault("parameters", {"type": "object", "properties": {}})
        t.setdefault("confirm", False)
    data.pop("substitutions", None)

    if errors:
        raise DiagnosticError(errors + warnings)
    return Resolved(doc=doc, board=board, spec=data, flash_size=flash, psram=psram,
                    secret_values=dict(doc.secrets), warnings=warnings)


def masked(value: Any) -> Any:
    """The resolved spec for printing: secrets shown as '!secret NAME'."""
    if isinstance(value, Secret):
        return f"!secret {value.name}"
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value
