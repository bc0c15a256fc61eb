"""clawgen.files.read_bounded: the size stat gives is only where reading starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clawgen import files
from clawgen.files import read_bounded
from tests.special_files import KINDS, make_not_regular


def test_reads_a_file_whole(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 1000)
    assert read_bounded(p, 1000) == b"x" * 1000
    assert read_bounded(p, 5000) == b"x" * 1000


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 1001)
    with pytest.raises(OverflowError):
        read_bounded(p, 1000)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_regular_file_that_says_size_zero_is_read_whole() -> None:
    # /proc files are regular files whose stat size is 0: the read goes on past what stat said.
    p = Path("/proc/self/status")
    assert os.stat(p).st_size == 0
    data = read_bounded(p, 1 << 20)
    assert b"VmHWM" in data and len(data) > 100


def test_a_file_that_grows_after_stat_is_read_up_to_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"a" * 10)
    real_open = Path.open

    def open_after_growth(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        with real_open(self, "ab") as f:  # the file grows between stat and open
            f.write(b"b" * 20)
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files.Path, "open", open_after_growth)
    assert read_bounded(p, 100) == b"a" * 10 + b"b" * 20
    p.write_bytes(b"a" * 10)
    with pytest.raises(OverflowError):
        read_bounded(p, 25)  # grew past the limit: refused, not cut


@pytest.mark.parametrize("kind", KINDS)
def test_what_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    p = make_not_regular(tmp_path / "x", kind)
    with pytest.raises(IsADirectoryError if kind == "directory" else ValueError):
        read_bounded(p, 100)
