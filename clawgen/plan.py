"""Plan stage: decide at build time what the device will hold.

The static tool table (and its JSON, rendered once), the buffer plan, the register
policy, the secret slots and the custom handler modules. Semantic checks that need
these decisions (handlers exist, tool names unique, buffers big enough) live here.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema

from clawgen.capabilities import CAPABILITIES, REGISTER_CAPABILITIES, builtin_tool_names
from clawgen.diagnostics import Diagnostic, DiagnosticError, did_you_mean, did_you_mean_file
from clawgen.loader import PathT, Secret, format_path, read_bounded
from clawgen.model import (
    CustomModule,
    Limits,
    ModelEndpoint,
    Network,
    Persistence,
    Plan,
    SecretSlot,
    Tls,
    ToolDef,
    Transports,
    Web,
)
from clawgen.resolve import DEFAULT_CA_LABELS, Resolved, parse_base_url

# Bytes of a request beyond the system prompt and tools JSON: the JSON envelope, the
# model name, one user line and room for at least a short history.
REQUEST_OVERHEAD = 512
PERSIST_PATH = "/claw_history.log"


def _diag(res: Resolved, path: PathT, msg: str, severity: str = "error") -> Diagnostic:
    return Diagnostic.at(res.doc.mark(path), format_path(path), msg, severity=severity)


def _missing_handler_message(res: Resolved, path: PathT, file_part: str) -> str:
    """Say where clawgen looked; spot the classic mistake of a path relative to an included file."""
    shown = os.path.normpath(res.spec_dir / file_part)
    msg = f"handler file {file_part} not found"
    if shown != os.path.normpath(file_part):
        msg += f": there is no {shown}"
    msg += " (handler paths are relative to the spec's directory)"
    folder = (res.spec_dir / file_part).parent
    if folder.is_dir():
        msg += did_you_mean_file(Path(file_part).name, [p.name for p in folder.glob("*.py")])
    included_in = Path(res.doc.mark(path).file).parent
    if included_in.resolve() != res.spec_dir.resolve() and (included_in / file_part).is_file():
        fixed = Path(os.path.relpath(included_in / file_part, res.spec_dir)).as_posix()
        msg += f"; it is beside the included {Path(res.doc.mark(path).file).name}: write {fixed}"
    return msg


def _check_handler(res: Resolved, index: int, handler: str, out: list[Diagnostic]) -> Path | None:
    path: PathT = ("tools", index, "handler")
    file_part, _, func = handler.rpartition(":")
    src = (res.spec_dir / file_part).resolve()
    if not src.is_file():
        out.append(_diag(res, path, _missing_handler_message(res, path, file_part)))
        return None
    try:
        text = read_bounded(src).decode("utf-8")
        tree = ast.parse(text, filename=str(src))
    except UnicodeDecodeError:  # (a ValueError: catch it first)
        out.append(_diag(res, path, f"handler file {file_part} is not UTF-8 text"))
        return None
    except (ValueError, OverflowError, OSError):
        out.append(_diag(res, path, f"handler file {file_part} is not a readable text file of at most 1 MiB"))
        return None
    except SyntaxError as e:
        d = Diagnostic(str(Path(res.doc.path).parent / file_part), e.lineno or 1, (e.offset or 1),
                       format_path(path), "error", f"syntax error in handler file: {e.msg}")
        # Several tools in one broken file: one report of the file's error is enough.
        if not any((o.file, o.line, o.column, o.message) == (d.file, d.line, d.column, d.message) for o in out):
            out.append(d)
        return None
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    if func not in funcs:
        out.append(_diag(res, path, f"{file_part} defines no function '{func}'" + did_you_mean(func, funcs)))
        return None
    return src


JSON_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
# Keywords a tool's top-level parameters schema may use; anything else is most likely an
# argument written beside 'properties:' instead of under it.
PARAMETER_KEYWORDS = ("type", "properties", "required", "additionalProperties", "description", "title",
                      "$schema", "$defs", "definitions", "$ref", "anyOf", "oneOf", "allOf", "not", "enum",
                      "const", "default", "examples", "patternProperties", "minProperties", "maxProperties",
                      "propertyNames", "dependentRequired", "if", "then", "else")


def _check_schema_types(res: Resolved, path: PathT, node: Any, out: list[Diagnostic]) -> None:
    """Unknown 'type' names anywhere in a parameters schema (the device checks types by them)."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    for j, name in enumerate(kind if isinstance(kind, list) else [kind]):
        if isinstance(name, str) and name not in JSON_TYPES:
            where = path + ("type",) + ((j,) if isinstance(kind, list) else ())
            out.append(_diag(res, where, f"'{name}' is not a JSON Schema type; use one of: "
                             + ", ".join(JSON_TYPES) + did_you_mean(name, JSON_TYPES)))
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(node.get(key), dict):
            for sub, schema in node[key].items():
                _check_schema_types(res, (*path, key, sub), schema, out)
    for key in ("items", "additionalProperties", "not", "if", "then", "else"):
        _check_schema_types(res, (*path, key), node.get(key), out)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(node.get(key), list):
            for j, schema in enumerate(node[key]):
                _check_schema_types(res, (*path, key, j), schema, out)


def _check_parameters(res: Resolved, index: int, params: dict[str, Any], out: list[Diagnostic]) -> None:
    """The parameters must be a JSON Schema of type object the model and the device understand."""
    base: PathT = ("tools", index, "parameters")
    before = len(out)
    if "type" not in params:
        out.append(_diag(res, base, "tool parameters need 'type: object' (with the arguments under "
                         "'properties:')"))
    elif params["type"] != "object":
        out.append(_diag(res, (*base, "type"), "tool parameters must be a JSON Schema of type object"))
    for key in params if params.get("type", "object") == "object" else ():
        if key not in PARAMETER_KEYWORDS:
            out.append(Diagnostic.at(res.doc.mark((*base, key), key=True), format_path((*base, key)),
                                     f"'{key}' is not a JSON Schema keyword; describe each argument under "
                                     "'properties:'" + did_you_mean(key, PARAMETER_KEYWORDS)))
    _check_schema_types(res, base, params, out)
    props = params.get("properties")
    if isinstance(props, dict) and isinstance(params.get("required"), list):
        for j, name in enumerate(params["required"]):
            if isinstance(name, str) and name not in props:
                out.append(_diag(res, (*base, "required", j), f"required argument '{name}' is not in "
                                 "'properties'" + did_you_mean(name, props)))
    if len(out) > before:
        return
    try:
        jsonschema.Draft202012Validator.check_schema(params)
    except jsonschema.SchemaError as e:
        out.append(_diag(res, base + tuple(e.relative_path), f"invalid JSON Schema: {e.message}"))


def _module_name(src: Path, taken: dict[Path, str]) -> str:
    if src in taken:
        return taken[src]
    base = "tool_" + re.sub(r"[^a-z0-9_]", "_", src.stem.lower())
    name, n = base, 2
    while name in taken.values():
        name, n = f"{base}_{n}", n + 1
    taken[src] = name
    return name


def _tools(res: Resolved, out: list[Diagnostic]) -> tuple[list[ToolDef], list[CustomModule]]:
    tools: list[ToolDef] = []
    for cap in res.spec["capabilities"]:
        tools.extend(CAPABILITIES[cap].tools)
    builtin = builtin_tool_names()
    seen: dict[str, int] = {}
    modules: dict[Path, str] = {}
    for i, t in enumerate(res.spec["tools"]):
        name = t["name"]
        if name in builtin:
            out.append(_diag(res, ("tools", i, "name"), f"'{name}' is the name of a built-in tool; "
                             "choose another name"))
        elif name in seen:
            out.append(_diag(res, ("tools", i, "name"), f"tool name '{name}' is used twice "
                             f"(first at tools[{seen[name]}])"))
        seen.setdefault(name, i)
        params = t["parameters"]
        _check_parameters(res, i, params, out)
        src = _check_handler(res, i, t["handler"], out)
        if src is None:
            continue
        mod = _module_name(src, modules)
        tools.append(ToolDef(name=name, description=t["description"], parameters=params, capability=None,
                             confirm=bool(t["confirm"]), module=mod, function=t["handler"].rpartition(":")[2]))
    customs = [CustomModule(module=m, source=p) for p, m in sorted(modules.items(), key=lambda kv: kv[1])]
    return tools, customs


def tools_json(tools: list[ToolDef]) -> str:
    """The request's "tools" array, rendered once at build time (compact, stable key order)."""
    arr = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]
    return json.dumps(arr, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def _system_prompt(res: Resolved) -> str:
    parts = [res.spec["system_prompt"].strip()]
    parts += [CAPABILITIES[c].prompt for c in res.spec["capabilities"]]
    return "\n\n".join(parts)


def _limits(res: Resolved, prompt: str, tjson: str, out: list[Diagnostic]) -> Limits:
    lim = Limits(**{k: int(v) for k, v in res.spec["limits"].items()})
    given = res.doc.data.get("limits", {})

    def at(*keys: str) -> PathT:
        """The first limit the user set among ``keys``, else the limits block, else the top."""
        for k in keys:
            if k in given:
                return ("limits", k)
        return ("limits",) if "limits" in res.doc.data else ()

    need = len(prompt.encode()) + len(tjson.encode()) + REQUEST_OVERHEAD
    if lim.request_bytes < need:
        where = at("request_bytes")
        if not where and "system_prompt" in res.doc.data:
            where = ("system_prompt",)
        out.append(_diag(res, where, f"request buffer of {lim.request_bytes} bytes cannot hold the system prompt "
                         f"({len(prompt.encode())} bytes) plus the tools JSON ({len(tjson.encode())} bytes) "
                         f"and a request envelope; set limits.request_bytes to at least {need}"))
    if lim.history_message_bytes > lim.request_bytes:
        out.append(_diag(res, at("history_message_bytes", "request_bytes"),
                         f"limits.history_message_bytes ({lim.history_message_bytes}) is larger than "
                         f"limits.request_bytes ({lim.request_bytes}): such a message could never be sent"))
    if lim.content_bytes > lim.response_bytes:
        out.append(_diag(res, at("content_bytes", "response_bytes"),
                         f"limits.content_bytes ({lim.content_bytes}) is larger than "
                         f"limits.response_bytes ({lim.response_bytes})"))
    if lim.tool_args_bytes > lim.response_bytes:
        out.append(_diag(res, at("tool_args_bytes", "response_bytes"),
                         f"limits.tool_args_bytes ({lim.tool_args_bytes}) is larger than "
                         f"limits.response_bytes ({lim.response_bytes})"))
    ram = lim.static_ram()
    budget = res.board.heap["gc_heap_psram"] if res.psram else res.board.heap["gc_heap"]
    if ram > budget:
        out.append(_diag(res, at(), f"the buffers and history take {ram} bytes, more than the "
                         f"{budget}-byte heap of {res.board.name}{' with PSRAM' if res.psram else ''}",
                         severity="warning"))
    return lim


def _secret_slots(res: Resolved) -> tuple[list[SecretSlot], dict[str, bytes]]:
    """NVS keys for secrets (and the Wi-Fi ssid, which lives beside its password)."""
    slots: list[SecretSlot] = []
    values: dict[str, bytes] = {}

    def add(key: str, spec_path: str, value: Any) -> str | None:
        if value is None:
            return None
        name = value.name if isinstance(value, Secret) else ""
        raw = value.value if isinstance(value, Secret) else str(value)
        slots.append(SecretSlot(key=key, spec_path=spec_path, name=name))
        values[key] = raw.encode()
        return key

    m = res.spec["model"]
    add("m0_key", "model.api_key", m["api_key"])
    for i, fb in enumerate(m["fallbacks"], start=1):
        add(f"m{i}_key", f"model.fallbacks[{i - 1}].api_key", fb["api_key"])
    add("wifi_ssid", "network.ssid", res.spec["network"]["ssid"])
    add("wifi_pw", "network.password", res.spec["network"]["password"])
    add("brave_key", "web.brave_api_key", res.spec["web"]["brave_api_key"])
    return slots, values


def _ca_certs(res: Resolved, endpoints_tls: bool, out: list[Diagnostic]) -> str:
    tls = res.spec["tls"]
    if tls["ca_certs"]:
        p = (res.spec_dir / tls["ca_certs"]).resolve()
        try:
            text = read_bounded(p).decode("ascii")
        except (OSError, ValueError, OverflowError, UnicodeDecodeError):
            out.append(_diag(res, ("tls", "ca_certs"), f"cannot read {tls['ca_certs']} as a PEM text file"))
            return ""
        if "-----BEGIN CERTIFICATE-----" not in text:
            out.append(_diag(res, ("tls", "ca_certs"), f"{tls['ca_certs']} holds no PEM certificate "
                             "(-----BEGIN CERTIFICATE-----)"))
            return ""
        return text
    if not endpoints_tls:
        return ""
    import certifi

    bundle = Path(certifi.where()).read_text(encoding="ascii")
    chosen = []
    for block in bundle.split("\n\n"):
        label = re.search(r'^# Label: "(.*)"', block, re.M)
        if label and label.group(1) in DEFAULT_CA_LABELS:
            pem = block[block.index("-----BEGIN CERTIFICATE-----"):].strip()
            chosen.append(f"# {label.group(1)}\n{pem}\n")
    return "".join(chosen)


def _registers(res: Resolved, out: list[Diagnostic]) -> Any:
    """The register policy table from the chip database (issue: chips)."""
    needs = any(c in REGISTER_CAPABILITIES for c in res.spec["capabilities"])
    given = res.doc.data.get("registers")
    # `defaults: true` alone is what every spec gets (and what `clawgen config` prints): no warning.
    if isinstance(given, dict) and given and given != {"defaults": True} and not needs:
        out.append(_diag(res, ("registers",), "a register policy without the hw_register_control or "
                         "hw_datasheet capability has no effect", severity="warning"))
    try:
        from clawgen.chips import find_chip, load_chip
        from clawgen.chips.policy import compile_policy
    except ImportError:
        return None
    if not needs and not res.doc.data.get("registers"):
        return None
    from clawgen.diagnostics import UsageError

    try:
        chip = load_chip(res.spec["chip"], chip_search_dirs(res.spec_dir))
    except UsageError as e:
        out.append(_diag(res, ("chip",) if "chip" in res.doc.data else ("board",), str(e)))
        return None
    table, diags = compile_policy(chip, res.doc.data.get("registers"), res.doc.position())
    out.extend(diags)
    src = find_chip(res.spec["chip"], chip_search_dirs(res.spec_dir))
    table.source_path = str(src) if src else None
    return table


def chip_search_dirs(spec_dir: Path) -> list[Path]:
    """chips/ beside the spec, then $CLAWGEN_CHIP_PATH, then the built-ins."""
    from clawgen.chips import default_search_dirs

    return default_search_dirs(spec_dir)


def make_plan(res: Resolved, spec_file: str) -> tuple[Plan, dict[str, bytes], list[Diagnostic]]:
    """-> (plan, NVS values by key, warnings). Raises DiagnosticError on errors."""
    diags: list[Diagnostic] = []
    tools, customs = _tools(res, diags)
    tjson = tools_json(tools)
    prompt = _system_prompt(res)
    limits = _limits(res, prompt, tjson, diags)
    slots, nvs_values = _secret_slots(res)
    m = res.spec["model"]
    endpoints = []
    for i, ep in enumerate([m, *m["fallbacks"]]):
        tls, host, port, prefix = parse_base_url(ep["base_url"])
        endpoints.append(ModelEndpoint(
            index=i, provider=ep["provider"], base_url=ep["base_url"], tls=tls, host=host, port=port,
            path_prefix=prefix, model=ep["model"], max_tokens=int(ep["max_tokens"]),
            temperature=None if ep["temperature"] is None else float(ep["temperature"]),
            connect_timeout=float(ep["connect_timeout"]), read_timeout=float(ep["read_timeout"]),
            api_key_slot=f"m{i}_key" if ep["api_key"] is not None else None, headers=dict(ep["headers"])))
    ca = _ca_certs(res, any(e.tls for e in endpoints) or "web_browsing" in res.spec["capabilities"], diags)
    registers = _registers(res, diags)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        raise DiagnosticError(diags)
    net = res.spec["network"]
    tr = res.spec["transports"]
    pers = res.spec["persistence"]
    plan = Plan(
        name=res.spec["name"],
        spec_file=spec_file,
        board=res.board,
        flash_size=res.flash_size,
        psram=res.psram,
        system_prompt=prompt,
        models=endpoints,
        network=Network(ssid_slot="wifi_ssid" if net["ssid"] is not None else None,
                        password_slot="wifi_pw" if net["password"] is not None else None,
                        hostname=net["hostname"], connect_retries=int(net["connect_retries"])),
        transports=Transports(uart=tr["uart"]["enabled"],
                              telnet_port=tr["telnet"]["port"] if tr["telnet"]["enabled"] else None),
        capabilities=list(res.spec["capabilities"]),
        tools=tools,
        tools_json=tjson,
        limits=limits,
        persistence=Persistence(mode=pers["mode"], max_bytes=int(pers["max_bytes"]), path=PERSIST_PATH),
        debug_trace=res.spec["debug"]["trace"],
        tls=Tls(verify=bool(res.spec["tls"]["verify"]), ca_certs=ca),
        web=Web(fetch_max_bytes=int(res.spec["web"]["fetch_max_bytes"]),
                search_key_slot="brave_key" if res.spec["web"]["brave_api_key"] is not None else None),
        secrets=slots,
        custom_modules=customs,
        chip=res.spec["chip"],
        registers=registers,
    )
    return plan, nvs_values, diags

