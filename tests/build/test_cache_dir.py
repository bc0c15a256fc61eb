"""One cache directory for every cache of clawgen (clawgen/cachedir.py): the build's, the base
firmware's and the simulator's follow the same variables, and a directory no file system could
hold is one clear error, not "File name too long" from whichever file is looked up first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawgen.cachedir import cache_root
from clawgen.diagnostics import UsageError
from clawgen.image import basefw
from clawgen.sim import install
from tests.conftest import REPO

LONG = "c" * 300


@pytest.mark.parametrize(("env", "want"), [
    ({"CLAWGEN_CACHE": "/tmp/cg", "XDG_CACHE_HOME": "/tmp/xdg"}, "/tmp/cg"),
    ({"XDG_CACHE_HOME": "/tmp/xdg"}, "/tmp/xdg/clawgen"),  # (the build's own caches ignored it)
    ({"CLAWGEN_CACHE": "~/cg"}, "~/cg"),
    ({"HOME": "/tmp/home"}, "/tmp/home/.cache/clawgen"),
])
def test_every_cache_is_under_the_one_root(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], want: str) -> None:
    monkeypatch.delenv("CLAWGEN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("CLAWGEN_MPVM_DIR", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    root = Path(os.path.expanduser(want))
    assert cache_root() == root
    assert basefw.cache_dir() == root / "firmware"
    assert install.mpvm_dir().parent.parent == root


@pytest.mark.parametrize("var", ["CLAWGEN_CACHE", "XDG_CACHE_HOME"])
def test_a_cache_directory_no_file_system_takes_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                   var: str) -> None:
    monkeypatch.delenv("CLAWGEN_CACHE", raising=False)
    monkeypatch.setenv(var, str(tmp_path / LONG))
    with pytest.raises(UsageError, match=f"cache directory from \\${var}: a name of 300 bytes"):
        cache_root()
    spec = REPO / "examples" / "agents" / "local-chat.yaml"
    env = {**os.environ, var: str(tmp_path / LONG)}
    for args in (["build", str(spec), "--out", str(tmp_path / "out")], ["sim", str(spec), "--model", "mock"]):
        r = subprocess.run([sys.executable, "-m", "clawgen", *args], capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, timeout=120)
        # (was "internal error: OSError: [Errno 36] File name too long", and a traceback from `sim`)
        assert r.returncode == 1, r.stderr
        assert f"the cache directory from ${var}" in r.stderr and "set CLAWGEN_CACHE to another directory" in r.stderr
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
