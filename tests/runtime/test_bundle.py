"""The app bundle: module list per capability, built-in tools wired to real functions, every module
compiled, and the whole bundle within the board's .mpy budget (64 KB)."""

from __future__ import annotations

import ast
from pathlib import Path

from clawgen.appmodules import CAPABILITY_MODULES, CORE_MODULES
from clawgen.capabilities import CAPABILITIES
from tests.runtime.agent_builds import build, make_spec


def _functions(source: str) -> set[str]:
    return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}


def test_builtin_tools_point_at_runtime_functions(tmp_path: Path):
    out = build(tmp_path, make_spec("http://127.0.0.1:9/v1", capabilities=["system", "web_browsing"]))
    for cap in ("system", "web_browsing"):
        for tool in CAPABILITIES[cap].tools:
            assert tool.module in CAPABILITY_MODULES[cap]
            src = (out / "app" / f"{tool.module}.py").read_text()
            assert tool.function in _functions(src), (tool.name, tool.module)


def test_modules_follow_capabilities(tmp_path: Path):
    out = build(tmp_path, make_spec("http://127.0.0.1:9/v1", capabilities=[], tools=[]))
    shipped = {p.stem for p in (out / "mpy").glob("*.mpy")}
    assert shipped == set(CORE_MODULES)
    assert sorted(p.name for p in (out / "app").glob("*.py")) == sorted(
        [f"{m}.py" for m in CORE_MODULES] + ["boot.py", "main.py"])
    assert (out / "app" / "main.py").read_text().splitlines()[-1].strip() == "claw_main.main()"


def test_bundle_within_budget(tmp_path: Path):
    import json

    out = build(tmp_path, make_spec("https://api.example.com/v1", capabilities=["system", "web_browsing"],
                                    persistence={"mode": "flash", "max_bytes": 8192},
                                    transports={"uart": True, "telnet": True},
                                    network={"ssid": "!secret s", "password": "!secret p"}),
                secrets={"s": "net", "p": "password-8"})
    info = json.loads((out / "build.json").read_text())
    total = sum(p.stat().st_size for p in (out / "mpy").glob("*.mpy"))
    assert info["bundle"]["mpy_bytes"] == total
    assert total <= 64 * 1024
    # Every generated module is bytecode only (the simulator cannot load native code).
    for p in (out / "mpy").glob("*.mpy"):
        head = p.read_bytes()[:4]
        assert head[:2] == b"M\x06" and head[2] >> 2 == 0, p.name
