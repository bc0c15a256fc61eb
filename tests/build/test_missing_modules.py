"""Issue 9 item 3: a missing or broken module fails the build loudly, naming the module; nothing is
skipped silently (no build without image/, no register assistant with an empty allowlist)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.build.helpers import clawgen, project
from tests.conftest import EXAMPLES, REPO


def _hide(module: str) -> str:
    """Code that makes ``module`` unimportable in the fresh interpreter, as if it were missing."""
    return f"import sys\nsys.modules[{module!r}] = None"


@pytest.mark.parametrize("module", ["littlefs", "esp_idf_nvs_partition_gen"])
def test_missing_image_dependency_fails_the_build(tmp_path: Path, module: str) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "out"
    args = ["build", str(spec), "--out", str(out)]
    if module == "esp_idf_nvs_partition_gen":  # plain NVS images are written by clawgen itself
        key = tmp_path / "nvs.key"
        key.write_bytes(os.urandom(64))
        args += ["--nvs-key", str(key)]
    r = clawgen(*args, cwd=tmp_path, prelude=_hide(module), env={"CLAWGEN_CACHE": str(tmp_path / "cache")})
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"required module '{module}' cannot be imported" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_missing_policy_module_fails_the_register_assistant(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = clawgen("build", str(EXAMPLES / "register-assistant.yaml"), "--out", str(out), "--no-images",
                cwd=tmp_path, prelude=_hide("clawgen.chips.policy"), env={"CLAWGEN_CACHE": str(tmp_path / "c")})
    assert r.returncode != 0, r.stdout + r.stderr
    assert "required module 'clawgen.chips.policy' cannot be imported" in r.stderr
    assert not out.exists()


def test_missing_command_module_is_loud_not_an_unknown_command(tmp_path: Path) -> None:
    r = clawgen("build", "x.yaml", cwd=tmp_path, prelude=_hide("clawgen.commands"))
    assert r.returncode != 0
    assert "required module 'clawgen.commands' cannot be imported" in r.stderr
    assert "No such command" not in r.stderr


def _guarded_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import inside a `try` whose handlers catch ImportError."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for h in node.handlers:
            types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
            caught |= {t.id for t in types if isinstance(t, ast.Name)}
        if not caught & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}:
            continue
        for stmt in node.body:
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Import):
                    found += [(sub.lineno, a.name) for a in sub.names]
                elif isinstance(sub, ast.ImportFrom):
                    found.append((sub.lineno, sub.module or "."))
    return found


def test_no_import_of_our_modules_or_dependencies_is_guarded() -> None:
    """No `try: import ... except ImportError` anywhere in clawgen/."""
    offenders = []
    for path in sorted((REPO / "clawgen").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(REPO).as_posix()}:{line}: {mod}" for line, mod in _guarded_imports(tree)]
    assert offenders == []
