"""Issue 9 items 2 and 13: a build replaces only a directory it made, and only the files it wrote;
bad --out paths are clear errors (exit 2); directories left by a killed build are cleaned up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawgen.build import BuildOptions, build_spec
from clawgen.diagnostics import InputError
from clawgen.publish import MARKER, clean_stale, marker_bytes
from tests.build.helpers import clawgen, project


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_directory_with_a_build_json_and_user_files_is_refused_and_kept(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "d"
    out.mkdir()
    (out / "build.json").write_text('{"name": "x"}\n')
    (out / "thesis.tex").write_text("three years of work\n")
    (out / "data").mkdir()
    (out / "data" / "results.csv").write_text("1,2,3\n")
    before = _snapshot(out)
    r = clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "was not made by clawgen" in r.stderr and str(out) in r.stderr
    assert "Traceback" not in r.stderr
    assert _snapshot(out) == before


def test_clawgen_output_with_a_file_added_by_the_user_is_refused(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "d"
    build_spec(spec, BuildOptions(out_dir=out, images=False))
    (out / "app" / "my_notes.txt").write_text("keep me\n")
    before = _snapshot(out)
    r = clawgen("build", str(spec), "--out", str(out), "--no-images", "--force", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "holds files clawgen did not write (app/my_notes.txt)" in r.stderr
    assert _snapshot(out) == before


def test_own_output_is_replaced_and_records_every_file_it_wrote(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "d"
    build_spec(spec, BuildOptions(out_dir=out))
    listed = json.loads((out / MARKER).read_text())["files"]
    on_disk = [p.relative_to(out).as_posix() for p in sorted(out.rglob("*"))
               if p.is_file() and p.name not in (MARKER, ".clawgen-stamp")]
    assert listed == on_disk and "build.json" in listed and "image/nvs.bin" in listed
    # A clawgen-written file the user edited is still clawgen's: a rebuild replaces it.
    (out / "app" / "claw_log.py").write_text("edited\n")
    result = build_spec(spec, BuildOptions(out_dir=out, force=True))
    assert not result.up_to_date and (out / "app" / "claw_log.py").read_text() != "edited\n"


def test_empty_and_new_directories_are_accepted(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        build_spec(spec, BuildOptions(out_dir=out, images=False))
        assert (out / MARKER).is_file() and (out / "build.json").is_file()


def test_output_of_a_clawgen_without_the_marker_is_ours_only_if_its_build_json_lists_every_file(
        tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "d"
    build_spec(spec, BuildOptions(out_dir=out, images=False))
    (out / MARKER).unlink()  # as an older clawgen left it
    build_spec(spec, BuildOptions(out_dir=out, images=False, force=True))
    (out / MARKER).unlink()
    (out / "extra.txt").write_text("user\n")
    with pytest.raises(InputError, match=r"did not write \(extra.txt\)"):
        build_spec(spec, BuildOptions(out_dir=out, images=False, force=True))
    assert (out / "extra.txt").read_text() == "user\n"


@pytest.mark.parametrize("what", ["file", "parent-file"])
def test_out_under_a_file_is_a_clear_error(tmp_path: Path, what: str) -> None:
    spec = project(tmp_path / "proj")
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    out = afile if what == "file" else afile / "sub"
    r = clawgen("build", str(spec), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert f"{afile} is a file" in r.stderr or f"{out} is a file" in r.stderr
    assert afile.read_text() == "not a directory\n"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_directories_of_a_killed_build_are_removed_by_the_next(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "gen" / "d"
    build_spec(spec, BuildOptions(out_dir=out, images=False))
    dead = _dead_pid()
    stale_staging = out.with_name(f".d.staging-{dead}")
    stale_old = out.with_name(f".d.old-{dead}")
    for d in (stale_staging, stale_old):
        (d / "app").mkdir(parents=True)
        (d / MARKER).write_bytes(marker_bytes([], complete=False))
        (d / "app" / "x.py").write_text("x\n")
    live = out.with_name(f".d.staging-{os.getpid() + 0}")  # this very process: alive
    alive_other = out.with_name(".d.old-1")  # pid 1 is alive
    not_ours = out.with_name(f".d.old-{dead + 1000000}")  # no marker
    for d in (alive_other, not_ours):
        d.mkdir()
        (d / "file").write_text("keep\n")
    (alive_other / MARKER).write_bytes(marker_bytes(["file"]))
    other_name = out.with_name(f".other.old-{dead}")
    other_name.mkdir()
    (other_name / MARKER).write_bytes(marker_bytes([]))
    build_spec(spec, BuildOptions(out_dir=out, images=False, force=True))
    assert not stale_staging.exists() and not stale_old.exists()
    assert alive_other.is_dir() and not_ours.is_dir() and other_name.is_dir()
    assert not live.exists()  # the build's own staging directory is gone after publishing
    assert clean_stale(out) == []



def test_an_empty_directory_of_the_user_inside_an_output_is_not_clawgens(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "d"
    build_spec(spec, BuildOptions(out_dir=out, images=False))
    (out / "mine").mkdir()
    with pytest.raises(InputError, match=r"did not write \(mine/\)"):
        build_spec(spec, BuildOptions(out_dir=out, images=False, force=True))
    assert (out / "mine").is_dir()


def test_a_really_killed_build_leaves_its_staging_directory_and_the_next_build_removes_it(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj")
    out = tmp_path / "gen" / "d"
    build_spec(spec, BuildOptions(out_dir=out, force=True))
    before = _snapshot(out)
    # SIGKILL in the middle of the image stage: nothing runs after it, no cleanup of any kind.
    kill = ("import os, signal\nimport clawgen.image.stage as st\n"
            "st.build_images = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)")
    r = clawgen("build", str(spec), "--out", str(out), "--force", cwd=tmp_path, prelude=kill,
                env={"CLAWGEN_CACHE": os.environ["CLAWGEN_CACHE"]})
    assert r.returncode == -9
    left = [p for p in out.parent.iterdir() if p.name.startswith(".d.staging-")]
    assert len(left) == 1 and (left[0] / MARKER).is_file()
    assert _snapshot(out) == before  # the previous output is untouched
    build_spec(spec, BuildOptions(out_dir=out, force=True))
    assert sorted(p.name for p in out.parent.iterdir()) == ["d"]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, OSError])
def test_a_build_interrupted_between_its_two_renames_leaves_the_previous_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]) -> None:
    # Ctrl-C or SIGTERM (the `clawgen` command makes it SystemExit) right after the previous output
    # was renamed aside left no output directory at all.
    import clawgen.publish as publish

    spec = project(tmp_path / "proj")
    out = tmp_path / "d"
    build_spec(spec, BuildOptions(out_dir=out, images=False))
    before = _snapshot(out)
    real = os.replace
    calls: list[str] = []

    def replace(src: Path, dst: Path) -> None:
        calls.append(Path(src).name)
        if len(calls) == 2:  # the staging directory into place: interrupted
            raise interrupt()
        real(src, dst)

    monkeypatch.setattr(publish.os, "replace", replace)
    spec.write_text(spec.read_text() + "system_prompt: changed\n")  # (a build with something to publish)
    with pytest.raises(interrupt):
        build_spec(spec, BuildOptions(out_dir=out, images=False, force=True))
    monkeypatch.setattr(publish.os, "replace", real)
    assert calls[:2] == ["d", f".d.staging-{os.getpid()}"]
    assert _snapshot(out) == before
    assert not [p.name for p in tmp_path.iterdir() if ".staging-" in p.name or ".old-" in p.name]
