"""The user's cache (``clawgen.cachedir.cache_root``: ``$CLAWGEN_CACHE``, else
``$XDG_CACHE_HOME/clawgen``, else ``~/.cache/clawgen``): content-addressed results that a later
clawgen process may reuse instead of computing them again.

Every entry is keyed by the sha256 of its kind, its key and clawgen's own code and data
(``code_digest``): a new clawgen never reads an older one's entries. They live in one directory per
version of the code (``KIND/VERSION/``), and the first entry a process stores of a kind removes that
kind's other versions, so the cache does not grow with every upgrade (or every edit of clawgen's
code). Entries never hold a secret. A damaged or unreadable entry is a miss; a cache that cannot be
written only costs time.

Pickled entries are read from the user's own cache directory only (the same trust as the
installed package itself).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from clawgen.cachedir import cache_root

PACKAGE_DIR = Path(__file__).resolve().parent


def code_files() -> list[Path]:
    """clawgen's own code and data: templates, schemas (the spec schema too), boards, built-in chips."""
    from clawgen.resources import schemas_dir, templates_dir

    files = _walk_files(PACKAGE_DIR, (".py", ".yaml", ".j2", ".json"))
    for data in (templates_dir(), schemas_dir()):  # beside the package in a checkout, inside it when installed
        files += _walk_files(data, None)
    return files


_NOT_CODE = ("__pycache__", "node_modules")


def _walk_files(top: Path, suffixes: tuple[str, ...] | None) -> list[Path]:
    """The files below ``top`` (with one of ``suffixes``), sorted as Paths sort, skipping ``_NOT_CODE``
    directories (os.walk prunes them; Path.rglob would walk node_modules and every __pycache__)."""
    out = []
    for root, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if d not in _NOT_CODE]
        out += [Path(root, n) for n in names if suffixes is None or n.endswith(suffixes)]
    out.sort()
    return out


@functools.cache
def module_id(name: str) -> str:
    """Identifies an installed third-party module (its file, size and modification time) without
    importing it: cache entries computed with its help are keyed by it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    if not origin:
        return f"{name}:missing"
    try:
        st = os.stat(origin)
    except OSError:
        return f"{name}:{origin}"
    return f"{name}:{origin}:{st.st_size}:{st.st_mtime_ns}"


_READ: list[tuple[int, list[Path]]] = []  # (when code_digest started reading, the files it read)


@functools.lru_cache(maxsize=1)
def code_digest() -> bytes:
    """sha256 over clawgen's own files (names and content), once per process."""
    import time

    started, files = time.time_ns(), code_files()
    h = hashlib.sha256()
    for p, digest in zip(files, _file_digests(files, started), strict=True):
        h.update(str(p.relative_to(p.anchor)).encode() + b"\0")
        h.update(digest)
    _READ.append((started, files))
    return h.digest()


#: The sha256 of each code file with the stat it was taken at, in the cache root: a process whose
#: code files all have the same (inode, size, mtime, ctime) reuses them instead of reading ~1 MB.
DIGESTS_FILE = "code-digests.json"
#: A file changed this close before its digest was taken is read again (git's "racily clean" rule: a
#: change within one tick of the file system's clock leaves the stat as it was).
RACY_NS = 3_000_000_000
_DIGEST_BYTES = 32  # sha256


def _file_digests(files: list[Path], started: int) -> list[bytes]:
    """sha256 of each file: from DIGESTS_FILE where its stat is the same and not racy, else read."""
    memo_path = cache_root() / DIGESTS_FILE
    try:
        memo = json.loads(memo_path.read_bytes())
        taken, known = int(memo["taken"]), dict(memo["files"])
    except (OSError, ValueError, KeyError, TypeError):
        taken, known = 0, {}
    out, entries, read = [], {}, False
    for p in files:
        st = p.stat()
        sig = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        entry = known.get(str(p))
        if isinstance(entry, list) and entry[:4] == sig and max(sig[2], sig[3]) < taken - RACY_NS:
            try:
                digest = bytes.fromhex(entry[4])
            except (ValueError, TypeError, IndexError):
                digest = b""
            if len(digest) == _DIGEST_BYTES:
                out.append(digest)
                entries[str(p)] = entry
                continue
        digest = hashlib.sha256(p.read_bytes()).digest()
        out.append(digest)
        entries[str(p)] = [*sig, digest.hex()]
        read = True
    if read or entries.keys() != known.keys():
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_path.with_name(f"{DIGESTS_FILE}.tmp{os.getpid()}")
            tmp.write_text(json.dumps({"taken": started, "files": entries}))
            os.replace(tmp, memo_path)
        except OSError:
            pass  # an unwritable cache only costs time
    return out


def _code_unchanged() -> bool:
    """No file of clawgen's code was written since code_digest read it. A value computed after such a
    change (a clawgen developer editing a template while a build runs) is not the old code's, so it
    must not be stored under the old code's digest for a later process to find."""
    if not _READ:
        return True
    started, files = _READ[-1]
    try:
        return all(p.stat().st_mtime_ns < started for p in files)
    except OSError:  # a file of the code is gone
        return False


VERSION_CHARS = 16  # the name of a version's directory: the start of the code digest, in hex


def _version() -> str:
    return code_digest().hex()[:VERSION_CHARS]


def _path(kind: str, key: Any) -> Path:
    h = hashlib.sha256(code_digest())
    h.update(kind.encode() + b"\0" + json.dumps(key, sort_keys=True, default=str).encode())
    return cache_root() / kind / _version() / f"{h.hexdigest()}.pickle"


_PRUNED: set[tuple[Path, str]] = set()  # (cache root, kind) already pruned by this process


def _prune(kind: str) -> None:
    """Remove the kind's entries of other code versions (never read again), once per process: the
    directories of other versions and the files of the layout before versions."""
    base = cache_root() / kind
    if (cache_root(), kind) in _PRUNED:
        return
    _PRUNED.add((cache_root(), kind))
    current = _version()
    try:
        stale = [p for p in base.iterdir() if p.name != current]
    except OSError:
        return
    for p in stale:
        if p.is_dir() and not p.is_symlink() and len(p.name) == VERSION_CHARS and \
                all(c in "0123456789abcdef" for c in p.name):
            import shutil

            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and ".pickle" in p.name:
            p.unlink(missing_ok=True)


def get(kind: str, key: Any) -> Any | None:
    """The value stored under (kind, key) by this clawgen, or None."""
    p = _path(kind, key)
    try:
        data = p.read_bytes()
    except OSError:
        return None
    import pickle

    try:
        value = pickle.loads(data)
    except Exception:  # a damaged entry (truncated, another format): a miss, computed again
        return None
    touch(p)  # used now: trim keeps it longer
    return value


def put(kind: str, key: Any, value: Any) -> None:
    import pickle

    p = _path(kind, key)
    if not _code_unchanged():
        return
    _prune(kind)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f"{p.name}.tmp{os.getpid()}")
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, p)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- keeping the cache below a size --------------------------------------------------------------
#: The parts of the cache whose entries are single files that a clawgen process makes again when
#: they are missing (each reader treats a missing or damaged file as a miss): these are trimmed,
#: least recently used first. Never trimmed: the installed simulator VM (mpvm/), the browser
#: install package (esp-web-tools/), the stamp key, the code-digest memo, the simulator's builds.
TRIMMED_PARTS = ("mpy", "fs", "jinja", "render", "render-trace", "registers", "toolschema", "ca-roots",
                 "mpy-cross-version", "sim-mpy", "sim-plans")
#: The most those parts may hold, in MB (``$CLAWGEN_CACHE_MAX_MB`` overrides it).
DEFAULT_MAX_MB = 1024
MAX_MB_ENV = "CLAWGEN_CACHE_MAX_MB"
#: A trim brings the parts down to this share of the limit, so that the next builds do not trim again.
TRIM_TO = 0.8
#: At most one trim per this many seconds (the mtime of ``TRIM_STAMP`` in the cache says when).
TRIM_INTERVAL_S = 3600
TRIM_STAMP = "trimmed"
#: A writer's temporary file (``NAME.tmpPID``) younger than this is left alone: it is being written.
TEMP_GRACE_S = 3600


def touch(path: Path) -> None:
    """Mark a cache entry as used now (its mtime: what ``trim`` orders by); best effort."""
    try:
        os.utime(path)
    except OSError:
        pass


def max_bytes() -> int:
    """The limit for the trimmed parts (``$CLAWGEN_CACHE_MAX_MB``, else ``DEFAULT_MAX_MB``)."""
    text = os.environ.get(MAX_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MB << 20
    if not text.isdecimal() or not text.isascii():
        from clawgen.diagnostics import InputError

        raise InputError(f"{MAX_MB_ENV}={text!r}: expected a whole number of megabytes (e.g. 512), "
                         f"the most clawgen's cache may hold (default {DEFAULT_MAX_MB})")
    return int(text) << 20


def _entries(root: Path, now: float) -> list[tuple[float, int, str]]:
    """(mtime, size, path) of every file in the trimmed parts (a writer's fresh temporary file left out)."""
    out: list[tuple[float, int, str]] = []
    for part in TRIMMED_PARTS:
        for dirpath, _dirs, names in os.walk(root / part):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if ".tmp" in name and now - st.st_mtime < TEMP_GRACE_S:
                    continue
                out.append((st.st_mtime, st.st_size, path))
    return out


def trim(limit: int | None = None, now: float | None = None) -> tuple[int, int]:
    """When the trimmed parts hold more than ``limit`` bytes, remove their least recently used
    files until they hold at most ``TRIM_TO`` of it. Returns (files removed, bytes removed). Safe
    beside running builds: a removed entry is a miss, and a file open elsewhere stays readable."""
    import time

    limit = max_bytes() if limit is None else limit
    now = time.time() if now is None else now
    entries = _entries(cache_root(), now)
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return 0, 0
    goal = int(limit * TRIM_TO)
    removed = freed = 0
    for _mtime, size, path in sorted(entries):
        if total - freed <= goal:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        removed += 1
        freed += size
    return removed, freed


def maybe_trim(limit: int | None = None) -> tuple[int, int] | None:
    """``trim`` once per ``TRIM_INTERVAL_S`` per cache (after a build); None when it was not due."""
    import time

    stamp = cache_root() / TRIM_STAMP
    now = time.time()
    try:
        if now - stamp.stat().st_mtime < TRIM_INTERVAL_S:
            return None
    except OSError:
        pass
    try:  # claimed first: a build finishing meanwhile does not trim too
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        return None  # a cache that cannot be written is not trimmed either
    return trim(limit, now=now)
