"""Locating and installing the MicroPython WebAssembly VM (an npm package) for the simulator.

The package is pinned in ``clawgen/sim/package.json`` + ``package-lock.json`` and installed with
``npm ci`` into a cache directory (``$CLAWGEN_CACHE/mpvm/<version>``, default
``~/.cache/clawgen/mpvm/<version>``), so an installed wheel never writes into site-packages.
``CLAWGEN_MPVM_DIR`` points at an existing install instead. ``python -m clawgen.sim.install``
installs it ahead of time (the project's test command does that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from clawgen.cachedir import cache_root

SIM_DIR = Path(__file__).resolve().parent
MPVM_PACKAGE = "@micropython/micropython-webassembly-pyscript"


def mpvm_version() -> str:
    deps = json.loads((SIM_DIR / "package.json").read_text())["dependencies"]
    return str(deps[MPVM_PACKAGE])


MPVM_DIR_ENV = "CLAWGEN_MPVM_DIR"


def mpvm_dir() -> Path:
    """Where the VM is (or will be) installed: a dir holding node_modules/<package>
    ($CLAWGEN_MPVM_DIR, else under the user's cache; a value no file system takes is a UsageError)."""
    override = os.environ.get(MPVM_DIR_ENV)
    if override:
        from clawgen.files import path_length_problem

        problem = path_length_problem(override)
        if problem:
            from clawgen.diagnostics import UsageError

            raise UsageError(f"${MPVM_DIR_ENV}: {problem}")
        return Path(override)
    return cache_root() / "mpvm" / mpvm_version()


def _entry(d: Path) -> Path:
    return d / "node_modules" / MPVM_PACKAGE / "micropython.mjs"


def is_installed(d: Path | None = None) -> bool:
    d = d or mpvm_dir()
    pkg = d / "node_modules" / MPVM_PACKAGE / "package.json"
    if not (_entry(d).is_file() and pkg.is_file()):
        return False
    return json.loads(pkg.read_text()).get("version") == mpvm_version()


def node_executable() -> str:
    node = shutil.which("node")
    if not node:
        from clawgen.diagnostics import UsageError  # (here: `clawgen sim` starts node before that import)

        raise UsageError("the simulator needs Node.js (v18 or newer) on PATH; install it "
                         "(e.g. `apt-get install nodejs npm`) and try again")
    return node


def ensure_installed(quiet: bool = False) -> Path:
    """Return the VM install dir, running `npm ci` into it first if needed."""
    d = mpvm_dir()
    if is_installed(d):
        return d
    from clawgen.diagnostics import UsageError

    if d.exists() and not (d.is_dir() and not any(d.iterdir())):
        # (not ours to replace: a file, a device, a directory holding something else)
        raise UsageError(f"cannot install {MPVM_PACKAGE}@{mpvm_version()} into {d}: it exists and is not an "
                         f"install of it; {_where_to_fix()}")
    node_executable()
    npm = shutil.which("npm")
    if not npm:
        raise UsageError(f"the simulator needs npm to install {MPVM_PACKAGE}@{mpvm_version()} "
                         f"into {d}; install npm (or set CLAWGEN_MPVM_DIR to an existing install)")
    # Install into a sibling temporary dir and rename, so concurrent first runs (pytest -n)
    # never see a half-installed package.
    import tempfile  # (here: `clawgen sim` imports this module before it starts node)

    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".mpvm-", dir=d.parent))
    except OSError as e:
        raise UsageError(f"cannot install {MPVM_PACKAGE}@{mpvm_version()} into {d}: {e.strerror or e}; "
                         f"{_where_to_fix()}") from None
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(SIM_DIR / name, tmp / name)
        if not quiet:
            print(f"clawgen: installing {MPVM_PACKAGE}@{mpvm_version()} into {d} (npm ci)", file=sys.stderr)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=tmp,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise UsageError(f"`npm ci` for the simulator failed (exit {proc.returncode}):\n"
                             f"{proc.stderr.strip()[-2000:]}")
        try:
            tmp.rename(d)
        except OSError as e:
            if not is_installed(d):  # (another process's install won the race: it is used)
                raise UsageError(f"cannot install {MPVM_PACKAGE}@{mpvm_version()} into {d}: {e.strerror or e}; "
                                 f"{_where_to_fix()}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def _where_to_fix() -> str:
    if os.environ.get(MPVM_DIR_ENV):
        return f"set {MPVM_DIR_ENV} to an install or to a new directory (or unset it)"
    return "set CLAWGEN_CACHE to a directory clawgen may write"


def main() -> None:
    from clawgen.diagnostics import UsageError

    try:
        d = ensure_installed()
    except UsageError as e:
        print(f"clawgen: error: {e}", file=sys.stderr)
        sys.exit(1)
    print(d)


if __name__ == "__main__":
    main()
