"""Paths that exist but are not regular files, for the tests that a command refuses to read them
(a FIFO would block a read for good, /dev/zero would fill memory)."""

from __future__ import annotations

import os
from pathlib import Path

KINDS = ("fifo", "device", "directory")


def make_not_regular(path: Path, kind: str) -> Path:
    """Make ``path`` a FIFO, a link to /dev/zero or a directory; returns it."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        raise ValueError(kind)
    return path
