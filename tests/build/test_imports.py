"""Design: no import cycles among clawgen's modules, lazy (function-level) imports included, and every
module imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "clawgen"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _host_module(path: Path) -> bool:
    """Python of the host package: every directory down to it is a package (shims/ and unixhost/
    hold device-side MicroPython code, run by the simulator's VM)."""
    return all((d / "__init__.py").is_file() for d in [path.parent, *path.parent.parents] if d.is_relative_to(PACKAGE))


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if _host_module(p)}


def import_graph() -> dict[str, set[str]]:
    """module -> the clawgen modules it imports anywhere in its code (top level, functions, TYPE_CHECKING
    blocks aside), and the module names written as strings (lazy import tables such as cli.COMMAND_MODULES)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(node.test) for stmt in node.body for n in ast.walk(stmt)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in mods:
                targets = [node.value]
            for t in targets:
                # importing a.b.c runs a and a.b too
                parts = t.split(".")
                deps |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(mods)
        deps.discard(name)
        graph[name] = {d for d in deps if not name.startswith(d + ".") and d != "clawgen"}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_lazy_imports() -> None:
    g = import_graph()
    assert "clawgen.commands" in g["clawgen.cli"]  # a string in COMMAND_MODULES
    assert "clawgen.image.stage" in g["clawgen.build"]  # imported inside a function
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Cycles in another area's modules, reported to their owner and not yet broken. The test fails on
# any other cycle, and on one of these once it is gone (then delete it from here).
PENDING = [["clawgen.chips.policy", "clawgen.chips.tables"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(import_graph())
    new = [c for c in cycles if c not in PENDING]
    assert new == [], "import cycles (lazy imports included): " + "; ".join(" <-> ".join(c) for c in new)
    assert all(c in cycles for c in PENDING), "a pending cycle is gone: remove it from PENDING"


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    names = sorted(_modules())
    code = ("import importlib, sys\nbad = []\n"
            "for name in sys.argv[1:]:\n"
            "    for k in [k for k in sys.modules if k == 'clawgen' or k.startswith('clawgen.')]:\n"
            "        del sys.modules[k]\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception as e:\n        bad.append(f'{name}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(bad))\n")
    r = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
