"""The user cache stays below a size: its content-addressed parts are trimmed least recently used
first (clawgen/diskcache.py, ``trim``), a cache hit marks its entry as used, and what a trim removes
is only ever a miss."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from clawgen import diskcache
from tests.build.helpers import clawgen, project


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("CLAWGEN_CACHE", str(root))
    monkeypatch.delenv(diskcache.MAX_MB_ENV, raising=False)
    return root


def _put(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_trim_removes_the_least_recently_used_entries_down_to_its_share_of_the_limit(cache: Path) -> None:
    old = [_put(cache / "mpy" / "aa" / f"old{i}.mpy", 1000, 3600 + i) for i in range(6)]
    new = [_put(cache / "fs" / f"new{i}.bin", 1000, 10 + i) for i in range(4)]
    kept = [_put(cache / "stamp.key", 32, 10**6), _put(cache / "mpvm" / "1.0" / "vm.wasm", 5000, 10**6),
            _put(cache / "esp-web-tools" / "x.js", 5000, 10**6), _put(cache / "sim-builds" / "a" / "build.json", 500, 10**6)]
    assert diskcache.trim(limit=5000) == (6, 6000)  # 10,000 B -> at most 4,000 (TRIM_TO of 5,000): the 6 oldest go
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in new + kept)
    assert diskcache.trim(limit=5000) == (0, 0)  # under the limit: nothing to do


def test_a_writers_fresh_temporary_file_is_left_alone_and_a_stale_one_removed(cache: Path) -> None:
    fresh = _put(cache / "mpy" / "ab" / "k.mpy.tmp123", 4000, 5)
    stale = _put(cache / "mpy" / "ab" / "j.mpy.tmp456", 4000, diskcache.TEMP_GRACE_S + 60)
    assert diskcache.trim(limit=1000) == (1, 4000)
    assert fresh.exists() and not stale.exists()


def test_a_cache_hit_marks_the_entry_used_so_a_trim_keeps_it(cache: Path) -> None:
    diskcache.put("toolschema", "used", True)
    diskcache.put("toolschema", "unused", True)
    used, unused = diskcache._path("toolschema", "used"), diskcache._path("toolschema", "unused")
    for p in (used, unused):
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    assert diskcache.get("toolschema", "used") is True  # a hit: used now
    assert used.stat().st_mtime > time.time() - 60
    limit = int(used.stat().st_size / diskcache.TRIM_TO) + 1  # room for one entry
    assert diskcache.trim(limit=limit)[0] == 1
    assert used.exists() and not unused.exists()
    assert diskcache.get("toolschema", "unused") is None  # removed: a miss


def test_a_compile_cache_hit_marks_the_module_used(cache: Path) -> None:
    from clawgen import compile as compile_stage

    key = "ab" + "0" * 62
    compile_stage._cache_put(key, b"M\x06\x00\x1f" + b"\x00" * 20)
    p = compile_stage.cache_dir() / key[:2] / f"{key}.mpy"
    os.utime(p, (time.time() - 7200, time.time() - 7200))
    assert compile_stage._cache_get(key) is not None
    assert p.stat().st_mtime > time.time() - 60


def test_the_trim_runs_at_most_once_an_interval(cache: Path) -> None:
    _put(cache / "mpy" / "aa" / "a.mpy", 3000, 7200)
    assert diskcache.maybe_trim(limit=1000) == (1, 3000)
    _put(cache / "mpy" / "aa" / "b.mpy", 3000, 7200)
    assert diskcache.maybe_trim(limit=1000) is None  # trimmed a moment ago
    stamp = cache / diskcache.TRIM_STAMP
    t = time.time() - diskcache.TRIM_INTERVAL_S - 1
    os.utime(stamp, (t, t))
    assert diskcache.maybe_trim(limit=1000) == (1, 3000)


def test_a_build_after_its_cache_was_trimmed_to_nothing_gives_the_same_output(tmp_path: Path) -> None:
    spec = project(tmp_path / "p")
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache")}
    first, second = tmp_path / "one", tmp_path / "two"
    assert clawgen("build", str(spec), "--out", str(first), "--no-images", cwd=tmp_path, env=env).returncode == 0
    with pytest.MonkeyPatch.context() as mp:  # (the trim runs in this process, on the build's cache)
        mp.setenv("CLAWGEN_CACHE", env["CLAWGEN_CACHE"])
        removed, _ = diskcache.trim(limit=0)
    assert removed > 10  # compiled modules, render cache and traces, ...
    r = clawgen("build", str(spec), "--out", str(second), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr

    def files(d: Path) -> dict[str, bytes]:
        return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
                if p.is_file() and p.name != ".clawgen-stamp"}

    assert files(first) == files(second)


def test_a_bad_cache_limit_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    spec = project(tmp_path / "p")
    out = tmp_path / "out"
    r = clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path,
                env={"CLAWGEN_CACHE": str(tmp_path / "cache"), diskcache.MAX_MB_ENV: "1.5G"})
    assert r.returncode == 2, r.stderr
    assert "CLAWGEN_CACHE_MAX_MB='1.5G': expected a whole number of megabytes" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
