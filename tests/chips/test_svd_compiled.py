"""The SVD importer's compiled twin (setup.py: svd.py compiled by mypyc as clawgen.chips._svd_native):
it runs only when built from svd.py's current text, and it gives exactly what svd.py's own code gives.
CI requires it ($CLAWGEN_REQUIRE_COMPILED=1, set by .ci/run): the speed figure of issue 9 is its."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clawgen.chips import svd
from clawgen.chips.db import chip_to_json
from clawgen.diagnostics import DiagnosticError

SVD = Path(__file__).parent / "svd"
COMPILED = svd.implementation().startswith("compiled")


def test_the_importer_runs_compiled_where_it_is_required() -> None:
    if os.environ.get("CLAWGEN_REQUIRE_COMPILED") != "1" and not COMPILED:
        pytest.skip(f"SVD importer: {svd.implementation()}")
    assert svd.implementation() == "compiled (mypyc)", (
        f"SVD importer: {svd.implementation()}; `.venv/bin/pip install -v -e .` shows why in its 'clawgen setup:' "
        "line (mypy's type errors in svd.py or a module it imports are printed above it)")
    assert svd._IMPORT is not svd._import_svd


def _outcome(fn: object, path: Path, keeps: tuple[bool, ...]) -> object:
    out = []
    for keep in keeps:
        try:
            chip, diags = fn(path, "t", keep_descriptions=keep)  # type: ignore[operator]
            out.append((chip_to_json(chip), chip.totals(), [d.text() for d in diags]))
        except DiagnosticError as e:
            out.append(str(e))
    return out


@pytest.mark.skipif(not COMPILED, reason=f"SVD importer: {svd.implementation()}")
@pytest.mark.parametrize("name", sorted(p.name for p in SVD.glob("*.svd")))
def test_the_compiled_twin_gives_what_svd_py_gives(name: str) -> None:
    # The test SVDs (the hostile ones too), with and without descriptions: the same chip database,
    # totals and warnings, or the same error.
    path = SVD / name
    assert _outcome(svd.import_svd, path, (True, False)) == _outcome(svd._import_svd, path, (True, False))


@pytest.mark.skipif(not COMPILED, reason=f"SVD importer: {svd.implementation()}")
def test_the_compiled_twin_gives_what_svd_py_gives_on_the_vendor_corpus(corpus_svd: Path | str) -> None:
    if isinstance(corpus_svd, str):  # the corpus could not be downloaded: say why, loudly
        pytest.fail(corpus_svd)
    assert _outcome(svd.import_svd, corpus_svd, (True,)) == _outcome(svd._import_svd, corpus_svd, (True,))


def test_a_twin_built_from_another_text_of_svd_py_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # After an edit of svd.py without a new `pip install -e .`, svd.py's own code runs.
    edited = tmp_path / "svd.py"
    edited.write_bytes(Path(svd.__file__).read_bytes() + b"# edited\n")
    monkeypatch.setattr(svd, "__file__", str(edited))
    fn, why = svd._twin()
    assert fn is None
    assert why.startswith("interpreted (") and ("another version of svd.py" in why or "no compiled" in why), why


def test_without_a_twin_the_code_here_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svd, "TWIN", "clawgen.chips._no_such_twin")
    assert svd._twin() == (None, "interpreted (no compiled importer: clawgen was installed without a C "
                                 "compiler or mypyc)")
