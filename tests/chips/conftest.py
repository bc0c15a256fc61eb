"""The real vendor SVD corpus: pyocd 0.46.0's ``svd_data.zip``, from PyPI, pinned and cached.

``pip download --no-deps pyocd==0.46.0`` fetches the wheel into ``$CLAWGEN_TEST_CACHE`` (default
``~/.cache/clawgen-tests``), its sha256 is checked, and the SVDs of
``pyocd/debug/svd/svd_data.zip`` are extracted beside it. A file lock makes this safe under
pytest-xdist; a stamp file makes it idempotent. If the download fails the corpus tests FAIL with
the reason (they are never skipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PYOCD_VERSION = "0.46.0"
PYOCD_WHEEL = f"pyocd-{PYOCD_VERSION}-py3-none-any.whl"
PYOCD_WHEEL_SHA256 = "f37c1ef65a1e78b42c9bccf4f34fbde98c4ea225e87534ee872e324aae230ba5"
SVD_ZIP_MEMBER = "pyocd/debug/svd/svd_data.zip"


def cache_dir() -> Path:
    d = Path(os.environ.get("CLAWGEN_TEST_CACHE") or Path.home() / ".cache" / "clawgen-tests")
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; the rename below keeps the result whole anyway
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(cache: Path) -> Path:
    wheel = cache / PYOCD_WHEEL
    if wheel.is_file() and _sha256(wheel) == PYOCD_WHEEL_SHA256:
        return wheel
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", f"pyocd=={PYOCD_VERSION}", "-d", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        got = Path(tmp) / PYOCD_WHEEL
        if r.returncode != 0 or not got.is_file():
            raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {r.returncode}): {(r.stderr or r.stdout)[-800:]}")
        digest = _sha256(got)
        if digest != PYOCD_WHEEL_SHA256:
            raise RuntimeError(f"{PYOCD_WHEEL} has sha256 {digest}, expected {PYOCD_WHEEL_SHA256}")
        os.replace(got, wheel)
    return wheel


def obtain_corpus() -> Path:
    """The directory holding the corpus SVDs (downloading and extracting on first use)."""
    cache = cache_dir()
    dest = cache / f"pyocd-{PYOCD_VERSION}-svd"
    stamp = dest / ".complete"
    if stamp.is_file():
        return dest
    with _locked(cache / f"pyocd-{PYOCD_VERSION}.lock"):
        if stamp.is_file():
            return dest
        wheel = _download_wheel(cache)
        tmp = Path(tempfile.mkdtemp(prefix=".svd-", dir=cache))
        try:
            with zipfile.ZipFile(wheel) as wz, wz.open(SVD_ZIP_MEMBER) as inner, zipfile.ZipFile(inner) as sz:
                for info in sz.infolist():
                    name = Path(info.filename).name
                    if info.is_dir() or not name or name.startswith("."):
                        continue
                    (tmp / name).write_bytes(sz.read(info))
            (tmp / ".complete").write_text(PYOCD_WHEEL_SHA256)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def corpus_files() -> tuple[list[Path], str | None]:
    """(SVD files, None) or ([], why the corpus could not be obtained)."""
    try:
        d = obtain_corpus()
    except Exception as e:  # reported by a failing test, not a collection crash
        return [], f"could not obtain the pyocd {PYOCD_VERSION} SVD corpus from PyPI: {e}"
    return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")), None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_svd" not in metafunc.fixturenames:
        return
    files, error = corpus_files()
    if error is not None:
        metafunc.parametrize("corpus_svd", [error], ids=["corpus-unavailable"])
    else:
        metafunc.parametrize("corpus_svd", files, ids=[p.name for p in files])


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    files, error = corpus_files()
    if error is not None:
        pytest.fail(error)
    return files[0].parent
