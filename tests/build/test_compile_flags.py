"""How modules are compiled: clawgen's own with mpy-cross -O3 (no line-number tables, no asserts),
a user's handler as written (its asserts run, its tracebacks name its lines), everything as written
in a `debug: {trace: true}` build."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from clawgen.build import BuildOptions, build_spec
from tests.build.helpers import SPEC, project

HANDLER = "def blink(n):\n    assert n >= 0, 'n must not be negative'\n    return n\n"
TOOLS = SPEC + ("tools:\n  - name: blink\n    description: Blink the LED.\n"
                "    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
                "    handler: tools/led.py:blink\n")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def test_a_handler_keeps_its_asserts_and_line_numbers(tmp_path: Path, unixvm: str) -> None:
    spec = project(tmp_path / "proj", spec=TOOLS, files={"tools/led.py": HANDLER})
    out = build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False)).out_dir
    code = (f"import sys\nsys.path.insert(0, {str(out / 'mpy')!r})\nimport tool_led\n"
            "print(tool_led.blink(2))\ntool_led.blink(-1)\n")
    proc = subprocess.run([unixvm, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert proc.stdout.splitlines()[0] == "2"
    report = proc.stdout + proc.stderr  # the unix port prints uncaught exceptions on stdout
    assert "AssertionError: n must not be negative" in report, report
    assert 'File "tool_led.py", line 2, in blink' in report, report


def test_a_debug_build_compiles_every_module_with_its_line_numbers(tmp_path: Path) -> None:
    plain = build_spec(project(tmp_path / "a", spec=TOOLS, files={"tools/led.py": HANDLER}),
                       BuildOptions(out_dir=tmp_path / "out-a", images=False)).out_dir
    debug = build_spec(project(tmp_path / "b", spec=TOOLS + "debug: {trace: true}\n",
                               files={"tools/led.py": HANDLER}),
                       BuildOptions(out_dir=tmp_path / "out-b", images=False)).out_dir
    same_source = [p.stem for p in (plain / "app").glob("claw_*.py")
                   if (debug / "app" / p.name).read_bytes().split(b"\n", 3)[3:] == p.read_bytes().split(b"\n", 3)[3:]]
    assert "claw_http" in same_source, same_source
    for name in same_source:  # the same source, compiled two ways: the debug one is larger (line tables)
        assert len((debug / "mpy" / f"{name}.mpy").read_bytes()) > len((plain / "mpy" / f"{name}.mpy").read_bytes()), name
    assert (debug / "mpy" / "tool_led.mpy").read_bytes() == (plain / "mpy" / "tool_led.mpy").read_bytes()


def test_the_runtime_has_no_asserts(tmp_path: Path) -> None:
    """-O3 drops assert statements: the generated modules must not rely on any."""
    specs = sorted((REPO / "examples" / "agents").glob("*.yaml"))
    checked = 0
    for spec in specs:
        if spec.name == "secrets.yaml":
            continue
        out = build_spec(spec, BuildOptions(out_dir=tmp_path / spec.stem, images=False,
                                            placeholder_secrets=True)).out_dir
        for src in (out / "app").glob("claw*.py"):
            tree = ast.parse(src.read_text(encoding="utf-8"))
            asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
            assert not asserts, f"{src.name}: assert at lines {asserts} (compiled away by -O3)"
            checked += 1
    assert checked > 40
