"""Custom tool handlers: what they need on the device, and whether the device can call them.

Two build-time checks on the user's handler files (the plan has already found each file and
function):

- **sibling modules**: a handler may ``import helpers`` where ``helpers.py`` sits beside it.
  Such modules are bundled under their own name (``/lib/helpers.mpy``), transitively and
  within bounds; what cannot work on the device (a relative import, a package directory, a
  name clawgen's runtime already uses, two different files of the same name) is refused
  with FILE:LINE:COL of the import.
- **signatures**: the device calls ``handler(**arguments)`` with the arguments the model sent,
  checked against the tool's ``parameters``. A function that cannot accept every declared
  parameter (no such argument and no ``**kwargs``), or that needs an argument the schema does
  not require, fails on the device: refused with FILE:LINE:COL of the function. (Whether it
  takes arguments beyond the declared ones, ``**kwargs``, is the plan's ``ToolDef.extra_args``.)
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

from clawgen.appmodules import ADAPTER_MODULES, CAPABILITY_MODULES, CORE_MODULES
from clawgen.diagnostics import Diagnostic
from clawgen.model import CustomModule, HookDef, Plan, ToolDef
from clawgen.records import record
from clawgen.spec import HOOK_ARGS

MAX_MODULES = 64  # sibling modules bundled at most, over all handlers

# The modules of the stock MicroPython firmware for the ESP32 port (MICROPYTHON_VERSION) a handler
# may import besides its own sibling modules: the built-in ones (MP_REGISTER_MODULE in py/,
# extmod/ and ports/esp32/ of the 1.29 sources) and the frozen ones (ports/esp32/modules, asyncio,
# and the micropython-lib packages ports/esp32/boards/manifest.py requires). Taken generously (a
# module of another board variant counts): a name outside it is only a warning.
_EXTENSIBLE = frozenset({"array", "binascii", "bluetooth", "collections", "cryptolib", "errno", "hashlib", "heapq",
                         "io", "json", "machine", "os", "platform", "random", "re", "select", "socket", "string",
                         "struct", "time", "websocket"})
MICROPYTHON_MODULES = _EXTENSIBLE | {f"u{m}" for m in _EXTENSIBLE} | frozenset({
    # built-in
    "__main__", "_asyncio", "_espnow", "_onewire", "_thread", "_webrepl", "btree", "builtins", "cmath", "deflate",
    "esp", "esp32", "framebuf", "gc", "marshal", "math", "micropython", "network", "sys", "tls", "uctypes",
    "vfs", "weakref",
    # frozen
    "_boot", "apa106", "espnow", "flashbdev", "inisetup", "asyncio", "uasyncio", "aioespnow", "dht", "ds18x20",
    "neopixel", "onewire", "umqtt", "upysh", "mip", "ntptime", "ssl", "requests", "urequests", "webrepl",
    "webrepl_setup",
})
_PACKAGES = frozenset({"asyncio", "uasyncio", "umqtt", "mip", "requests"})  # (of those: import asyncio.core...)
# CPython modules handlers are written with that MicroPython does not have, with the way out.
_CPYTHON_ONLY = {"__future__": "MicroPython has no __future__ module: drop the line",
                 "typing": "MicroPython has no typing module: drop the import (annotations need no import)"}
MAX_SOURCE_BYTES = 1 << 20  # a module file larger than this is not a handler's helper

_RESERVED = {"boot", "main", "claw_hooks", "claw_audit", *CORE_MODULES, *ADAPTER_MODULES.values(),
             *(m for mods in CAPABILITY_MODULES.values() for m in mods)}


def display_path(path: Path) -> str:
    """A user's file as diagnostics name it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


@record(frozen=False)
class _Source:
    path: Path
    tree: ast.Module | None
    display: str


def _parse(path: Path, out: list[Diagnostic], at: Diagnostic | None = None) -> _Source:
    shown = display_path(path)
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise ValueError
        text = path.read_bytes().decode("utf-8")
        return _Source(path, ast.parse(text, filename=shown), shown)
    except SyntaxError as e:
        out.append(Diagnostic(shown, e.lineno or 1, e.offset or 1, "", "error",
                              f"syntax error in handler module: {e.msg}"))
    except (OSError, ValueError):  # (UnicodeDecodeError is a ValueError)
        where = at or Diagnostic(shown, 1, 1, "", "error", "")
        out.append(replace(where, message=f"{shown} is not a readable UTF-8 text file of at most "
                           f"{MAX_SOURCE_BYTES} bytes"))
    return _Source(path, None, shown)


def _imports(tree: ast.Module) -> list[tuple[ast.stmt, str, int, bool]]:
    """(node, module name as written, relative level, guarded) for every import statement, nested
    ones too; guarded: inside a try whose handlers catch ImportError (the code has a way out)."""
    found: list[tuple[ast.stmt, str, int, bool]] = []
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, guarded = stack.pop()
        if isinstance(node, ast.Import):
            found += [(node, a.name, 0, guarded) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node, node.module or "", node.level, guarded))
        elif isinstance(node, ast.Try) and _catches_import_error(node):
            stack += [(n, True) for n in node.body]
            stack += [(n, guarded) for n in (*node.handlers, *node.orelse, *node.finalbody)]
            continue
        stack += [(n, guarded) for n in ast.iter_child_nodes(node)]
    found.sort(key=lambda f: (f[0].lineno, f[0].col_offset))
    return found


def _catches_import_error(node: ast.Try) -> bool:
    for h in node.handlers:
        names = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        if h.type is None or any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                                    "Exception", "BaseException") for n in names):
            return True
    return False


def sibling_modules(plan: Plan) -> tuple[list[CustomModule], list[Diagnostic]]:
    """The modules beside the handler files that the handlers import (transitively), and the
    problems: errors, and a warning for an import of a module that is neither beside the handler,
    nor bundled for another handler, nor one of the firmware's (``MICROPYTHON_MODULES``)."""
    out: list[Diagnostic] = []
    # (module or "", warning): settled once every handler is read (a module may yet be bundled)
    unknown: list[tuple[str, Diagnostic]] = []
    taken: dict[str, Path] = {cm.module: cm.source.resolve() for cm in plan.custom_modules}
    found: dict[str, Path] = {}
    queue = [cm.source.resolve() for cm in plan.custom_modules]
    seen: set[Path] = set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        src = _parse(path, out)
        if src.tree is None:
            continue
        for node, dotted, level, guarded in _imports(src.tree):
            name = dotted.split(".")[0]
            def diag(msg: str, node: ast.stmt = node, src: _Source = src, severity: str = "error") -> Diagnostic:
                return Diagnostic(src.display, node.lineno, node.col_offset + 1, "", severity, msg)

            if level:
                out.append(diag("relative import: a handler is a plain module on the device, not a package; "
                                "import the module beside it by its name (import helpers)"))
                continue
            here = path.parent
            if (here / name).is_dir() and not (here / f"{name}.py").is_file():
                if (here / name / "__init__.py").is_file():
                    out.append(diag(f"'{name}' is a package directory beside the handler; clawgen bundles only "
                                    f"single modules: make it {name}.py"))
                continue
            sibling = here / f"{name}.py"
            if not sibling.is_file():
                # A module of the device's MicroPython (time, machine, json...), or a warning.
                if not guarded and name in MICROPYTHON_MODULES and dotted != name and name not in _PACKAGES:
                    unknown.append(("", diag(f"import {dotted}: the device will raise ImportError here; MicroPython's "
                                             f"{name} is a module, not a package (import {name})", severity="warning")))
                elif not guarded and name and name not in MICROPYTHON_MODULES and name not in _RESERVED:
                    hint = _CPYTHON_ONLY.get(name) or (
                        f"no {name}.py beside the handler to bundle, and MicroPython's ESP32 firmware has no "
                        f"module '{name}': put {name}.py beside the handler, or install it on the device")
                    unknown.append((name, diag(f"import {name}: the device will raise ImportError here; {hint}",
                                               severity="warning")))
                continue
            sibling = sibling.resolve()
            if name in _RESERVED or name.startswith("tool_"):
                out.append(diag(f"the module '{name}' beside the handler has the name of a clawgen runtime "
                                "module on the device; rename it"))
                continue
            if not name.isidentifier():
                out.append(diag(f"'{name}.py' cannot be imported by that name; rename it"))
                continue
            owner = found.get(name)
            if owner is not None and owner != sibling:
                out.append(diag(f"two different modules named '{name}' would both be /lib/{name}.mpy on the "
                                f"device ({display_path(owner)} and {display_path(sibling)}); rename one"))
                continue
            if owner is None:
                if len(found) >= MAX_MODULES:
                    out.append(diag(f"handlers import more than {MAX_MODULES} modules of their own; "
                                    "merge some of them"))
                    return [], out
                found[name] = sibling
                if sibling not in taken.values():
                    queue.append(sibling)
    mods = [CustomModule(module=name, source=p) for name, p in sorted(found.items())]
    # (a module bundled beside another handler, or a handler module, is in /lib for every handler)
    out += sorted((d for name, d in unknown if not name or (name not in found and name not in taken)),
                  key=lambda d: (d.file, d.line, d.column))
    return mods, out


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return defs[-1] if defs else None


def check_signature(tool: ToolDef, fn: ast.FunctionDef, display: str) -> list[Diagnostic]:
    """The device calls fn(**arguments): every declared parameter must be accepted, every
    argument without a default must be required by the schema."""
    params: dict[str, Any] = tool.parameters or {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = [r for r in params.get("required") or [] if isinstance(r, str)]
    if fn.decorator_list:
        return []  # a decorator may change the signature: nothing to check reliably
    a = fn.args
    out: list[Diagnostic] = []

    def diag(node: ast.AST, msg: str) -> None:
        out.append(Diagnostic(display, getattr(node, "lineno", fn.lineno), getattr(node, "col_offset", 0) + 1,
                              "", "error", f"handler of tool '{tool.name}': {msg}"))

    positional = a.posonlyargs + a.args
    defaults_from = len(positional) - len(a.defaults)
    named: dict[str, ast.arg] = {}
    reported: set[str] = set()
    for i, arg in enumerate(positional):
        has_default = i >= defaults_from
        if arg in a.posonlyargs:
            if not has_default or arg.arg in props:
                diag(arg, f"'{arg.arg}' is positional-only, but the device passes arguments by name; "
                     "remove the '/'")
                reported.add(arg.arg)
            continue
        named[arg.arg] = arg
        if not has_default and arg.arg not in required:
            diag(arg, _undeclared(arg.arg, props))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        named[arg.arg] = arg
        if default is None and arg.arg not in required:
            diag(arg, _undeclared(arg.arg, props))
    if a.kwarg is None:
        for name in [*props, *(r for r in required if r not in props)]:
            if name not in named and name not in reported:
                diag(fn, f"{fn.name}() has no parameter '{name}' that the tool's parameters declare; add "
                     f"{name}=... (or **kwargs) to its signature, or remove it from the parameters")
    return out


def check_hook_signature(hook: HookDef, fn: ast.FunctionDef, display: str) -> list[Diagnostic]:
    """The device calls a hook as fn(**kwargs) with HOOK_ARGS[point]: it must accept each of them
    (by name or **kwargs) and need nothing else."""
    passed = HOOK_ARGS[hook.point]
    if fn.decorator_list:
        return []
    a = fn.args
    out: list[Diagnostic] = []
    want = ", ".join(passed)

    def diag(node: ast.AST, msg: str) -> None:
        out.append(Diagnostic(display, getattr(node, "lineno", fn.lineno), getattr(node, "col_offset", 0) + 1,
                              "", "error", f"{hook.point} hook {fn.name}(): {msg}; the device calls it as "
                              f"{fn.name}({', '.join(f'{n}=...' for n in passed)})"))

    positional = a.posonlyargs + a.args
    defaults_from = len(positional) - len(a.defaults)
    named: set[str] = set()
    posonly = [arg for i, arg in enumerate(a.posonlyargs) if i < defaults_from or arg.arg in passed]
    if posonly:
        diag(posonly[0], f"{', '.join(repr(p.arg) for p in posonly)} positional-only, but hooks get their "
             "arguments by name; remove the '/'")
    for i, arg in enumerate(positional):
        if arg in a.posonlyargs:
            named.add(arg.arg)
            continue
        named.add(arg.arg)
        if i < defaults_from and arg.arg not in passed:
            diag(arg, f"'{arg.arg}' is not an argument of {hook.point} hooks ({want}) and has no default")
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        named.add(arg.arg)
        if default is None and arg.arg not in passed:
            diag(arg, f"'{arg.arg}' is not an argument of {hook.point} hooks ({want}) and has no default")
    if a.kwarg is None:
        missing = [n for n in passed if n not in named]
        if missing:
            diag(fn, f"takes no parameter {', '.join(repr(m) for m in missing)}; write def {fn.name}({want}) "
                 "(or add **kwargs)")
    return out


def _undeclared(name: str, props: dict[str, Any]) -> str:
    if name in props:
        return (f"'{name}' has no default, but the tool's parameters do not list it in 'required' (the model "
                f"may leave it out): add it to required, or give it a default")
    return (f"'{name}' has no default and is not among the tool's parameters, so the device never passes it: "
            "declare it under parameters.properties (and required), or give it a default")


def check_handlers(plan: Plan) -> tuple[Plan, list[Diagnostic]]:
    """-> (plan with the sibling modules added to its custom modules, diagnostics: errors and
    warnings)."""
    if not plan.custom_modules:
        return plan, []
    out: list[Diagnostic] = []
    sources = {cm.module: _parse(cm.source.resolve(), out) for cm in plan.custom_modules}
    for tool in plan.tools:
        src = sources.get(tool.module or "")
        if src is None or src.tree is None or tool.function is None:
            continue
        fn = _function(src.tree, tool.function)
        if fn is not None:
            out += check_signature(tool, fn, src.display)
    for hook in plan.hooks:
        src = sources.get(hook.module)
        if src is None or src.tree is None:
            continue
        fn = _function(src.tree, hook.function)
        if fn is not None:
            out += check_hook_signature(hook, fn, src.display)
    siblings, diags = sibling_modules(plan)
    out += diags
    unique: list[Diagnostic] = []
    for d in out:
        if d not in unique:
            unique.append(d)
    if not siblings:
        return plan, unique
    return replace(plan, custom_modules=[*plan.custom_modules, *siblings]), unique
