"""What makes an incremental build cheap (issue 9, speed) without changing a byte of its output:
the filesystem image filled with each directory made once, one spec field's type evaluated alone,
plain values fingerprinted without a pickle, nothing stored again for output served from the render
traces, and the files a build just wrote not read back."""

from __future__ import annotations

import enum
import random
from pathlib import Path

import pytest

from clawgen.image import fsimage
from clawgen.package import write_tree
from tests.build.helpers import SPEC, clawgen, project

TOOL_SPEC = SPEC + ("tools:\n  - name: read_value\n    description: Read the value.\n"
                    "    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
                    "    handler: tools/h.py:read_value\n")
HANDLER = "def read_value(n):\n    return n + 1\n"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_edited_rebuild_is_what_a_build_from_scratch_makes(tmp_path: Path) -> None:
    """A description edit rebuilt over the previous output (render traces, caches) gives the output
    a build from scratch (another cache) makes of the edited spec, and leaves no staging behind."""
    spec = project(tmp_path / "p", TOOL_SPEC, files={"tools/h.py": HANDLER})
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "out"
    assert clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path, env=env).returncode == 0
    before = _files(out)
    spec.write_text(spec.read_text().replace("Read the value.", "Read the value (edited)."))
    r = clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    after = _files(out)
    changed = {rel for rel in after if before.get(rel) != after[rel]}
    assert {rel for rel in changed if rel.startswith(("app/", "mpy/"))} == {"app/claw_prompt.json"}
    assert not [p.name for p in tmp_path.iterdir() if ".staging-" in p.name or ".old-" in p.name]
    fresh = tmp_path / "fresh"
    r = clawgen("build", str(spec), "--out", str(fresh), "--no-images", cwd=tmp_path,
                env={"CLAWGEN_CACHE": str(tmp_path / "cache2")})
    assert r.returncode == 0, r.stderr
    stamp = ".clawgen-stamp"
    assert {k: v for k, v in after.items() if k != stamp} == {k: v for k, v in _files(fresh).items() if k != stamp}


def _fill_making_every_parent(files: dict[str, bytes], block_size: int, block_count: int) -> bytes:
    """The image filled as the first fsimage did: makedirs(parent, exist_ok=True) before every file."""
    fs = fsimage._new_fs(block_size, block_count, mount=False)
    fs.format()
    fs.mount()
    for path in sorted(files):
        rel = fsimage.check_device_path(path)
        parent = rel.rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(rel, "wb") as f:
            f.write(files[path])
    fs.unmount()
    return bytes(fs.context.buffer)


def test_making_each_directory_once_fills_the_same_image() -> None:
    rng = random.Random(9)
    for _ in range(12):
        files = {}
        for i in range(rng.randrange(1, 25)):
            folder = rng.choice(["", "/lib", "/lib", "/lib/sub", "/data", "/data/a/b"])
            files[f"{folder}/f{i}.bin"] = rng.randbytes(rng.choice([0, 7, 128, 129, 4096, 5000, 20000]))
        count = 256  # room for every bundle drawn
        fs = fsimage._fill(files, 4096, count)
        fs.unmount()
        assert bytes(fs.context.buffer) == _fill_making_every_parent(files, 4096, count)


def test_a_fields_type_is_evaluated_alone_as_get_type_hints_evaluates_it() -> None:
    """from_spec evaluates only the annotations of the fields a YAML value sets (spec._hint): each is
    what typing.get_type_hints gives for the whole class, inherited fields included."""
    import typing

    from clawgen import spec

    fields = spec.walk_fields()
    assert len(fields) > 100
    for _path, cls, f in fields:
        assert spec._hint(cls, f.name) == typing.get_type_hints(cls)[f.name], (cls.__name__, f.name)
    assert spec._hint(spec.Model, "api_key") == typing.get_type_hints(spec.Model)["api_key"]  # from Endpoint
    with pytest.raises(KeyError):
        spec._hint(spec.Model, "no_such_field")


class Level(enum.IntEnum):  # an int subclass: fingerprinted by its pickle, not as an int
    ONE = 1


def test_plain_values_have_their_own_fingerprints_and_others_keep_the_pickles() -> None:
    """Render traces hash a str, int, bool or None directly (rendertrace.fingerprint): equal values
    give equal fingerprints, and no two different values (of any types) share one."""
    from clawgen.rendertrace import fingerprint

    values = ["1", 1, True, 1.0, None, "None", "", 0, False, -1, 255, -256, 2**80, -(2**80), "é", "\udc80",
              b"1", (1,), [1], {"1": 1}, Level.ONE, frozenset({1})]
    prints = [fingerprint(v) for v in values]
    assert all(p is not None and len(p) == 32 for p in prints)
    assert len(set(prints)) == len(values)
    assert [fingerprint(v) for v in values] == prints  # stable
    assert fingerprint("x" * 3 + "y") == fingerprint("xxxy")


def _render_entries(cache: Path) -> list[Path]:
    return sorted((cache / "render").rglob("*.pickle")) if (cache / "render").is_dir() else []


def test_output_served_from_the_render_traces_is_not_stored_again(tmp_path: Path) -> None:
    """A build that renders keeps its output in the render cache; a description edit, whose every
    template comes from its render trace, adds no entry (one per edit, each a copy of every source);
    the edited spec built into another directory is then served from the traces, the same bytes."""
    spec = project(tmp_path / "p", TOOL_SPEC, files={"tools/h.py": HANDLER})
    cache = tmp_path / "cache"
    env = {"CLAWGEN_CACHE": str(cache)}
    out = tmp_path / "out"
    assert clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path, env=env).returncode == 0
    first = _render_entries(cache)
    assert len(first) == 1
    spec.write_text(spec.read_text().replace("Read the value.", "Read the value (edited)."))
    r = clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert _render_entries(cache) == first
    other = tmp_path / "other"
    r = clawgen("build", str(spec), "--out", str(other), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    stamp = ".clawgen-stamp"
    assert {k: v for k, v in _files(out).items() if k != stamp} == \
        {k: v for k, v in _files(other).items() if k != stamp}
    # A change a template reads (the tool's name) renders, and that output is kept.
    spec.write_text(spec.read_text().replace("name: read_value", "name: read_it"))
    r = clawgen("build", str(spec), "--out", str(out), "--no-images", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert len(_render_entries(cache)) == 2


def test_read_tree_takes_the_files_just_written_and_reads_the_others(tmp_path: Path) -> None:
    from clawgen.package import read_tree

    files = {"app/a.py": b"a\n", "mpy/a.mpy": b"M\x06"}
    write_tree(tmp_path, files)
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "fs.bin").write_bytes(b"\xff" * 8)  # written by another stage
    (tmp_path / ".marker").write_bytes(b"{}")
    both = read_tree(tmp_path, skip=(".marker",), written=files)
    assert both == read_tree(tmp_path, skip=(".marker",)) == {**files, "image/fs.bin": b"\xff" * 8}
    assert both["app/a.py"] is files["app/a.py"]  # not read back
