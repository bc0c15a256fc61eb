"""The package's layout in pyproject.toml: every folder of templates/ is one of its data packages.

setuptools finds the template files through the "**/*.j2"-style package data of clawgen.templates,
but a folder of them that is not listed as a package of its own makes every install (the README's
`pip install -e .` included) print a 40-line warning about it."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")


def test_every_template_folder_is_a_listed_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    root = REPO / config["package-dir"]["clawgen.templates"]
    folders = {"clawgen.templates." + ".".join(d.relative_to(root).parts)
               for d in root.rglob("*") if d.is_dir() and d.name != "__pycache__"}
    assert folders and folders <= listed, sorted(folders - listed)
