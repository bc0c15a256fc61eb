"""`clawgen sim`: start node before the command line is even parsed.

`clawgen sim` overlaps node's own start and the VM's loading with its build check (``Prestarted``),
but it could only start node once click and the commands had been imported: ~50 ms of a ~260 ms
start to the first prompt. ``clawgen.entry`` (the `clawgen` command) calls ``prestart`` with its
arguments first, before it imports anything else: for a plain `clawgen sim SPEC ...` whose spec
exists, on a machine where the VM is installed, node starts there and ``clawgen.sim.cli`` takes it
(``take``). Anything this reading of the arguments is unsure of (help, a missing spec, an option it
does not know, a VM still to install) leaves it to the command, which then starts node as before:
the early start is only ever a head start, never a different run. A node process nobody takes is
killed at exit.

Only light modules are imported here (no click, no dataclasses, no hashlib).
"""

from __future__ import annotations

import atexit
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clawgen.sim.process import Prestarted

# The options of `clawgen sim` and how many values each takes (tests/sim/test_sim_early.py holds
# this to the click command).
SIM_OPTIONS: dict[str, int] = {
    "--board": 1, "--model": 1, "--api-key-env": 1, "--send-key": 0, "-s": 2, "--subst": 2, "--out": 1,
    "--heapsize": 1, "--telnet-port": 1, "--telegram-api": 1,
}

_early: list[tuple[Prestarted, int | None]] = []  # (the process started early, its VM's heap): one at most


def sim_arguments(args: list[str]) -> dict[str, str] | None:
    """The spec, --board, --out and --heapsize of `clawgen sim` arguments (``args`` after the
    program name), or None unless they are a sim command this reading is sure of."""
    if not args or args[0] != "sim":
        return None
    found: dict[str, str] = {}
    rest = args[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            positional = rest[i + 1:]
            if "spec" in found or len(positional) != 1:
                return None
            found["spec"] = positional[0]
            break
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=")
            n = SIM_OPTIONS.get(name)
            if n is None or (eq and n != 1):
                return None  # --help, -h, an unknown option, a value given where none goes
            values = [value] if eq else rest[i + 1:i + 1 + n]
            if len(values) != n:
                return None
            if name in ("--board", "--out", "--heapsize"):
                found[name[2:]] = values[0]
            i += 1 if eq else 1 + n
            continue
        if "spec" in found:
            return None  # two positionals: the command will say what is wrong
        found["spec"] = a
        i += 1
    return found if "spec" in found else None


def prestart(args: list[str]) -> None:
    """Start the simulator's node process now when ``args`` are a `clawgen sim` run (see module doc)."""
    try:
        _prestart(args)
    except Exception as e:
        from clawgen.diagnostics import UsageError

        if not isinstance(e, UsageError):
            raise
        # (an unusable cache directory: the command says so, as every other command does)


def _prestart(args: list[str]) -> None:
    found = sim_arguments(args)
    if found is None or not os.path.isfile(found["spec"]):
        return
    import shutil
    from pathlib import Path

    from clawgen import signals
    from clawgen.sim import install, process

    if not install.is_installed() or not shutil.which("node"):
        return  # the command installs the VM (or says what is missing) first
    from clawgen.sim.heap import heapsize_bytes

    heap_bytes = heapsize_bytes(found["heapsize"]) if "heapsize" in found else None
    if "heapsize" in found and heap_bytes is None:
        return  # the command says what is wrong with it
    out = Path(found["out"]) if "out" in found else process.default_sim_out(Path(found["spec"]), found.get("board"))
    heapsize = process.start_heapsize(heap_bytes, out)
    signals.exit_on_termination_signals()  # (the `clawgen` command set it already; prestart may run without it)
    pre = process.Prestarted(stdin=process.INHERIT, capture=False, heapsize=heapsize)
    _early.append((pre, heapsize))
    atexit.register(pre.kill)  # (a no-op once the run took it)


def take(heapsize: int | None) -> Prestarted | None:
    """The node process started early, if it was started for a VM of ``heapsize`` (else it is killed
    and None returned: the caller starts its own)."""
    if not _early:
        return None
    pre, started_with = _early.pop()
    if started_with != heapsize:
        pre.kill()
        return None
    return pre
