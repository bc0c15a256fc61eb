"""Reading a file the user named: only a regular file, and at most a given number of bytes (a
FIFO would block a read for good, /dev/zero would fill memory). One reader for the spec loader,
the chip library and the image and OTA stages; no heavy imports."""

from __future__ import annotations

import stat
from pathlib import Path


def read_bounded(path: Path, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes (never /dev/zero, a FIFO or a huge file)."""
    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(str(path))
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    # Read the size stat gave (and one byte more, to see a file that grew since): asking for
    # ``limit`` bytes at once would allocate a buffer of that size (256 MB for an SVD) per read.
    want = min(st.st_size, limit) + 1
    with path.open("rb") as f:
        data = f.read(want)
        if len(data) == want and want <= limit:  # it grew: the rest, up to the limit
            data += f.read(limit + 1 - want)
    if len(data) > limit:
        raise OverflowError(f"larger than {limit} bytes")
    return data


def read_input_file(path: Path, what: str, limit: int, error: type[Exception]) -> bytes:
    """A file the user named on the command line (a base firmware, a key file), read with
    ``read_bounded``: a directory, a device or FIFO (/dev/zero would be read until memory runs
    out, a FIFO would block), a file over ``limit`` bytes or an unreadable one is ``error`` with
    one line naming ``what`` and the path."""
    try:
        return read_bounded(path, limit)
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file") from None
    except ValueError:
        raise error(f"{what} {path} is not a regular file (a device or a pipe?)") from None
    except OverflowError:
        raise error(f"{what} {path} is larger than {limit:,} bytes, so not what clawgen expects here") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
