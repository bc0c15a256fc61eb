"""Loading a chip database is cached per file version: `clawgen validate` of many specs decodes a
chip once, and a re-imported file is read again."""

from __future__ import annotations

import os
from pathlib import Path

from clawgen.chips import load_chip
from clawgen.chips.db import read_chip, write_chip
from clawgen.chips.policy import default_policy
from clawgen.chips.svd import import_svd

SVD = Path(__file__).parent / "svd"


def test_a_chip_file_is_decoded_once_per_version(tmp_path: Path) -> None:
    chip, _ = import_svd(SVD / "arrays.svd", "a")
    path = write_chip(chip, tmp_path / "a.json.gz")
    first = read_chip(path)
    assert read_chip(path) is first
    assert load_chip("a", [tmp_path]) is first  # the lookup by name shares the cache
    # A new import over the same file (new content, size and mtime): read again.
    chip.device_name = "REIMPORTED"
    write_chip(chip, path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = read_chip(path)
    assert again is not first and again.device_name == "REIMPORTED"
    assert first.device_name != "REIMPORTED"


def test_default_policy_is_parsed_once_but_handed_out_as_copies() -> None:
    a = default_policy("esp32s3")
    assert a["allow"], "esp32s3 has a built-in default policy"
    a["allow"].append("MUTATED.*")
    assert "MUTATED.*" not in default_policy("esp32s3")["allow"]
