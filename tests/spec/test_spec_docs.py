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


def test_every_cli_flag_in_the_docs_exists() -> None:
    """`clawgen CMD ... --flag` anywhere in README.md or docs/*.md names a real option of CMD."""
    import click

    from clawgen.cli import cli

    ctx = click.Context(cli)
    checked, wrong = 0, []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"(?<![\w/.-])clawgen ([a-z][a-z-]*)((?: [a-z][a-z-]*)?)([^`|#;&]*)", line):
                cmd = cli.get_command(ctx, m.group(1))
                if cmd is None:  # prose: "clawgen ships a hook"
                    continue
                rest = m.group(2) + m.group(3)
                if isinstance(cmd, click.Group):
                    cmd = cmd.get_command(ctx, m.group(2).strip()) if m.group(2) else None
                    if cmd is None:
                        wrong.append(f"{doc.name}:{n}: {m.group(0)}: no such subcommand")
                        continue
                    rest = m.group(3)
                options = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
                for flag in re.findall(r"(?:(?<=\s)|(?<=\[))(--?[a-zA-Z][\w-]*)", rest):
                    checked += 1
                    if flag not in options:
                        wrong.append(f"{doc.name}:{n}: {m.group(0).strip()}: no option {flag}")
    assert checked >= 20  # the scan sees the documented commands
    assert not wrong


# A minimal spec, one top-level key per entry; a snippet's own keys are merged in as text
# (re-dumping it through PyYAML would turn a key like `on` into a boolean, which clawgen does not).
_BASE = {
    "name": "name: demo\n",
    "model": "model:\n  base_url: https://api.openai.com/v1\n  model: gpt-4o-mini\n",
    "network": "network:\n  ssid: lab\n",
    "capabilities": "capabilities: [hw_register_control]\n",
}


def _merged(fragment: str) -> str:
    """The snippet plus every base key it lacks; a base mapping it shares fills in missing children."""
    text = fragment
    for key, block in _BASE.items():
        head = re.search(rf"^{key}:\n", text, re.M)
        if head is None:
            text += block
            continue
        children = [c for c in block.splitlines(keepends=True)[1:]
                    if not re.search(rf"^{re.escape(c.split(':')[0])}:", text[head.end():], re.M)]
        text = text[:head.end()] + "".join(children) + text[head.end():]
    return text


def test_fragment_examples_in_the_docs_validate_in_a_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each top-level snippet (transports, registers, tools, persistence, substitutions) is valid
    inside a minimal spec, without errors or warnings; the tools snippet with the docs' handler."""
    handler = next(b for b in re.findall(r"```python\n(.*?)```", SPEC_MD, re.S) if "def set_relay" in b)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "sensors.py").write_text(handler, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    fragments = [b for b in _yaml_blocks(SPEC_MD)
                 if "!" not in b and not re.search(r"^name:", b, re.M)
                 and re.match(r"(transports|registers|tools|persistence|substitutions):", b)]
    assert {next(iter(yaml.safe_load(f))) for f in fragments} >= {"transports", "registers", "tools", "persistence",
                                                                 "substitutions"}
    for i, text in enumerate(fragments):
        (tmp_path / f"frag{i}.yaml").write_text(_merged(text), encoding="utf-8")
        diags = validate_paths([Path(f"frag{i}.yaml")], None, {})
        # (The transports snippet shows Telnet in its shortest form; the password, a !secret, is in
        # the snippet after it, which this test cannot load: the warning about its absence is expected.)
        diags = [d for d in diags if not (d.severity == "warning" and d.message.startswith("Telnet without a password"))]
        assert not diags, (text, [d.text() for d in diags])
