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
