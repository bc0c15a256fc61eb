"""Where the user's cache is: one directory for every cache of clawgen (clawgen/diskcache.py's
entries, base firmware, the simulator's VM and builds). No heavy imports: `clawgen sim` asks for
it before its node process starts."""

from __future__ import annotations

import os
from pathlib import Path

from clawgen.files import path_length_problem

CACHE_ENV = "CLAWGEN_CACHE"


def cache_root() -> Path:
    """The user's cache directory, the one place every cache of clawgen lives under (compiled
    templates and modules, images, base firmware, the simulator's VM and builds):
    ``$CLAWGEN_CACHE``, else ``$XDG_CACHE_HOME/clawgen``, else ``~/.cache/clawgen``. A value no
    file system could hold is a ``UsageError`` naming the variable (not "File name too long"
    from the first file looked up in it)."""
    base = os.environ.get(CACHE_ENV)
    if base:
        root, where = Path(base).expanduser(), f"${CACHE_ENV}"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "clawgen"
        where = "$XDG_CACHE_HOME" if xdg else "the home directory"
    problem = path_length_problem(root)
    if problem:
        from clawgen.diagnostics import UsageError  # (only on this error path)

        raise UsageError(f"the cache directory from {where}: {problem}; set {CACHE_ENV} to another directory")
    return root
