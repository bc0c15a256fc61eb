"""The invalid-spec corpus: every file must produce exactly the diagnostics it announces.

A case is ``invalid/<case>.yaml`` or a directory ``invalid/<case>/spec.yaml`` (with the
secrets, includes and handlers it needs beside it). Expectations are the leading
comment lines ``# expect: LINE:COL: SEVERITY: at PATH: MESSAGE`` (a diagnostic in another
file starts with that file's path relative to the case: ``# expect: inc.yaml:2:3: ...``),
or, for files that cannot carry comments (empty, binary), ``expect.txt`` beside
``spec.yaml`` with the same lines without the ``# expect:`` prefix. ``# xfail: WHY`` marks a
known clawgen bug (strict: the test fails once the bug is fixed, so the marker gets removed).
``# args: ...`` gives command-line options for the case (``-s NAME VALUE``, ``--board NAME``).
Validation runs with the case directory as the working directory so that every path in a
message is relative and the expectations are portable.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import clawgen
from clawgen.cli import cli
from clawgen.commands import validate_paths
from clawgen.diagnostics import Diagnostic

CORPUS = Path(__file__).parent / "invalid"


@dataclass(frozen=True)
class Case:
    name: str
    workdir: Path
    spec: str  # file name relative to workdir
    expected: tuple[str, ...]
    xfail: str | None
    args: tuple[str, ...] = ()

    @property
    def board(self) -> str | None:
        return self.args[self.args.index("--board") + 1] if "--board" in self.args else None

    @property
    def substitutions(self) -> dict[str, str]:
        return {self.args[i + 1]: self.args[i + 2] for i, a in enumerate(self.args) if a == "-s"}


def _header_lines(raw: bytes) -> list[str]:
    """Leading '#' comment lines, decoded leniently (a case may be deliberately non-UTF-8 later on)."""
    out = []
    for line in raw.splitlines():
        if not line.startswith(b"#"):
            break
        out.append(line.decode("utf-8", "replace"))
    return out


def _load_case(spec_path: Path, name: str) -> Case:
    raw = spec_path.read_bytes()
    expected: list[str] = []
    xfail = None
    args: list[str] = []
    for line in _header_lines(raw):
        if line.startswith("# expect:"):
            expected.append(line.removeprefix("# expect:").strip())
        elif line.startswith("# xfail:"):
            xfail = line.removeprefix("# xfail:").strip()
        elif line.startswith("# args:"):
            args += shlex.split(line.removeprefix("# args:"))
    side = spec_path.parent / "expect.txt"
    if spec_path.name == "spec.yaml" and side.is_file():
        expected += [ln.strip() for ln in side.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return Case(name, spec_path.parent, spec_path.name, tuple(expected), xfail, tuple(args))


def _all_cases() -> list[Case]:
    cases = [_load_case(p, p.stem) for p in sorted(CORPUS.glob("*.yaml"))]
    cases += [_load_case(d / "spec.yaml", d.name) for d in sorted(CORPUS.iterdir())
              if d.is_dir() and (d / "spec.yaml").is_file()]
    return sorted(cases, key=lambda c: c.name)


CASES = _all_cases()


def _param(case: Case):  # type: ignore[no-untyped-def]
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.name, marks=marks)


PACKAGE_DIR = str(Path(clawgen.__file__).resolve().parent)


def _relative_text(d: Diagnostic, spec: str) -> str:
    """The diagnostic's one-line text with the spec's own file name left implied (and
    clawgen's installation directory written as <clawgen>)."""
    text = d.text().replace(PACKAGE_DIR, "<clawgen>")
    prefix = f"{spec}:"
    return text.removeprefix(prefix) if d.file == spec else text


def test_corpus_is_large_and_every_case_announces_its_errors() -> None:
    assert len(CASES) >= 50
    for case in CASES:
        assert case.expected, f"{case.name}: no '# expect:' line"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case_reports_exactly_its_diagnostics(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case.workdir)
    diags = validate_paths([Path(case.spec)], case.board, case.substitutions)
    got = sorted(_relative_text(d, case.spec) for d in diags)
    assert got == sorted(case.expected)
    assert any(d.severity == "error" for d in diags)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_cli_exits_2_with_the_same_diagnostics_as_json(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case.workdir)
    result = CliRunner().invoke(cli, ["validate", "--format", "json", *case.args, case.spec])
    assert result.exit_code == 2, result.output
    reported = json.loads(result.stdout)
    got = sorted(_relative_text(Diagnostic(**d), case.spec) for d in reported)
    assert got == sorted(case.expected)


# A sample through the installed entry point in a real process: exit code, one line per
# error on stderr, the github format, and never a traceback.
SAMPLE = ("top_level_key_misspelled", "missing_secret_key", "handler_syntax_error", "alias_bomb",
          "binary_junk")


@pytest.mark.parametrize("name", SAMPLE)
def test_real_process_prints_one_line_per_error(name: str) -> None:
    case = next(c for c in CASES if c.name == name)
    if case.xfail:
        pytest.xfail(case.xfail)
    cmd = [sys.executable, "-c", "from clawgen.cli import main; main()", "validate", *case.args, case.spec]
    proc = subprocess.run(cmd, cwd=case.workdir, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert lines[-1].startswith(f"{len(case.expected)} error(s) in 1 spec(s)")
    assert sorted(ln.removeprefix(f"{case.spec}:") for ln in lines[:-1]) == sorted(case.expected)

    gh = subprocess.run([*cmd, "--format", "github"], cwd=case.workdir, capture_output=True, text=True,
                        timeout=60)
    assert gh.returncode == 2
    annotations = gh.stdout.splitlines()
    assert len(annotations) == len(case.expected)
    assert all(a.startswith("::error file=") for a in annotations)


def test_unknown_board_option_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.name == "board_typo")
    monkeypatch.chdir(case.workdir)
    result = CliRunner().invoke(cli, ["validate", "--board", "esp32-s3", case.spec])
    assert result.exit_code == 2
    assert result.stderr.strip() == ('clawgen: error: unknown board \'esp32-s3\' (did you mean "esp32s3"?); '
                                     "known boards: esp32, esp32c3, esp32c6, esp32s3")
