"""Reuse of unchanged work (speed items of issue 9): the .mpy and filesystem-image caches and the
incremental rebuild give exactly the bytes a fresh build gives, and are bypassed when damaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawgen import compile as compile_stage
from clawgen.build import BuildOptions, build_spec
from clawgen.image import fsimage
from tests.build.helpers import SPEC, project

TOOLS = SPEC + ("tools:\n  - name: blink\n    description: Blink the LED.\n"
                "    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
                "    handler: tools/led.py:blink\n")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tree(d: Path, sub: str) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted((d / sub).rglob("*")) if p.is_file()}


def _count_compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = compile_stage.compile_module

    def counting(name: str, *a: object) -> bytes:
        calls.append(name)
        return real(name, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(compile_stage, "compile_module", counting)
    return calls


def test_a_second_build_elsewhere_compiles_nothing_and_gives_the_same_bytes(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = project(tmp_path / "proj", spec=TOOLS, files={"tools/led.py": "def blink(n):\n    return n\n"})
    first = build_spec(spec, BuildOptions(out_dir=tmp_path / "a"))
    calls = _count_compiles(monkeypatch)
    fills: list[int] = []
    real_fill = fsimage.build_fs_image
    monkeypatch.setattr(fsimage, "build_fs_image", lambda *a, **k: fills.append(1) or real_fill(*a, **k))
    second = build_spec(spec, BuildOptions(out_dir=tmp_path / "b"))
    assert calls == [] and fills == []
    assert _tree(first.out_dir, "mpy") == _tree(second.out_dir, "mpy")
    assert _tree(first.out_dir, "image") == _tree(second.out_dir, "image")


def test_damaged_cache_entries_are_ignored(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = project(tmp_path / "proj")
    first = build_spec(spec, BuildOptions(out_dir=tmp_path / "a"))
    for p in (cache / "mpy").rglob("*.mpy"):
        p.write_bytes(b"garbage")
    for p in (cache / "fs").glob("*.bin"):
        p.write_bytes(b"\xff" * 4096)
    calls = _count_compiles(monkeypatch)
    second = build_spec(spec, BuildOptions(out_dir=tmp_path / "b"))
    assert sorted(calls) == sorted(p.stem for p in (first.out_dir / "mpy").glob("*.mpy"))
    assert _tree(first.out_dir, "mpy") == _tree(second.out_dir, "mpy")
    assert _tree(first.out_dir, "image") == _tree(second.out_dir, "image")


def test_incremental_build_after_a_description_change_equals_a_fresh_build(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = project(tmp_path / "proj", spec=TOOLS, files={"tools/led.py": "def blink(n):\n    return n\n"})
    out = tmp_path / "out"
    build_spec(spec, BuildOptions(out_dir=out))
    spec.write_text(TOOLS.replace("Blink the LED.", "Blink the LED n times."))
    calls = _count_compiles(monkeypatch)
    again = build_spec(spec, BuildOptions(out_dir=out))
    assert not again.up_to_date and calls == []  # the tools JSON lives in the prompt file, no module changed
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "fresh-cache"))
    fresh = build_spec(spec, BuildOptions(out_dir=tmp_path / "fresh"))
    for sub in ("app", "mpy", "image"):
        assert _tree(out, sub) == _tree(fresh.out_dir, sub), sub



def test_register_tables_planned_once_per_chip_and_policy_across_processes(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clawgen import plan as plan_stage
    from clawgen.chips import policy
    from tests.conftest import EXAMPLES

    spec = EXAMPLES / "register-assistant.yaml"
    monkeypatch.setattr(plan_stage, "_REGISTER_PLANS", {})
    first = build_spec(spec, BuildOptions(out_dir=tmp_path / "a", images=False))
    assert list((cache / "registers").glob("*/*.pickle"))

    def no_planning(*a: object, **k: object) -> None:
        raise AssertionError("the register policy was compiled again")

    monkeypatch.setattr(plan_stage, "_REGISTER_PLANS", {})  # as in a new process
    monkeypatch.setattr(policy, "compile_policy", no_planning)
    second = build_spec(spec, BuildOptions(out_dir=tmp_path / "b", images=False))
    for sub in ("app", "usermod", "mpy"):
        assert _tree(first.out_dir, sub) == _tree(second.out_dir, sub), sub
    # A damaged entry is a miss: planned again, same result.
    for p in (cache / "registers").glob("*/*.pickle"):
        p.write_bytes(b"not a pickle")
    monkeypatch.undo()
    monkeypatch.setenv("CLAWGEN_CACHE", str(cache))
    monkeypatch.setattr(plan_stage, "_REGISTER_PLANS", {})
    third = build_spec(spec, BuildOptions(out_dir=tmp_path / "c", images=False))
    assert _tree(first.out_dir, "app") == _tree(third.out_dir, "app")


@pytest.mark.parametrize("n_ok", [0, 3])  # alone (no thread pool) and among others (thread pool)
def test_a_module_mpy_cross_rejects_is_reported_at_its_line_every_time(cache: Path, n_ok: int) -> None:
    from clawgen.diagnostics import DiagnosticError

    sources = {f"ok{i}": f"X = {i}\n" for i in range(n_ok)} | {"bad": "x = 1\ndef f(:\n    pass\n"}
    for _ in range(2):  # the failure is not cached
        with pytest.raises(DiagnosticError) as err:
            compile_stage.compile_all(sources, "xtensawin", {"bad": "app/bad.py"})
        [d] = err.value.diagnostics
        assert (d.file, d.line) == ("app/bad.py", 2) and d.message.startswith("mpy-cross: ")
    assert len(list((cache / "mpy").rglob("*.mpy"))) == n_ok


def test_nothing_is_stored_under_a_code_digest_once_the_code_changed(tmp_path: Path, cache: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry is keyed by clawgen's code digest, read once per process: when a file of that code is
    written after it was read (a template edited while a build runs), what the build computes now is
    the new code's, so it is not stored under the old digest (a later build with the old files
    would take it)."""
    from clawgen import diskcache

    code = tmp_path / "template.j2"
    code.write_text("old")
    monkeypatch.setattr(diskcache, "_READ", [])
    monkeypatch.setattr(diskcache, "code_files", lambda: [code])
    diskcache.code_digest.cache_clear()
    try:
        diskcache.put("demo", "k", "computed with the old code")
        assert diskcache.get("demo", "k") == "computed with the old code"
        code.write_text("new")  # edited after the digest was taken
        diskcache.put("demo", "k2", "computed with the new code")
        assert diskcache.get("demo", "k2") is None
        code.unlink()  # a file of the code gone: the same
        diskcache.put("demo", "k3", "x")
        assert diskcache.get("demo", "k3") is None
    finally:
        diskcache.code_digest.cache_clear()


def test_entries_of_other_code_versions_are_removed_at_the_first_store(tmp_path: Path, cache: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A new clawgen (or an edit of its code) never reads the old entries: the first store of a kind
    in a process removes them, so the user's cache does not grow with every version. Other kinds and
    anything that is not an entry stay."""
    from clawgen import diskcache

    code = tmp_path / "template.j2"
    code.write_text("version 1")
    monkeypatch.setattr(diskcache, "_READ", [])
    monkeypatch.setattr(diskcache, "_PRUNED", set())
    monkeypatch.setattr(diskcache, "code_files", lambda: [code])
    diskcache.code_digest.cache_clear()
    try:
        diskcache.put("demo", "k", "v1")
        diskcache.put("other", "k", "kept")
        legacy = cache / "demo" / ("0" * 64 + ".pickle")  # the layout before version directories
        legacy.write_bytes(b"old")
        mine = cache / "demo" / "notes.txt"
        mine.write_text("not an entry")
        old_dir = next(p for p in (cache / "demo").iterdir() if p.is_dir())
        assert diskcache.get("demo", "k") == "v1"

        code.write_text("version 2")  # a new clawgen: another process, another digest
        diskcache.code_digest.cache_clear()
        monkeypatch.setattr(diskcache, "_READ", [])
        monkeypatch.setattr(diskcache, "_PRUNED", set())
        assert diskcache.get("demo", "k") is None
        diskcache.put("demo", "k", "v2")
        assert diskcache.get("demo", "k") == "v2"
        assert not old_dir.exists() and not legacy.exists()
        assert mine.read_text() == "not an entry"
        assert len([p for p in (cache / "other").iterdir()]) == 1  # "other" was not stored to: not pruned
    finally:
        diskcache.code_digest.cache_clear()


def test_code_file_digests_are_reused_only_while_the_stat_holds_and_is_not_racy(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """code_digest reads every file of clawgen's code once per process, unless the user cache's
    DIGESTS_FILE gives the file's sha256 for the same (inode, size, mtime, ctime) taken safely after
    the file last changed. A memo entry that is racy (the file changed within RACY_NS before the
    digest was taken) or whose stat differs is read again, so an edit is never missed."""
    import hashlib
    import json
    import time

    from clawgen import diskcache

    code = tmp_path / "template.j2"
    code.write_text("aaaa")
    memo = cache / diskcache.DIGESTS_FILE
    assert diskcache._file_digests([code], time.time_ns()) == [hashlib.sha256(b"aaaa").digest()]
    doc = json.loads(memo.read_text())
    assert list(doc["files"]) == [str(code)]

    def plant(digest: bytes, taken: int) -> None:  # the memo says `digest` for the file's current stat
        entry = doc["files"][str(code)]
        memo.write_text(json.dumps({"taken": taken, "files": {str(code): [*entry[:4], digest.hex()]}}))

    planted = hashlib.sha256(b"planted").digest()
    plant(planted, time.time_ns())  # taken right after the file changed: racy, read again
    assert diskcache._file_digests([code], time.time_ns()) == [hashlib.sha256(b"aaaa").digest()]
    plant(planted, time.time_ns() + 2 * diskcache.RACY_NS)  # safely after: the memo is used
    assert diskcache._file_digests([code], time.time_ns()) == [planted]
    plant(planted, time.time_ns() + 2 * diskcache.RACY_NS)
    time.sleep(0.05)  # past the file system's clock tick (a change within one is the racy case above)
    code.write_text("bbbb")  # same size, new content: the stat (ctime, mtime) differs
    assert diskcache._file_digests([code], time.time_ns()) == [hashlib.sha256(b"bbbb").digest()]
    memo.write_text("{not json")  # a damaged memo: every file is read
    assert diskcache._file_digests([code], time.time_ns()) == [hashlib.sha256(b"bbbb").digest()]
    assert json.loads(memo.read_text())["files"][str(code)][4] == hashlib.sha256(b"bbbb").hexdigest()
