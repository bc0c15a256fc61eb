"""Where clawgen's own data lives: templates, schemas, boards, built-in chips.

In a source checkout they sit at the top of the repository (templates/, schemas/);
in an installed wheel they are the packages clawgen.templates / clawgen.schemas.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = PACKAGE_DIR.parent


def _data_dir(name: str) -> Path:
    checkout = _REPO_ROOT / name
    if checkout.is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return checkout
    return PACKAGE_DIR / name  # installed: the data packages clawgen.templates / clawgen.schemas


def templates_dir() -> Path:
    return _data_dir("templates")


def schemas_dir() -> Path:
    return _data_dir("schemas")


def boards_dir() -> Path:
    return PACKAGE_DIR / "boards"


def chips_dir() -> Path:
    """Built-in chip databases (written by `clawgen svd import`)."""
    return PACKAGE_DIR / "chips" / "builtin"
