"""Reading a file the user named: only a regular file, and at most a given number of bytes (a
FIFO would block a read for good, /dev/zero would fill memory). One reader for the spec loader,
the chip library and the image and OTA stages; no heavy imports."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# What file systems take: a name (one component of a path) of at most NAME_MAX bytes (ext4, APFS,
# NTFS: 255), and a whole path under PATH_MAX (Linux: 4096) with room left for the names clawgen
# writes under a directory it is given (build/image/..., .NAME.staging-PID...).
NAME_MAX = 255
MAX_PATH_BYTES = 3800


def path_length_problem(path: str | os.PathLike[str]) -> str | None:
    """Why no file system could hold ``path`` (a name in it or the whole too long: every ``stat``
    of it fails with "File name too long", which pathlib's ``exists()`` raises), or None."""
    raw = os.fsencode(path)
    if len(raw) > MAX_PATH_BYTES:
        return f"a path of {len(raw):,} bytes: clawgen takes paths of at most {MAX_PATH_BYTES:,} bytes"
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        shown = longest[:24].decode("utf-8", "replace")
        return (f"a name of {len(longest):,} bytes in this path ({shown!r}...): file systems take names of "
                f"at most {NAME_MAX} bytes")
    return None


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
