"""Chip register maps: the model, the SVD importer and the on-disk chip database.

A chip is found by name in, in order: ``<spec dir>/chips/``, each directory of the
``CLAWGEN_CHIP_PATH`` environment variable (``os.pathsep``-separated), then the built-in chips
shipped in ``clawgen/chips/builtin/``. A chip file is ``NAME.json.gz`` or ``NAME.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from clawgen.chips.model import (
    AddressBlock,
    Chip,
    Cluster,
    Dim,
    EnumSet,
    EnumValue,
    Field,
    Interrupt,
    Peripheral,
    Register,
    RegisterInstance,
    WriteConstraint,
)

__all__ = [
    "BUILTIN_DIR",
    "CHIP_NAME_RE",
    "AddressBlock",
    "Chip",
    "Cluster",
    "Dim",
    "EnumSet",
    "EnumValue",
    "Field",
    "Interrupt",
    "Peripheral",
    "Register",
    "RegisterInstance",
    "WriteConstraint",
    "available_chips",
    "default_search_dirs",
    "find_chip",
    "load_chip",
]

BUILTIN_DIR = Path(__file__).parent / "builtin"
CHIP_SUFFIXES = (".json.gz", ".json")
CHIP_PATH_ENV = "CLAWGEN_CHIP_PATH"
# A chip's name (it names its file): the spec's `chip` pattern is this one (a test holds them equal).
CHIP_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def default_search_dirs(spec_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """``<spec_dir>/chips`` (or ``./chips``), then ``$CLAWGEN_CHIP_PATH``, then the built-ins."""
    dirs = [Path(spec_dir if spec_dir is not None else ".") / "chips"]
    env = os.environ.get(CHIP_PATH_ENV, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d]
    dirs.append(BUILTIN_DIR)
    return dirs


def _dirs(search_dirs: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    """``search_dirs`` (default: ``default_search_dirs()``), always ending with the built-ins."""
    dirs = default_search_dirs() if search_dirs is None else [Path(d) for d in search_dirs]
    if BUILTIN_DIR not in dirs:
        dirs.append(BUILTIN_DIR)
    return dirs


def find_chip(name: str, search_dirs: Sequence[str | os.PathLike[str]] | None = None) -> Path | None:
    """The first chip file called ``name`` along ``search_dirs`` (default: see module doc), then
    the built-in chips (searched last whether or not ``search_dirs`` lists them). A name that is no
    chip name (a path, a name too long for a file) names no chip."""
    if not CHIP_NAME_RE.fullmatch(name) or name in (".", ".."):
        return None
    for d in _dirs(search_dirs):
        for suffix in CHIP_SUFFIXES:
            p = d / f"{name}{suffix}"
            if os.path.isfile(p):  # (False, not an error, for a directory of $CLAWGEN_CHIP_PATH no file
                return p           # system could hold, or one that cannot be read)
    return None


def available_chips(search_dirs: Sequence[str | os.PathLike[str]] | None = None) -> list[str]:
    """Names of every chip along ``search_dirs``, sorted, without duplicates."""
    names: set[str] = set()
    for d in _dirs(search_dirs):
        try:
            entries = list(d.iterdir())
        except OSError:  # not a directory, not readable, a name too long: no chips there
            continue
        for p in entries:
            for suffix in CHIP_SUFFIXES:
                if p.name.endswith(suffix) and os.path.isfile(p):
                    names.add(p.name[: -len(suffix)])
    return sorted(names)


def load_chip(name: str, search_dirs: Sequence[str | os.PathLike[str]] | None = None) -> Chip:
    """Load chip ``name``; ``UsageError`` (listing what exists, with did-you-mean) if missing."""
    from clawgen.chips.db import read_chip
    from clawgen.diagnostics import UsageError, did_you_mean, peer_text

    path = find_chip(name, search_dirs)
    if path is None:
        dirs = _dirs(search_dirs)
        avail = available_chips(dirs)
        listing = ", ".join(avail) if avail else "none"
        raise UsageError(f'unknown chip "{peer_text(name, 80)}"{did_you_mean(name, avail)}; available: {listing} '
                         f"(searched {', '.join(str(d) for d in dirs)})")
    return read_chip(path)
