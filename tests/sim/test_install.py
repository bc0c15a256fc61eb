"""Locating and installing the MicroPython VM package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.diagnostics import UsageError
from clawgen.sim import install


def test_version_is_pinned_exactly() -> None:
    pkg = json.loads((install.SIM_DIR / "package.json").read_text())
    lock = json.loads((install.SIM_DIR / "package-lock.json").read_text())
    version = pkg["dependencies"][install.MPVM_PACKAGE]
    assert version == install.mpvm_version() == "1.29.0-6"  # MicroPython v1.29.0, .mpy v6.3
    assert lock["packages"][f"node_modules/{install.MPVM_PACKAGE}"]["version"] == version


def test_install_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLAWGEN_MPVM_DIR", raising=False)
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    assert install.mpvm_dir() == tmp_path / "cache" / "mpvm" / "1.29.0-6"
    monkeypatch.setenv("CLAWGEN_MPVM_DIR", str(tmp_path / "mine"))
    assert install.mpvm_dir() == tmp_path / "mine"


def test_a_wrong_version_is_not_installed(tmp_path: Path) -> None:
    pkg_dir = tmp_path / "node_modules" / install.MPVM_PACKAGE
    pkg_dir.mkdir(parents=True)
    (pkg_dir / "micropython.mjs").write_text("")
    (pkg_dir / "package.json").write_text(json.dumps({"version": "1.28.0-1"}))
    assert not install.is_installed(tmp_path)
    (pkg_dir / "package.json").write_text(json.dumps({"version": "1.29.0-6"}))
    assert install.is_installed(tmp_path)


def test_missing_npm_is_a_clear_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLAWGEN_MPVM_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(install.shutil, "which", lambda name: "/usr/bin/node" if name == "node" else None)
    with pytest.raises(UsageError, match="needs npm"):
        install.ensure_installed(quiet=True)
    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match=r"needs Node\.js"):
        install.ensure_installed(quiet=True)


def test_an_install_dir_that_cannot_be_one_is_a_clear_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    # $CLAWGEN_MPVM_DIR naming a directory that holds something else, /dev/null, or a name too
    # long: "internal error: OSError: Directory not empty / Not a directory / File name too long",
    # and the long name a traceback from `clawgen sim`'s early start.
    import os
    import subprocess
    import sys

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    cases = {str(tmp_path / "full"): "it exists and is not an install of it", "/dev/null": "is not an install of it",
             str(tmp_path / ("x" * 300)): "$CLAWGEN_MPVM_DIR: a name of 300 bytes"}
    for value, words in cases.items():
        monkeypatch.setenv("CLAWGEN_MPVM_DIR", value)
        with pytest.raises(UsageError, match=words.replace("$", r"\$")):
            install.ensure_installed(quiet=True)
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mpvm-")] == []  # no staging left
    spec = tmp_path / "agent.yaml"
    spec.write_text("name: a\nmodel: {base_url: 'https://api.openai.com/v1', model: m}\n")
    for value, words in cases.items():
        r = subprocess.run([sys.executable, "-m", "clawgen", "sim", str(spec), "--model", "mock"], input="/quit\n",
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "CLAWGEN_MPVM_DIR": value, "CLAWGEN_CACHE": str(tmp_path / "c")})
        assert r.returncode == 1 and words in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
