"""Termination signals: the `clawgen` command ends through its cleanup, and takes what it started with it.

By default SIGTERM (a CI job's timeout, `kill`) and SIGHUP (a closed terminal) end Python at once:
no ``finally`` runs, so a build's staging directory stays behind and a child process (the full
build's make and the compilers under it, the simulator's node) keeps running. The `clawgen` command
(clawgen/entry.py) turns them into ``SystemExit(128 + signal)``, the exit status a shell reports
for a process the signal killed, so that they unwind as Ctrl-C does. The library never sets this
(a test runner or a program that imports clawgen has its own handling).

A long child with children of its own (make -> idf.py -> cmake -> ninja -> gcc) runs in its own
process group (``run_group``): ending make alone would leave the rest running.
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing and subprocess are not imported at the command's start: `sim` starts node first)
    import subprocess
    from collections.abc import Sequence
    from typing import IO

# Seconds a process group gets to end after SIGTERM before SIGKILL.
GROUP_GRACE_S = 5.0


def exit_on_termination_signals() -> None:
    """SIGTERM and SIGHUP raise ``SystemExit(128 + signum)`` in the main thread (the `clawgen`
    command only; see the module's docstring)."""

    def end(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)  # (no SIGHUP on Windows)
        if sig is not None:
            signal.signal(sig, end)


def run_group(command: Sequence[str], stdout: IO[bytes] | int | None = None, stderr: IO[bytes] | int | None = None,
              check: bool = False) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(command)`` in a process group of its own: when this process is interrupted
    while it waits (Ctrl-C, or a termination signal made ``SystemExit``), the whole group is ended
    (``end_group``), not only its first process. (``check`` as subprocess.run's.)"""
    import subprocess

    proc = subprocess.Popen(list(command), stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        code = proc.wait()
    except BaseException:
        end_group(proc)
        raise
    if check and code:
        raise subprocess.CalledProcessError(code, list(command))
    return subprocess.CompletedProcess(list(command), code)


def end_group(proc: subprocess.Popen[bytes], grace: float | None = None) -> None:
    """End the process group ``proc`` leads: SIGTERM to every member, then, for what is still there
    after ``grace`` seconds (``GROUP_GRACE_S``), SIGKILL; ``proc`` is reaped."""
    import subprocess
    import time

    if grace is None:
        grace = GROUP_GRACE_S
    killpg = getattr(os, "killpg", None)
    if killpg is None:  # (Windows: no process groups of this kind)
        proc.kill()
        proc.wait()
        return
    if not _signal_group(proc.pid, signal.SIGTERM):
        proc.wait()
        return
    end = time.monotonic() + grace
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    while time.monotonic() < end and _signal_group(proc.pid, 0):  # the rest of the group
        time.sleep(0.05)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group (0: only look); False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # (a member that changed its user: nothing more to do for it)
        return False
    return True
