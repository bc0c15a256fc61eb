"""Odd command-line values into every command that takes a path, a host or a name: each is a
clear error or works, never a traceback or an "internal error" (a sweep of 1,152 such calls of
the installed `clawgen` found "File name too long", an IDNA UnicodeError and a surrogate that
could not be encoded; this keeps the cases that fail fast, in process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.cli import cli


def _tolerant_output_of_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's output streams, made as clawgen.cli.main makes the real ones (errors escaped:
    ``_tolerant_output``); the real ones are tested below through a process."""
    from click import testing

    real = testing._NamedTextIOWrapper

    class Tolerant(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **{**kw, "errors": "backslashreplace"})

    monkeypatch.setattr(testing, "_NamedTextIOWrapper", Tolerant)

# (Paths that may be created are relative: the commands run in a temporary directory, and a test must
# not write outside it. "/" is refused by every command that writes: it holds files clawgen did not write.)
ODD = ["/", "/dev/null", "missing/dir/x", "adir", "fifo", "x" * 300, "a/" * 2000, "\x1b[31mred", "-1",
       "99999999999999999999", "::", "a b", "\udcff"]  # (the last: a byte that is not UTF-8, 0xff)
SPEC = "register-assistant.yaml"
CASES = [
    *[[cmd, v] for cmd in ("build", "config", "validate", "flash", "web", "ota") for v in ODD if v != "/"],
    *[["build", opt, v, SPEC] for opt in ("--out", "--base-firmware", "--nvs-key", "--devices", "--board")
      for v in ODD],
    *[["sim", "--out", v, "nope.yaml"] for v in ODD],
    *[["logs", "--host", v, SPEC] for v in ODD],
    *[["ota", "x", "--host", v] for v in ODD],
    *[["svd", "info", v] for v in ODD],
    *[["svd", "import", v, "--chip", "c"] for v in ODD],
    *[["svd", "import", "nope.svd", "--chip", v] for v in ODD],
    *[["init", v, "-y", "--name", "x"] for v in ODD if v not in ("/", "adir")],
    *[["init", "proj", "-y", "--name", v] for v in ODD],
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import REPO

    d = tmp_path_factory.mktemp("odd")
    for p in (REPO / "examples" / "agents").iterdir():
        if p.is_file():
            (d / p.name).write_bytes(p.read_bytes())
    (d / "adir").mkdir()
    os.mkfifo(d / "fifo")
    return d


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(x[:12].encode("ascii", "backslashreplace").decode()
                                                             for x in a))
def test_odd_values_are_clear_errors(workdir: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("CLAWGEN_CACHE", str(workdir / "cache"))
    _tolerant_output_of_the_runner(monkeypatch)
    r = CliRunner().invoke(cli, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code in (0, 1, 2), r.output
    assert "internal error" not in r.output and "Traceback" not in r.output, r.output
    assert "\x1b[31m" not in r.output  # (a value of the user's does not drive the terminal)


@pytest.mark.parametrize(("args", "shown"), [
    (["build", "--out", "o\udcff", SPEC, "--no-images"], "o\\udcff"), (["init", "d\udcff", "-y", "--name", "x"], "d\\udcff"),
    (["validate", "s\udcff.yaml"], "s?.yaml")])  # (a diagnostic shows what is not printable as "?")
def test_names_in_bytes_that_are_not_utf8_on_a_strict_terminal(workdir: Path, args: list[str], shown: str) -> None:
    # A UTF-8 locale other than C.UTF-8 writes stdout strictly: printing the name raised
    # UnicodeEncodeError after the build was done ("internal error", exit 1).
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "CLAWGEN_CACHE": str(workdir / "cache")}
    r = subprocess.run([sys.executable, "-m", "clawgen", *args], cwd=workdir, env=env, capture_output=True, timeout=120)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert "internal error" not in out and "Traceback" not in out, out
    assert r.returncode == (2 if args[0] == "validate" else 0), out
    assert shown in out  # the byte, shown escaped
