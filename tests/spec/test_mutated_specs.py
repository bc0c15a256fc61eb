"""Hostile variants of the example specs (tests/mutate.py: values of the wrong type, huge numbers,
tags that point nowhere, lines deleted, duplicated, re-indented or swapped), seeded: `clawgen
validate` and `clawgen build` answer each with exit 0 or 2 and their own messages, never an
internal error or a traceback."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.cli import cli
from tests.mutate import mutate_yaml_lines

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"


@pytest.fixture
def examples(tmp_path: Path) -> list[tuple[Path, str]]:
    shutil.copytree(EXAMPLES, tmp_path / "agents")
    specs = sorted(p for p in (tmp_path / "agents").glob("*.yaml") if p.name != "secrets.yaml")
    return [(p, p.read_text()) for p in specs]


def _run(args: list[str], spec: Path, text: str, case: int) -> int:
    res = CliRunner().invoke(cli, args, catch_exceptions=True)
    shown = f"case {case}, {spec.name}:\n{text}\n--- output:\n{res.output}"
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{shown}\n{res.exception!r}"
    assert res.exit_code in (0, 2), shown
    assert "internal error" not in res.output and "Traceback" not in res.output, shown
    return res.exit_code


def test_mutated_specs_validate_with_exit_0_or_2(examples: list[tuple[Path, str]]) -> None:
    rng = random.Random(20261205)
    codes: Counter[int] = Counter()
    for case in range(240):
        spec, original = examples[case % len(examples)]
        text = mutate_yaml_lines(original, rng)
        spec.write_text(text)
        codes[_run(["validate", str(spec)], spec, text, case)] += 1
        spec.write_text(original)
    assert codes[2] > 120, codes  # most mutations break the spec: the test reaches the error paths


def test_mutated_specs_build_or_refuse_with_exit_2(examples: list[tuple[Path, str]], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    rng = random.Random(5)
    codes: Counter[int] = Counter()
    for case in range(30):
        spec, original = examples[case % len(examples)]
        text = mutate_yaml_lines(original, rng)
        spec.write_text(text)
        out = tmp_path / f"out{case % 3}"
        codes[_run(["build", str(spec), "--out", str(out), "--no-images"], spec, text, case)] += 1
        spec.write_text(original)
    assert codes[0] and codes[2], codes  # some still build, some are refused


def test_mutated_secrets_files_validate_with_exit_0_or_2(examples: list[tuple[Path, str]]) -> None:
    """secrets.yaml mutated the same way (a `!secret` inside it once recursed until Python's limit:
    an internal error)."""
    secrets = examples[0][0].parent / "secrets.yaml"
    original = secrets.read_text()
    rng = random.Random(7)
    codes: Counter[int] = Counter()
    for case in range(120):
        spec, _ = examples[case % len(examples)]
        text = mutate_yaml_lines(original, rng)
        secrets.write_text(text)
        codes[_run(["validate", str(spec)], secrets, text, case)] += 1
    secrets.write_text(original)
    assert codes[0] and codes[2], codes
