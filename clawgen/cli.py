"""The `clawgen` command line: a thin layer over the pipeline stages.

Each area owns its own commands (chips/cli.py, image/cli.py, sim/cli.py); this module
adds them to the top-level group and turns diagnostics into exit codes.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from clawgen import __version__
from clawgen.diagnostics import (
    EXIT_INTERNAL,
    EXIT_INVALID,
    DiagnosticError,
    UsageError,
    format_diagnostics,
)


def run_guarded(fn: Callable[..., Any], *args: Any, fmt: str = "text", **kwargs: Any) -> Any:
    """Run a command body: diagnostics -> stderr + exit 2, usage problems -> exit 1."""
    try:
        return fn(*args, **kwargs)
    except DiagnosticError as e:
        out = format_diagnostics(e.diagnostics, fmt)
        click.echo(out, err=fmt == "text")
        sys.exit(EXIT_INVALID)
    except UsageError as e:
        click.echo(f"clawgen: error: {e}", err=True)
        sys.exit(EXIT_INTERNAL)
    except KeyboardInterrupt:
        click.echo("clawgen: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `clawgen svd info CHIP | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except click.exceptions.Exit:
        raise
    except (click.ClickException, click.Abort):
        raise
    except SystemExit:
        raise
    except Exception as e:  # a bug: say so plainly, show the traceback only on request
        if os.environ.get("CLAWGEN_DEBUG"):
            traceback.print_exc()
        click.echo(f"clawgen: internal error: {type(e).__name__}: {e} "
                   "(set CLAWGEN_DEBUG=1 for a traceback and please report it)", err=True)
        sys.exit(EXIT_INTERNAL)


# Which module provides each command. Modules are imported only when their command runs,
# so `clawgen build` on an unchanged spec does not pay for the simulator or esptool.
COMMAND_MODULES: dict[str, str] = {
    "validate": "clawgen.commands",
    "config": "clawgen.commands",
    "schema": "clawgen.commands",
    "boards": "clawgen.commands",
    "build": "clawgen.commands",
    "sim": "clawgen.sim.cli",
    "svd": "clawgen.chips.cli",
    "firmware": "clawgen.image.cli",
    "flash": "clawgen.image.flash_cli",
    "monitor": "clawgen.image.flash_cli",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        modname = COMMAND_MODULES.get(cmd_name)
        if modname is None:
            return None
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name and modname.startswith(e.name):
                return None  # that area is not part of this installation
            raise
        holder = click.Group()
        mod.register(holder)
        return holder.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clawgen")
def cli() -> None:
    """Compile an LLM agent spec and a chip register map into MicroPython firmware."""


def main() -> None:
    # click's own usage errors exit 2; ours reserve 2 for invalid input, so map them to 1.
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERNAL)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)


if __name__ == "__main__":
    main()
