"""The built-in chip databases carry facts only: no description text anywhere in them (ours are
in <chip>.notes.yaml)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clawgen.resources import chips_dir

BUILTIN = sorted(p for p in chips_dir().iterdir() if p.name.endswith(".json.gz"))


def _keys(doc: object, where: str = "") -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield f"{where}.{k}"
            yield from _keys(v, f"{where}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _keys(v, f"{where}[{i}]")


def test_the_four_chips_are_built_in() -> None:
    assert [p.name for p in BUILTIN] == ["esp32.json.gz", "esp32c3.json.gz", "esp32c6.json.gz", "esp32s3.json.gz"]


@pytest.mark.parametrize("path", BUILTIN, ids=[p.name for p in BUILTIN])
def test_no_description_fields(path: Path) -> None:
    doc = json.loads(gzip.decompress(path.read_bytes()))
    keys = list(_keys(doc))
    assert any(k.endswith(".fields") for k in keys)  # the walk does reach the fields
    assert [k for k in keys if k.rsplit(".", 1)[-1].lower() in ("description", "desc", "displayname")] == []
