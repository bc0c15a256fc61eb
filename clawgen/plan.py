"""Plan stage: decide at build time what the device will hold.

The static tool table (and its JSON, rendered once), the buffer plan, the register
policy, the secret slots and the custom handler modules. Semantic checks that need
these decisions (handlers exist, tool names unique, buffers big enough) live here.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import os
import re
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawgen import mcpserver
from clawgen.capabilities import CAPABILITIES, REGISTER_CAPABILITIES, builtin_tool_names
from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark, did_you_mean, did_you_mean_file, peer_text
from clawgen.files import path_length_problem, read_bounded
from clawgen.heapplan import heap_limit
from clawgen.loader import MAX_FILE_BYTES, PathT, Secret, format_path
from clawgen.model import (
    AuditPlan,
    CustomModule,
    HookDef,
    Limits,
    McpServer,
    MemoryPlan,
    ModelEndpoint,
    Network,
    Ota,
    Persistence,
    Plan,
    Routing,
    SecretSlot,
    Telegram,
    Tls,
    ToolDef,
    Transports,
    Web,
)
from clawgen.ota import KEY_NVS_SLOT as OTA_KEY_SLOT
from clawgen.records import record
from clawgen.resolve import DEFAULT_CA_LABELS, Resolved, parse_base_url
from clawgen.spec import HOOK_POINTS, Registers
from clawgen.spec import Memory as MemorySpec
from clawgen.spec import Routing as RoutingSpec
from clawgen.triggers import plan_triggers

if TYPE_CHECKING:
    import jsonschema

    from clawgen.chips.policy import PolicyTable

# Bytes of a request beyond the system prompt and tools JSON: the JSON envelope, the
# model name, one user line and room for at least a short history.
REQUEST_OVERHEAD = 512
PERSIST_PATH = "/claw_history.log"
MEMORY_PATH = "/claw_memory.log"  # the memory capability's notes (claw_memory)
AUDIT_PATH = "/claw_audit.log"  # the audit ring of tool calls (claw_audit)
TELEGRAM_TOKEN_SLOT = "tg_token"  # NVS key of transports.telegram.token
TELNET_PASSWORD_SLOT = "telnet_pw"  # NVS key of transports.telnet.password
# The root that signs api.telegram.org's certificate chain (Go Daddy), added to the default roots
# when the agent talks to Telegram and the spec gives no tls.ca_certs.
TELEGRAM_CA_LABELS = ("Go Daddy Root Certificate Authority - G2",)
# claw_telegram's two fixed buffers: a getUpdates answer carrying one message of up to 4,096
# characters (ASCII) with its metadata, and one sendMessage request of up to 4,096 characters.
TELEGRAM_POLL_BYTES = 6144
TELEGRAM_SEND_BYTES = 6144


def _diag(res: Resolved, path: PathT, msg: str, severity: str = "error") -> Diagnostic:
    return res.locator.diag(path, msg, severity=severity)


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
    included_in = Path(res.locator.mark(path).file).parent
    if included_in.resolve() != res.spec_dir.resolve() and (included_in / file_part).is_file():
        fixed = Path(os.path.relpath(included_in / file_part, res.spec_dir)).as_posix()
        msg += f"; it is beside the included {Path(res.locator.mark(path).file).name}: write {fixed}"
    return msg


@functools.lru_cache(maxsize=256)
def _handler_functions(src: Path, size: int, mtime_ns: int) -> tuple[str, tuple[Any, ...]]:
    """("ok", (top-level function names, top-level async function names, the functions that take
    arguments beyond their named ones)) of a handler file, or ("utf8" | "unreadable", ()) or
    ("syntax", (line, column, message)); parsed once per file version (``size``, ``mtime_ns``).
    A function takes such arguments when its last definition has ``**kwargs`` or a decorator (which
    may change its signature): the device then passes it arguments its tool does not declare."""
    try:
        text = read_bounded(src, MAX_FILE_BYTES).decode("utf-8")
        tree = ast.parse(text, filename=str(src))
    except UnicodeDecodeError:  # (a ValueError: catch it first)
        return "utf8", ()
    except (ValueError, OverflowError, OSError):
        return "unreadable", ()
    except SyntaxError as e:
        return "syntax", (e.lineno or 1, e.offset or 1, e.msg)
    # What each top-level name is bound to when the file has run (the last binding wins, as on
    # the device): a def, an async def, or something else (a class, an assignment, an import).
    last: dict[str, ast.stmt] = {}
    for n in tree.body:
        for name in _top_level_names(n):
            last[name] = n
    defs = {name: n for name, n in last.items() if isinstance(n, ast.FunctionDef)}
    return "ok", (tuple(defs),
                  tuple(name for name, n in last.items() if isinstance(n, ast.AsyncFunctionDef)),
                  tuple(name for name, n in defs.items() if n.args.kwarg is not None or n.decorator_list),
                  tuple((name, n.lineno) for name, n in last.items()
                        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))))


def _top_level_names(n: ast.stmt) -> list[str]:
    """The module-level names a top-level statement binds (unconditionally: not those of an if,
    for, with or try body)."""
    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [n.name]
    if isinstance(n, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in n.names if a.name != "*"]
    if isinstance(n, ast.Assign):
        targets = n.targets
    elif isinstance(n, ast.AugAssign) or (isinstance(n, ast.AnnAssign) and n.value is not None):
        targets = [n.target]
    else:
        return []
    return [x.id for t in targets for x in ast.walk(t) if isinstance(x, ast.Name)]


def _check_handler(res: Resolved, index: int, handler: str, out: list[Diagnostic],
                   at: PathT | None = None) -> tuple[Path, bool] | None:
    """(the handler file, whether its function takes arguments beyond its named ones:
    ``_handler_functions``), or None with the problem in ``out``."""
    path: PathT = at or ("tools", index, "handler")
    file_part, _, func = handler.rpartition(":")
    problem = path_length_problem(res.spec_dir / file_part)
    if problem:  # (pathlib's is_file() would raise "File name too long")
        out.append(_diag(res, path, f"handler file {peer_text(file_part, 80)}: {problem}"))
        return None
    src = (res.spec_dir / file_part).resolve()
    if not src.is_file():
        if src.exists():  # a directory, a FIFO, a device...
            out.append(_diag(res, path, f"handler file {file_part} is not a regular file: give a .py file"))
        else:
            out.append(_diag(res, path, _missing_handler_message(res, path, file_part)))
        return None
    try:
        st = src.stat()
        kind, found = _handler_functions(src, st.st_size, st.st_mtime_ns)
    except OSError:
        kind, found = "unreadable", ()
    if kind == "utf8":
        out.append(_diag(res, path, f"handler file {file_part} is not UTF-8 text"))
        return None
    if kind == "unreadable":
        out.append(_diag(res, path, f"handler file {file_part} is not a readable text file of at most 1 MiB"))
        return None
    if kind == "syntax":
        line, col, msg = found
        d = Diagnostic(str(Path(res.locator.spec_file).parent / file_part), int(line), int(col),
                       format_path(path), "error", f"syntax error in handler file: {msg}")
        # Several tools in one broken file: one report of the file's error is enough.
        if not any((o.file, o.line, o.column, o.message) == (d.file, d.line, d.column, d.message) for o in out):
            out.append(d)
        return None
    funcs, coroutines, takes_more, rebound = found
    if func not in funcs:
        line = dict(rebound).get(func)
        if line is not None:
            out.append(_diag(res, path, f"{file_part}: '{func}' is not a function once the file has run: line {line} "
                             "binds the name again (the device would call that)"))
        elif func in coroutines:
            out.append(_diag(res, path, f"{file_part}: '{func}' is an async def; the device calls a handler as a "
                             "plain function (write def, not async def)"))
        else:
            out.append(_diag(res, path, f"{file_part} defines no function '{func}'" + did_you_mean(func, list(funcs))))
        return None
    return src, func in takes_more


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
            out.append(res.locator.diag((*base, key), f"'{key}' is not a JSON Schema keyword; describe each "
                                        "argument under 'properties:'" + did_you_mean(key, PARAMETER_KEYWORDS),
                                        key=True))
    _check_schema_types(res, base, params, out)
    props = params.get("properties")
    if isinstance(props, dict) and isinstance(params.get("required"), list):
        for j, name in enumerate(params["required"]):
            if isinstance(name, str) and name not in props:
                out.append(_diag(res, (*base, "required", j), f"required argument '{name}' is not in "
                                 "'properties'" + did_you_mean(name, props)))
    if len(out) > before:
        return
    problem = _schema_problem(json.dumps(params, default=repr))
    if problem is not None:
        where, message = problem
        out.append(_diag(res, base + where, f"invalid JSON Schema: {message}"))


@functools.cache
def _meta_validator() -> jsonschema.Draft202012Validator:
    """The JSON Schema meta-schema's validator, built once (what check_schema builds on every call)."""
    import jsonschema  # only when a tool's parameters are not in the user's cache (_schema_problem)

    cls = jsonschema.Draft202012Validator
    return cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)


@functools.lru_cache(maxsize=1024)
def _schema_problem(params_json: str) -> tuple[PathT, str] | None:
    """The first meta-schema error of a tool's parameters (as JSON text: tools repeat across specs).

    A pure function of the text: kept in the user's cache (clawgen/diskcache.py), so a build whose
    tools were found valid before does not import jsonschema for them.
    """
    from clawgen import diskcache

    key = ["meta-schema", diskcache.module_id("jsonschema"), params_json]
    if diskcache.get("toolschema", key) is True:
        return None
    error = next(iter(_meta_validator().iter_errors(json.loads(params_json))), None)
    if error is not None:
        return tuple(error.relative_path), error.message
    diskcache.put("toolschema", key, True)  # only "valid" is kept: an entry never holds the user's text
    return None


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
    for cap in res.spec.capabilities:
        tools.extend(CAPABILITIES[cap].tools)
    builtin = builtin_tool_names()
    seen: dict[str, int] = {}
    modules: dict[Path, str] = {}
    for i, t in enumerate(res.spec.tools):
        name = t.name
        if name in builtin:
            out.append(_diag(res, ("tools", i, "name"), f"'{name}' is the name of a built-in tool; "
                             "choose another name"))
        elif name in seen:
            out.append(_diag(res, ("tools", i, "name"), f"tool name '{name}' is used twice "
                             f"(first at tools[{seen[name]}])"))
        seen.setdefault(name, i)
        params = t.parameters
        _check_parameters(res, i, params, out)
        found = _check_handler(res, i, t.handler, out)
        if found is None:
            continue
        src, takes_more = found
        mod = _module_name(src, modules)
        # extra_args: the device passes the handler arguments its tool does not declare (else it
        # refuses them, naming the ones the tool takes, where the call would fail with "unexpected
        # keyword argument"), unless the parameters say additionalProperties: false.
        tools.append(ToolDef(name=name, description=t.description, parameters=params, capability=None,
                             confirm=bool(t.confirm), module=mod, function=t.handler_function,
                             extra_args=takes_more and params.get("additionalProperties") is not False))
    customs = [CustomModule(module=m, source=p) for p, m in sorted(modules.items(), key=lambda kv: kv[1])]
    return tools, customs


def _hooks(res: Resolved, customs: list[CustomModule], out: list[Diagnostic]
           ) -> tuple[tuple[HookDef, ...], list[CustomModule]]:
    """hooks: each handler file found and defining its function (signatures: clawgen/handlers.py);
    a file shared with custom tools is one module on the device."""
    hk = res.spec.hooks
    if hk is None:
        return (), customs
    modules = {cm.source: cm.module for cm in customs}
    hooks = []
    for point in HOOK_POINTS:
        handler = getattr(hk, point)
        if handler is None:
            continue
        found = _check_handler(res, 0, handler, out, at=("hooks", point))
        if found is None:
            continue
        hooks.append(HookDef(point=point, module=_module_name(found[0], modules), function=handler.rpartition(":")[2],
                             handler=handler))
    if not any(getattr(hk, p) for p in HOOK_POINTS) and res.locator.written(("hooks",)):
        out.append(_diag(res, ("hooks",), "hooks: names no handler; add one of " + ", ".join(HOOK_POINTS)
                         + " (file.py:function), or remove the block", severity="warning"))
    mods = [CustomModule(module=m, source=p) for p, m in sorted(modules.items(), key=lambda kv: kv[1])]
    return tuple(hooks), mods


def _memory(res: Resolved, out: list[Diagnostic]) -> MemoryPlan | None:
    """The memory capability's notes file; memory: without the capability does nothing (a warning)."""
    m = res.spec.memory
    if "memory" not in res.spec.capabilities:
        if m != MemorySpec():  # (`clawgen config` prints the defaults: those draw no warning)
            out.append(_diag(res, ("memory",), "memory: has no effect without the memory capability; add memory "
                             "to capabilities", severity="warning"))
        return None
    if m.note_bytes + 15 > m.max_bytes:
        out.append(_diag(res, ("memory", "note_bytes"), f"memory.note_bytes ({m.note_bytes}) leaves no room for "
                         f"a note in memory.max_bytes ({m.max_bytes}): lower it or raise memory.max_bytes"))
    return MemoryPlan(path=MEMORY_PATH, max_bytes=int(m.max_bytes), note_bytes=int(m.note_bytes),
                      prompt_bytes=int(m.prompt_bytes))


def tools_json(tools: list[ToolDef]) -> str:
    """The request's "tools" array, rendered once at build time (compact, stable key order)."""
    arr = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]
    return json.dumps(arr, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def _system_prompt(res: Resolved) -> str:
    parts = [res.spec.system_prompt.strip()]
    parts += [CAPABILITIES[c].prompt for c in res.spec.capabilities]
    return "\n\n".join(parts)


def _limits(res: Resolved, prompt: str, tjson: str, out: list[Diagnostic]) -> Limits:
    lim = res.spec.limits
    written = res.locator.written

    def at(*keys: str) -> PathT:
        """The first limit the user set among ``keys``, else the limits block, else the top."""
        for k in keys:
            if written(("limits", k)):
                return ("limits", k)
        return ("limits",) if written(("limits",)) else ()

    notes = res.spec.memory.prompt_bytes if "memory" in res.spec.capabilities else 0
    need = len(prompt.encode()) + len(tjson.encode()) + REQUEST_OVERHEAD + notes
    if lim.request_bytes < need:
        where = at("request_bytes")
        if not where and written(("system_prompt",)):
            where = ("system_prompt",)
        from clawgen.schema import limit_maximum

        most = limit_maximum("request_bytes")
        fix = (f"set limits.request_bytes to at least {need}" if most is None or need <= most else
               f"that needs {need} bytes, more than the maximum limits.request_bytes of {most}: "
               "shorten the system prompt or the tool descriptions and parameters, or drop capabilities")
        out.append(_diag(res, where, f"request buffer of {lim.request_bytes} bytes cannot hold the system prompt "
                         f"({len(prompt.encode())} bytes) plus the tools JSON ({len(tjson.encode())} bytes) "
                         + (f"plus memory.prompt_bytes ({notes}) " if notes else "")
                         + f"and a request envelope; {fix}"))
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
    budget = heap_limit(res.board, res.psram)
    if ram > budget:
        out.append(_diag(res, at(), f"the buffers and history take {ram} bytes, more than the "
                         f"{budget} bytes the GC heap of {res.board.name}{' with PSRAM' if res.psram else ''} "
                         "can grow to", severity="warning"))
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

    m = res.spec.model
    add("m0_key", "model.api_key", m.api_key)
    for i, fb in enumerate(m.fallbacks, start=1):
        add(f"m{i}_key", f"model.fallbacks[{i - 1}].api_key", fb.api_key)
    if m.light is not None:
        add(f"m{len(m.fallbacks) + 1}_key", "model.light.api_key", m.light.api_key)
    add("wifi_ssid", "network.ssid", res.spec.network.ssid)
    add("wifi_pw", "network.password", res.spec.network.password)
    add("brave_key", "web.brave_api_key", res.spec.web.brave_api_key)
    if res.spec.ota is not None and isinstance(res.spec.ota.key, Secret):
        add(OTA_KEY_SLOT, "ota.key", res.spec.ota.key)
    tg = res.spec.transports.telegram
    if tg is not None and isinstance(tg.token, Secret):
        add(TELEGRAM_TOKEN_SLOT, "transports.telegram.token", tg.token)
    tel = res.spec.transports.telnet
    if tel.enabled and isinstance(tel.password, Secret):
        add(TELNET_PASSWORD_SLOT, "transports.telnet.password", tel.password)
    mcp = res.spec.mcp_server
    if mcp is not None and isinstance(mcp.token, Secret):
        add(mcpserver.TOKEN_NVS_SLOT, "mcp_server.token", mcp.token)
    return slots, values


def _telegram(res: Resolved, diags: list[Diagnostic]) -> Telegram | None:
    """transports.telegram: the token a !secret (its shape: secretcheck), Wi-Fi, a usable api URL."""
    tg = res.spec.transports.telegram
    if tg is None:
        return None
    base: PathT = ("transports", "telegram")
    if not isinstance(tg.token, Secret):
        diags.append(_diag(res, (*base, "token"), "the bot token must not be written in the spec: put it in "
                           "secrets.yaml and write token: !secret telegram_bot_token"))
    if res.spec.network.ssid is None:
        diags.append(_diag(res, base, "telegram needs Wi-Fi: set network.ssid and network.password"))
    for i, chat in enumerate(tg.allow_chats):
        if chat == 0:
            diags.append(_diag(res, (*base, "allow_chats", i), "0 is not a chat id: give the id of a user "
                               "(a positive number) or of a group (a negative number)"))
    api = (*base, "api")
    try:
        tls, host, port, prefix = parse_base_url(tg.api)
    except ValueError as e:
        diags.append(_diag(res, api, f"invalid URL: {e}"))
        return None
    if re.search(r"/bot[0-9]+:", tg.api):
        diags.append(_diag(res, api, "the URL holds a bot token: give only the Bot API's base URL (such as "
                           "https://api.telegram.org) and the token as token: !secret telegram_bot_token"))
    elif prefix.endswith(("/getUpdates", "/sendMessage")):
        diags.append(_diag(res, api, "api is the Bot API's base URL (such as https://api.telegram.org): "
                           "the device appends /bot<token>/getUpdates itself"))
    if not host:
        diags.append(_diag(res, api, "the URL has no host"))
    if not 0 < port < 65536:
        diags.append(_diag(res, api, f"port {port} is out of range"))
    loopback = host == "localhost" or host.startswith("127.")
    if not tls and not loopback:
        diags.append(_diag(res, api, "the bot token would be sent over plain http: use https",
                           severity="warning"))
    if loopback:
        diags.append(_diag(res, api, f"{host} is the board itself, not your computer: give the LAN address of "
                           "the machine running the Bot API server (or use `clawgen sim --telegram-api URL`)",
                           severity="warning"))
    return Telegram(host=host, port=port, tls=tls, path_prefix=prefix, token_slot=TELEGRAM_TOKEN_SLOT,
                    allow_chats=tuple(int(c) for c in tg.allow_chats), poll_timeout=int(tg.poll_timeout_s),
                    poll_bytes=TELEGRAM_POLL_BYTES, send_bytes=TELEGRAM_SEND_BYTES)


def _transports(res: Resolved, diags: list[Diagnostic]) -> Transports:
    """transports: the UART, and Telnet with its password (a !secret; its shape: secretcheck)."""
    tr = res.spec.transports
    tel = tr.telnet
    if tel.password is not None and not isinstance(tel.password, Secret):
        diags.append(_diag(res, ("transports", "telnet", "password"), "the Telnet password must not be written in "
                           "the spec: put it in secrets.yaml and write password: !secret telnet_password"))
    elif tel.enabled and tel.password is None:
        diags.append(_diag(res, ("transports", "telnet"), "Telnet without a password: anyone who can reach the "
                           "device can use the agent and its tools; add password: !secret telnet_password "
                           "(and its value to secrets.yaml)", severity="warning"))
    return Transports(uart=tr.uart.enabled, telnet_port=tel.port if tel.enabled else None,
                      telnet_password_slot=TELNET_PASSWORD_SLOT if tel.enabled and tel.password is not None else None)


def _mcp(res: Resolved, tools: list[ToolDef], diags: list[Diagnostic]) -> McpServer | None:
    """mcp_server: the token a !secret (its shape: secretcheck), its port its own, Wi-Fi."""
    m = res.spec.mcp_server
    if m is None:
        return None
    if not isinstance(m.token, Secret):
        diags.append(_diag(res, ("mcp_server", "token"), "the MCP token must not be written in the spec: put it "
                           "in secrets.yaml and write token: !secret mcp_token"))
    tel = res.spec.transports.telnet
    if tel.enabled and tel.port == m.port:
        diags.append(_diag(res, ("mcp_server", "port"), f"mcp_server.port {m.port} is also transports.telnet.port: "
                           "give one of them another port (MCP's default is 8765)"))
    if res.spec.ota is not None and res.spec.ota.port == m.port:
        diags.append(_diag(res, ("mcp_server", "port"), f"mcp_server.port {m.port} is also ota.port: give one of "
                           "them another port (MCP's default is 8765)"))
    if res.spec.network.ssid is None:
        diags.append(_diag(res, ("mcp_server",), "the MCP server needs Wi-Fi: set network.ssid and network.password"))
    for i, o in enumerate(m.allow_origins):
        port = str(o).rpartition("]")[2].rpartition(":")[2] if str(o).count(":") > 1 else ""
        if port.isdigit() and not 0 < int(port) <= 65535:
            diags.append(_diag(res, ("mcp_server", "allow_origins", i), f"{o}: the port must be 1..65535"))
    tj = mcpserver.tools_json_of(tools, bool(m.allow_confirm))
    # The tools/list reply (tj, TOOLS_ENVELOPE_BYTES, HEAD_RESERVE) fits the request buffer it is
    # written in: _limits makes the buffer hold the same tools in the larger OpenAI format plus the
    # system prompt and REQUEST_OVERHEAD (more than the envelope and the head).
    return McpServer(port=int(m.port), token_slot=mcpserver.TOKEN_NVS_SLOT, allow_confirm=bool(m.allow_confirm),
                     max_clients=int(m.max_clients), tools_json=tj,
                     allow_origins=tuple(str(o).lower() for o in m.allow_origins))


def _ota(res: Resolved, diags: list[Diagnostic]) -> Ota | None:
    """The ota: section: its key must be a !secret (the length rule: secretcheck), its port its own."""
    o = res.spec.ota
    if o is None:
        return None
    if not isinstance(o.key, Secret):
        diags.append(_diag(res, ("ota", "key"), "the OTA key must not be written in the spec: put it in "
                           "secrets.yaml and write key: !secret ota_key"))
    tel = res.spec.transports.telnet
    if tel.enabled and tel.port == o.port:
        diags.append(_diag(res, ("ota", "port"), f"ota.port {o.port} is also transports.telnet.port: give "
                           "one of them another port (OTA's default is 8266)"))
    if res.spec.network.ssid is None:
        diags.append(_diag(res, ("ota",), "OTA updates need Wi-Fi: set network.ssid and network.password"))
    return Ota(port=int(o.port), key_slot=OTA_KEY_SLOT, confirm_timeout=int(o.confirm_timeout))


def _pem_problem(text: str) -> str | None:
    """Why the device could not load this PEM bundle, or None. Read as the device reads /ca.pem
    (claw_http._load_ca): line by line, each certificate's base64 decoded to one DER certificate."""
    import base64
    import binascii

    n = 0
    b64: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line == "-----BEGIN CERTIFICATE-----":
            if b64 is not None:
                return f"certificate {n + 1} has no -----END CERTIFICATE----- line"
            b64 = []
        elif line == "-----END CERTIFICATE-----":
            if b64 is None:
                return f"an -----END CERTIFICATE----- line after certificate {n} has no BEGIN line"
            n += 1
            try:
                der = base64.b64decode("".join(b64), validate=True)
            except (binascii.Error, ValueError):
                return f"certificate {n} is not valid base64"
            if not _is_der_sequence(der):
                return f"certificate {n} is not a DER-encoded certificate"
            b64 = None
        elif b64 is not None:
            b64.append(line)
    if b64 is not None:
        return f"certificate {n + 1} has no -----END CERTIFICATE----- line"
    return None


def _is_der_sequence(der: bytes) -> bool:
    """One complete ASN.1 SEQUENCE (a certificate's outer structure), nothing after it."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    if der[1] < 0x80:
        head, size = 2, der[1]
    else:
        k = der[1] & 0x7F
        if not 1 <= k <= 3 or len(der) < 2 + k:
            return False
        head, size = 2 + k, int.from_bytes(der[2:2 + k], "big")
    return head + size == len(der)


def _ca_certs(res: Resolved, endpoints_tls: bool, out: list[Diagnostic], extra: tuple[str, ...] = ()) -> str:
    tls = res.spec.tls
    if tls.ca_certs:
        p = (res.spec_dir / tls.ca_certs).resolve()
        try:
            text = read_bounded(p, MAX_FILE_BYTES).decode("ascii")
        except (OSError, ValueError, OverflowError, UnicodeDecodeError):
            out.append(_diag(res, ("tls", "ca_certs"), f"cannot read {tls.ca_certs} as a PEM text file"))
            return ""
        if "-----BEGIN CERTIFICATE-----" not in text:
            out.append(_diag(res, ("tls", "ca_certs"), f"{tls.ca_certs} holds no PEM certificate "
                             "(-----BEGIN CERTIFICATE-----)"))
            return ""
        problem = _pem_problem(text)
        if problem:
            out.append(_diag(res, ("tls", "ca_certs"), f"{tls.ca_certs}: {problem}; export the CA "
                             "certificates again as PEM"))
            return ""
        return text
    if not endpoints_tls:
        return ""
    return _default_ca_certs(extra)


@functools.cache
def _default_ca_certs(extra: tuple[str, ...] = ()) -> str:
    """The roots of DEFAULT_CA_LABELS (and ``extra`` labels) from certifi's bundle: read once per
    process, and kept in the user's cache (public certificates) under the installed certifi's identity."""
    from clawgen import diskcache

    key = [diskcache.module_id("certifi"), list(extra)]
    hit = diskcache.get("ca-roots", key)
    if isinstance(hit, str) and hit:
        return hit
    import certifi

    bundle = Path(certifi.where()).read_text(encoding="ascii")
    chosen = []
    for block in bundle.split("\n\n"):
        label = re.search(r'^# Label: "(.*)"', block, re.M)
        if label and (label.group(1) in DEFAULT_CA_LABELS or label.group(1) in extra):
            pem = block[block.index("-----BEGIN CERTIFICATE-----"):].strip()
            chosen.append(f"# {label.group(1)}\n{pem}\n")
    roots = "".join(chosen)
    diskcache.put("ca-roots", key, roots)
    return roots


# Register plans computed in this process, by (chip file, its size and mtime, policy): validating
# many specs for the same chip and policy decodes and plans the chip once. Each entry keeps its
# diagnostics with the spec path they are about, to be placed in each spec's own file.
MAX_REGISTER_PLANS = 32
_REGISTER_PLANS: dict[tuple[str, int, int, str], tuple[PolicyTable, list[tuple[Diagnostic, PathT | None]]]] = {}


def _policy_value(res: Resolved) -> dict[str, Any]:
    """The spec's registers: as the policy compiler reads them (``defaults`` only when written)."""
    regs = res.spec.registers
    value: dict[str, Any] = {}
    if res.locator.written(("registers", "defaults")):
        value["defaults"] = regs.defaults
    for kind in ("allow", "deny"):
        rules = getattr(regs, kind)
        if rules:
            value[kind] = [{"match": r.match, "access": r.access} for r in rules]
    return value


def _compile_registers(res: Resolved, chip_file: Path) -> tuple[PolicyTable, list[Diagnostic]]:
    """The policy table of the spec's chip and policy, from the per-process cache when possible."""
    from clawgen import diskcache
    from clawgen.chips import load_chip
    from clawgen.chips.policy import compile_policy

    value = _policy_value(res)
    st = chip_file.stat()
    key = (str(chip_file), st.st_size, st.st_mtime_ns, json.dumps(value, sort_keys=True))
    cached = _REGISTER_PLANS.get(key)
    if cached is None:  # another process may have planned it: the user's cache (clawgen/diskcache.py)
        disk_key = [str(chip_file), diskcache.file_digest(chip_file), key[3]]
        cached = diskcache.get("registers", disk_key)
        if cached is None:
            asked: list[PathT] = []

            def record(path: PathT) -> Mark:
                """A placeholder mark standing for ``path``: resolved per spec below."""
                asked.append(tuple(path))
                return Mark(f"\0{len(asked) - 1}", 0, 0)

            chip = load_chip(res.spec.chip, chip_search_dirs(res.spec_dir))
            table, diags = compile_policy(chip, value, record)
            table.source_path = str(chip_file)
            cached = (table, [(d, asked[int(d.file[1:])] if d.file.startswith("\0") else None) for d in diags])
            diskcache.put("registers", disk_key, cached)
        while len(_REGISTER_PLANS) >= MAX_REGISTER_PLANS:  # a long-lived process: drop the oldest
            del _REGISTER_PLANS[next(iter(_REGISTER_PLANS))]
        _REGISTER_PLANS[key] = cached
    table, kept = cached
    placed = []
    for d, path in kept:
        if path is not None:
            m = res.locator.mark(path)
            d = dataclasses.replace(d, file=m.file, line=m.line, column=m.column)
        placed.append(d)
    return table, placed


def _registers(res: Resolved, out: list[Diagnostic]) -> PolicyTable | None:
    """The register policy table from the chip database (issue: chips)."""
    needs = any(c in REGISTER_CAPABILITIES for c in res.spec.capabilities)
    custom = res.spec.registers != Registers()
    watches = any(t.watch is not None for t in res.spec.triggers)  # a trigger reads through the policy
    if custom and not needs and not watches:
        out.append(_diag(res, ("registers",), "a register policy without the hw_register_control or "
                         "hw_datasheet capability has no effect", severity="warning"))
    if not needs and not custom and not watches:
        return None
    from clawgen.chips import find_chip, load_chip
    from clawgen.diagnostics import UsageError

    chip_file = find_chip(res.spec.chip, chip_search_dirs(res.spec_dir))
    try:
        if chip_file is None:
            load_chip(res.spec.chip, chip_search_dirs(res.spec_dir))  # raises, listing what exists
            raise UsageError(f'unknown chip "{res.spec.chip}"')
        table, diags = _compile_registers(res, chip_file)
    except UsageError as e:
        out.append(_diag(res, ("chip",) if res.locator.written(("chip",)) else ("board",), str(e)))
        return None
    out.extend(diags)
    return table


def chip_search_dirs(spec_dir: Path) -> list[Path]:
    """chips/ beside the spec, then $CLAWGEN_CHIP_PATH, then the built-ins."""
    from clawgen.chips import default_search_dirs

    return default_search_dirs(spec_dir)


@record
class Planned:
    """The front half of the pipeline, load -> validate -> resolve -> plan, for one spec."""

    resolved: Resolved
    plan: Plan
    nvs_values: dict[str, bytes] = field(repr=False)  # NVS key -> secret bytes
    warnings: list[Diagnostic]


def make_plan(res: Resolved, spec_file: str) -> tuple[Plan, dict[str, bytes], list[Diagnostic]]:
    """-> (plan, NVS values by key, warnings). Raises DiagnosticError on errors.

    A pure function of ``res``: the typed spec, the board and (for diagnostics only) the locator.
    """
    spec = res.spec
    diags: list[Diagnostic] = []
    tools, customs = _tools(res, diags)
    hooks, customs = _hooks(res, customs, diags)
    tjson = tools_json(tools)
    prompt = _system_prompt(res)
    limits = _limits(res, prompt, tjson, diags)
    slots, nvs_values = _secret_slots(res)
    endpoints = []
    light = spec.model.light
    for i, ep in enumerate((*spec.model.endpoints, *((light,) if light is not None else ()))):
        tls, host, port, prefix = parse_base_url(ep.base_url)
        endpoints.append(ModelEndpoint(
            index=i, provider=ep.provider, base_url=ep.base_url, tls=tls, host=host, port=port,
            path_prefix=prefix, model=ep.model, max_tokens=int(ep.max_tokens),
            temperature=None if ep.temperature is None else float(ep.temperature),
            connect_timeout=float(ep.connect_timeout), read_timeout=float(ep.read_timeout),
            api_key_slot=f"m{i}_key" if ep.api_key is not None else None, headers=dict(ep.headers),
            api=ep.api, light=ep is light))
    telegram = _telegram(res, diags)
    tg_tls = telegram is not None and telegram.tls
    ca = _ca_certs(res, any(e.tls for e in endpoints) or "web_browsing" in spec.capabilities or tg_tls, diags,
                   TELEGRAM_CA_LABELS if tg_tls else ())
    transports = _transports(res, diags)
    ota = _ota(res, diags)
    mcp = _mcp(res, tools, diags)
    registers = _registers(res, diags)
    memory = _memory(res, diags)
    triggers = plan_triggers(res, registers, chip_search_dirs(res.spec_dir), diags) if spec.triggers else ()
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        raise DiagnosticError(diags)
    net = spec.network
    plan = Plan(
        name=spec.name,
        spec_file=spec_file,
        board=res.board,
        flash_size=res.flash_size,
        psram=res.psram,
        system_prompt=prompt,
        models=endpoints,
        network=Network(ssid_slot="wifi_ssid" if net.ssid is not None else None,
                        password_slot="wifi_pw" if net.password is not None else None,
                        hostname=net.hostname, connect_retries=int(net.connect_retries)),
        transports=transports,
        capabilities=list(spec.capabilities),
        tools=tools,
        tools_json=tjson,
        limits=limits,
        persistence=Persistence(mode=spec.persistence.mode, max_bytes=int(spec.persistence.max_bytes),
                                path=PERSIST_PATH),
        debug_trace=spec.debug.trace,
        tls=Tls(verify=bool(spec.tls.verify), ca_certs=ca),
        web=Web(fetch_max_bytes=int(spec.web.fetch_max_bytes),
                search_key_slot="brave_key" if spec.web.brave_api_key is not None else None),
        secrets=slots,
        custom_modules=customs,
        chip=spec.chip,
        registers=registers,
        routing=_routing(spec.model.routing) if light is not None else None,
        ota=ota,
        mcp=mcp,
        telegram=telegram,
        hooks=hooks,
        hook_limit_ms=int(spec.hooks.limit_ms) if spec.hooks is not None else 0,
        memory=memory,
        audit=AuditPlan(path=AUDIT_PATH, entries=int(spec.audit.entries), entry_bytes=int(spec.audit.entry_bytes))
        if spec.audit.enabled and tools else None,
        triggers=triggers,
    )
    return plan, nvs_values, diags


def _routing(r: RoutingSpec) -> Routing:
    """The spec's routing with the weights as per mille summing to 1000 (resolve refuses all zero)."""
    w = (r.weights.length, r.weights.code, r.weights.tools, r.weights.depth)
    total = sum(w)
    milli = [round(1000 * x / total) for x in w]
    milli[milli.index(max(milli))] += 1000 - sum(milli)  # rounding: the sum is exactly 1000
    return Routing(threshold=round(1000 * r.threshold), w_length=milli[0], w_code=milli[1], w_tools=milli[2],
                   w_depth=milli[3], long_message=int(r.long_message), deep_conversation=int(r.deep_conversation),
                   tool_window=int(r.tool_window))
