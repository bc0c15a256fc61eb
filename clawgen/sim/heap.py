"""The simulator's GC heap bounds (one place for `vm.Simulation` and `clawgen sim --heapsize`).

The WebAssembly VM starts with a GC heap of `heapsize` bytes less the GC's own tables (about 3%; there
is no fixed base: 64 KiB gives 63,488 bytes) and then grows it on demand (split heap), so the
simulator starts with the board's heap but never runs out of it the way the board can.
"""

HEAPSIZE_MIN = 16 * 1024
HEAPSIZE_MAX = 64 * 1024 * 1024

_UNITS = {"": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}


def _size(text: str) -> int | None:
    """The bytes "65536", "64K", "1MB" name, whatever their range; None for anything else."""
    t = text.strip().lower()
    digits = t.rstrip("kmib")
    unit = t[len(digits):]
    if not digits.isdigit() or unit not in _UNITS:
        return None
    return int(digits) * _UNITS[unit]


def heapsize_bytes(text: str) -> int | None:
    """`--heapsize` text -> bytes, or None when it is not a size in HEAPSIZE_MIN..HEAPSIZE_MAX."""
    n = _size(text)
    return n if n is not None and HEAPSIZE_MIN <= n <= HEAPSIZE_MAX else None


def parse_heapsize(text: str) -> int:
    """``heapsize_bytes``, or InputError (exit 2) saying what a size is."""
    n = heapsize_bytes(text)
    if n is not None:
        return n
    from clawgen.diagnostics import InputError

    if _size(text) is None:
        raise InputError(f"--heapsize: {text!r} is not a size in bytes (e.g. 65536 or 64K)")
    raise InputError(f"--heapsize: {text} is outside {HEAPSIZE_MIN // 1024}K..{HEAPSIZE_MAX >> 20}M "
                     "(the VM's starting GC heap; the default is the board's)")
