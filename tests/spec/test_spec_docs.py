"""docs/spec.md, docs/ci.md and .pre-commit-hooks.yaml stay true to the schema, the boards and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from clawgen.boards import all_boards
from clawgen.commands import validate_paths
from clawgen.schema import agent_schema

ROOT = Path(__file__).resolve().parents[2]
SPEC_MD = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
CI_MD = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")


def _yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", markdown, re.S)


def test_every_schema_key_is_documented() -> None:
    schema = agent_schema()
    missing = []
    for key, sub in schema["properties"].items():
        if f"### {key}" not in SPEC_MD:
            missing.append(key)
        for child in sub.get("properties", {}):
            if f"`{child}`" not in SPEC_MD:
                missing.append(f"{key}.{child}")
    assert not missing


def test_capabilities_and_enums_are_documented() -> None:
    schema = agent_schema()
    for cap in schema["properties"]["capabilities"]["items"]["enum"]:
        assert f"`{cap}`" in SPEC_MD
    for mode in ("none", "flash"):
        assert f"`{mode}`" in SPEC_MD


def test_limit_defaults_table_matches_the_boards() -> None:
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \| [^\n]*$", SPEC_MD, re.M)}
    for board in all_boards():
        for key, value in board.limits.items():
            cells = [c.strip() for c in rows[key].split("|")]
            assert str(value) in cells, f"{board.name}: limits.{key} default {value} not in docs row {rows[key]}"


def test_full_spec_examples_in_the_docs_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every complete spec shown in docs/spec.md is valid (with placeholder secrets)."""
    specs = [b for b in _yaml_blocks(SPEC_MD) if re.search(r"^name:", b, re.M) and re.search(r"^model:", b, re.M)]
    assert specs
    monkeypatch.chdir(tmp_path)
    for i, text in enumerate(specs):
        names = set(re.findall(r"!secret (\w+)", text))
        (tmp_path / "secrets.yaml").write_text("".join(f"{n}: placeholder\n" for n in names), encoding="utf-8")
        (tmp_path / f"doc{i}.yaml").write_text(text, encoding="utf-8")
        errors = [d for d in validate_paths([Path(f"doc{i}.yaml")], None, {}) if d.severity == "error"]
        assert not errors, [d.text() for d in errors]


def test_model_examples_in_the_docs_are_valid_model_sections(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenAI / OpenRouter / Ollama / llama.cpp snippets each make a valid spec."""
    block = next(b for b in _yaml_blocks(SPEC_MD) if "# Ollama" in b)
    snippets = [s for s in re.split(r"\n(?=# )", block) if "model:" in s]
    assert len(snippets) == 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.yaml").write_text("openai_api_key: x\nopenrouter_api_key: y\n", encoding="utf-8")
    for i, snippet in enumerate(snippets):
        (tmp_path / f"m{i}.yaml").write_text("name: demo\n" + snippet, encoding="utf-8")
        errors = [d for d in validate_paths([Path(f"m{i}.yaml")], None, {}) if d.severity == "error"]
        assert not errors, [d.text() for d in errors]


def test_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "clawgen-validate")
    assert hook["entry"] == "clawgen validate"
    files, exclude = re.compile(hook["files"]), re.compile(hook["exclude"])

    def selected(path: str) -> bool:
        return bool(files.search(path)) and not exclude.search(path)

    assert selected("agents/greenhouse.yaml") and selected("fw/agents/a.yml")
    assert not selected("agents/secrets.yaml") and not selected("agents/tools/x.yaml")
    assert not selected("config/other.yaml")
    assert "id: clawgen-validate" in CI_MD


def test_ci_workflow_example_is_valid_yaml_and_validates_with_github_format() -> None:
    workflow = next(b for b in _yaml_blocks(CI_MD) if "jobs:" in b)
    data = yaml.safe_load(workflow)
    runs = [s.get("run", "") for s in data["jobs"]["validate"]["steps"]]
    assert any("clawgen validate --format github" in r for r in runs)


def test_schema_line_in_docs_and_examples_points_at_the_schema() -> None:
    line = "# yaml-language-server: $schema=../../schemas/agent.schema.json"
    assert line in SPEC_MD and line in CI_MD
    for example in (ROOT / "examples" / "agents").glob("*.yaml"):
        if example.name == "secrets.yaml":
            continue
        first = example.read_text(encoding="utf-8").splitlines()[0]
        target = first.split("$schema=", 1)[1]
        assert (example.parent / target).resolve() == (ROOT / "schemas" / "agent.schema.json").resolve()
