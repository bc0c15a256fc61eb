"""Publish stage: put a finished build in place without ever destroying the user's files.

A build is written into a sibling staging directory ``.NAME.staging-PID`` and renamed into
place; the previous output is first renamed to ``.NAME.old-PID`` and removed afterwards.
Only a directory clawgen made itself may be replaced: every build writes a marker file,
``.clawgen-output``, listing each file it wrote. An output directory is replaced only when
it is new, empty, or holds that marker and nothing but the files the marker lists; anything
else is refused (exit 2) and nothing is deleted.

Staging and old directories of a build that was killed are removed by the next build into
the same place, but only those matching the pattern, holding the marker, and whose process
is gone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clawgen.diagnostics import InputError

MARKER = ".clawgen-output"
STAMP_FILE = ".clawgen-stamp"
_MARKER_KIND = "clawgen build output"
_SHOW = 5  # files named in a refusal


def marker_bytes(files: list[str], complete: bool = True) -> bytes:
    """The marker's content: the files this build wrote (relative posix paths)."""
    return (json.dumps({"kind": _MARKER_KIND, "complete": complete, "files": sorted(files)}, indent=1)
            + "\n").encode()


def read_marker(directory: Path) -> set[str] | None:
    """The files a clawgen marker in ``directory`` lists, or None when there is no valid marker."""
    try:
        doc = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") != _MARKER_KIND or not isinstance(doc.get("files"), list):
        return None
    return {f for f in doc["files"] if isinstance(f, str)}


def walk(directory: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """Every entry below ``directory`` as (relative posix path, its DirEntry), in the order of
    ``sorted(directory.rglob("*"))`` (by path parts); like rglob it does not enter a link to a
    directory. (os.scandir: a build walks its trees a few times, and pathlib is slower at it.)"""
    out: list[tuple[str, os.DirEntry[str]]] = []
    todo = [("", os.fspath(directory))]
    while todo:
        prefix, path = todo.pop()
        with os.scandir(path) as entries:
            for e in entries:
                rel = prefix + e.name
                out.append((rel, e))
                if e.is_dir(follow_symlinks=False):
                    todo.append((rel + "/", e.path))
    out.sort(key=lambda item: item[0].split("/"))
    return out


def _tree_files(directory: Path) -> list[str]:
    """Every entry below ``directory`` that is not a directory (files, links, sockets...)."""
    return [rel for rel, e in walk(directory) if not e.is_dir(follow_symlinks=False)]


def _legacy_listing(directory: Path) -> set[str] | None:
    """An output of a clawgen from before the marker: its build.json lists every artifact with its
    sha256; it counts as ours only when each listed file still has that content."""
    import hashlib

    try:
        info = json.loads((directory / "build.json").read_text(encoding="utf-8"))
        arts = {str(a["path"]): str(a["sha256"]) for a in info["artifacts"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    for rel, digest in arts.items():
        p = directory / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute() or p.is_symlink() or not p.is_file():
            return None
        if hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            return None
    return set(arts) | {"build.json"}


def foreign_files(directory: Path) -> list[str] | None:
    """Files (and directories) in ``directory`` clawgen did not write; None when it has no clawgen
    marker."""
    listed = read_marker(directory)
    if listed is None:
        listed = _legacy_listing(directory)
    if listed is None:
        return None
    ours = listed | {MARKER, STAMP_FILE}
    parents = {str(Path(f).parent.as_posix()) for f in ours}
    ancestors = {a for p in parents for a in [p, *(q.as_posix() for q in Path(p).parents)]}
    out = []
    for rel, e in walk(directory):
        if e.is_dir(follow_symlinks=False):
            if rel not in ancestors:
                out.append(rel + "/")
        elif rel not in ours:
            out.append(rel)
    return out


def _show(names: list[str]) -> str:
    more = f" and {len(names) - _SHOW} more" if len(names) > _SHOW else ""
    return ", ".join(names[:_SHOW]) + more


def check_out_dir(out_dir: Path, spec: Path) -> Path:
    """The output directory, if a build may write it; else InputError (exit 2), nothing touched."""
    if not out_dir.name:  # "." or "/": the rename needs a real name
        out_dir = out_dir.resolve()
    fix = "give --out a new or empty directory"
    for parent in [out_dir, *out_dir.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out_dir else f"cannot be created: {parent} is a file"
            raise InputError(f"output directory {out_dir} {what}, not a directory; {fix}")
        if parent.is_dir():
            break
    if spec.resolve().is_relative_to(out_dir.resolve()):
        raise InputError(f"output directory {out_dir} contains the spec {spec}; give --out a directory of "
                         "its own (clawgen replaces the whole directory)")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return out_dir
    foreign = foreign_files(out_dir)
    if foreign is None:
        raise InputError(f"output directory {out_dir} is not empty and was not made by clawgen (no {MARKER} "
                         f"file); {fix}, clawgen replaces the whole directory and will not delete files it "
                         "did not write")
    if foreign:
        raise InputError(f"output directory {out_dir} holds files clawgen did not write ({_show(foreign)}); "
                         "move them elsewhere or " + fix + " (nothing was deleted)")
    return out_dir


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return True
    return True


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove ``.NAME.staging-PID`` / ``.NAME.old-PID`` left by killed builds; -> what was removed."""
    parent = out_dir.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(r"\." + re.escape(out_dir.name) + r"\.(?:staging|old)-(\d+)")
    removed = []
    for p in sorted(parent.iterdir()):
        m = pattern.fullmatch(p.name)
        if not m or p.is_symlink() or not p.is_dir() or _pid_alive(int(m.group(1))):
            continue
        if read_marker(p) is None:
            continue  # not ours (or not recognisably): leave it
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def staging_dir(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")


@contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh staging directory beside ``out_dir`` (with an incomplete marker), removed on exit."""
    stage = staging_dir(out_dir)
    if stage.exists():
        shutil.rmtree(stage)
    try:
        stage.mkdir(parents=True)
    except OSError as e:  # an unwritable place: the --out path's fault, said in one line
        raise InputError(f"cannot create the output directory {out_dir}: {e.strerror} "
                         f"({e.filename}); give --out a directory you can write") from None
    # The marker goes in first: a build killed now leaves a directory the next build knows as ours.
    (stage / MARKER).write_bytes(marker_bytes([], complete=False))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def seal(stage: Path, files: list[str] | None = None) -> bytes:
    """Write the final marker listing every file in ``stage`` (``files`` when the caller knows them:
    the build does, it has just read the tree); -> the marker's bytes."""
    if files is None:
        files = _tree_files(stage)
    data = marker_bytes([f for f in files if f not in (MARKER, STAMP_FILE)])
    (stage / MARKER).write_bytes(data)
    return data


def publish(stage: Path, out_dir: Path, spec: Path) -> None:
    """Replace ``out_dir`` by the sealed ``stage``: atomically, and only if ``out_dir`` is still ours."""
    check_out_dir(out_dir, spec)  # again: the user may have added files while the build ran
    if out_dir.exists():
        trash = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if trash.exists():
            shutil.rmtree(trash)
        if not (out_dir / MARKER).is_file():  # an empty directory: give it a marker so a crash is recoverable
            (out_dir / MARKER).write_bytes(marker_bytes([]))
        try:
            os.replace(out_dir, trash)
            os.replace(stage, out_dir)
        except BaseException:
            # Interrupted between the two renames (Ctrl-C, SIGTERM made SystemExit, an error):
            # the previous output goes back, rather than leaving no output at all.
            if trash.is_dir() and not out_dir.exists():
                os.replace(trash, out_dir)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, out_dir)
