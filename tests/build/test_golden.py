"""Golden files: every generated source of each example, compared byte for byte with tests/golden/.

A mismatch fails with a unified diff. The goldens change only through `scripts/refresh-golden`
(which sets CLAWGEN_REFRESH_GOLDEN=1 for this test): review its `git diff` before committing.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path

import pytest

from clawgen.build import BuildOptions, build_spec
from tests.conftest import EXAMPLES, REPO

GOLDEN = REPO / "tests" / "golden"
EXAMPLE_SPECS = sorted(p for p in EXAMPLES.glob("*.yaml") if p.name != "secrets.yaml")
GENERATED_DIRS = ("app", "usermod")  # generated sources; .mpy and images are binary products of them
# build.json without what depends on the machine's tools (mpy-cross version, sizes and hashes).
BUILD_JSON_KEYS = ("name", "board", "chip", "micropython", "mpy", "tools", "buffers", "static_ram_bytes",
                   "secrets", "device_files", "usermod")
REFRESH = os.environ.get("CLAWGEN_REFRESH_GOLDEN") == "1"


def _generated(out: Path) -> dict[str, bytes]:
    files = {p.relative_to(out).as_posix(): p.read_bytes()
             for d in GENERATED_DIRS for p in sorted((out / d).rglob("*")) if p.is_file()}
    info = json.loads((out / "build.json").read_text())
    stable = {k: info[k] for k in BUILD_JSON_KEYS if k in info}
    stable["mpy"] = {k: v for k, v in stable["mpy"].items() if k != "mpy_cross"}
    files["build.json"] = (json.dumps(stable, indent=2) + "\n").encode()
    return files


def _golden(name: str) -> dict[str, bytes]:
    root = GOLDEN / name
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _diff(rel: str, want: bytes, got: bytes) -> str:
    lines = difflib.unified_diff(want.decode("utf-8", "replace").splitlines(keepends=True),
                                 got.decode("utf-8", "replace").splitlines(keepends=True),
                                 fromfile=f"tests/golden/{rel}", tofile=f"generated/{rel}")
    return "".join(lines)


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_generated_sources_match_the_goldens(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    build_spec(spec, BuildOptions(out_dir=out, images=False))
    got = _generated(out)
    name = spec.stem
    if REFRESH:
        shutil.rmtree(GOLDEN / name, ignore_errors=True)
        for rel, data in got.items():
            (GOLDEN / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name / rel).write_bytes(data)
        pytest.skip(f"refreshed tests/golden/{name} ({len(got)} files)")
    want = _golden(name)
    problems = [f"missing golden for generated {name}/{rel}" for rel in sorted(set(got) - set(want))]
    problems += [f"tests/golden/{name}/{rel} is no longer generated" for rel in sorted(set(want) - set(got))]
    problems += [_diff(f"{name}/{rel}", want[rel], got[rel]) for rel in sorted(set(got) & set(want))
                 if want[rel] != got[rel]]
    assert not problems, ("generated files differ from tests/golden (if the change is intended, run "
                          "scripts/refresh-golden and review the diff):\n" + "\n".join(problems))


def test_golden_directories_are_all_examples() -> None:
    """A golden set without its example would never be compared."""
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == [p.stem for p in EXAMPLE_SPECS]


def test_refresh_script_runs_this_test() -> None:
    script = (REPO / "scripts" / "refresh-golden").read_text()
    assert "CLAWGEN_REFRESH_GOLDEN=1" in script and "tests/build/test_golden.py" in script
    assert Path(__file__).relative_to(REPO).as_posix() == "tests/build/test_golden.py"
