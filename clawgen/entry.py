"""The `clawgen` command (and `python -m clawgen`): clawgen.cli, after one look at the arguments.

`clawgen sim SPEC` gets its simulator's node process started here, before click and the commands
are imported (clawgen/sim/early.py); every other command goes straight to clawgen.cli.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["sim"]:
        from clawgen.sim.early import prestart

        prestart(sys.argv[1:])
    from clawgen.cli import main as cli_main

    cli_main()
