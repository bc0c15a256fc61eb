"""The `clawgen` command (and `python -m clawgen`): clawgen.cli, after one look at the arguments.

`clawgen sim SPEC` gets its simulator's node process started here, before click and the commands
are imported (clawgen/sim/early.py); every other command goes straight to clawgen.cli. Both end on
SIGTERM and SIGHUP as on Ctrl-C (clawgen/signals.py).
"""

from __future__ import annotations

import sys

from clawgen.signals import exit_on_termination_signals


def main() -> None:
    # SIGTERM and SIGHUP end every command through its cleanup (a build's staging directory,
    # the processes it started), as Ctrl-C does: clawgen/signals.py.
    exit_on_termination_signals()
    if sys.argv[1:2] == ["sim"]:
        from clawgen.sim.early import prestart

        prestart(sys.argv[1:])
    from clawgen.cli import main as cli_main

    cli_main()
