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


def mpvm_dir() -> Path:
    """Where the VM is (or will be) installed: a dir holding node_modules/<package>."""
    override = os.environ.get("CLAWGEN_MPVM_DIR")
    if override:
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

    node_executable()
    npm = shutil.which("npm")
    if not npm:
        raise UsageError(f"the simulator needs npm to install {MPVM_PACKAGE}@{mpvm_version()} "
                         f"into {d}; install npm (or set CLAWGEN_MPVM_DIR to an existing install)")
    d.parent.mkdir(parents=True, exist_ok=True)
    # Install into a sibling temporary dir and rename, so concurrent first runs (pytest -n)
    # never see a half-installed package.
    import tempfile  # (here: `clawgen sim` imports this module before it starts node)

    tmp = Path(tempfile.mkdtemp(prefix=".mpvm-", dir=d.parent))
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
        except OSError:
            if not is_installed(d):  # someone else won the race with a broken dir
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return d


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
