"""The `clawgen` command line: a thin layer over the pipeline stages.

Each area owns its own commands (chips/cli.py, image/cli.py, sim/cli.py); this module
adds them to the top-level group and turns diagnostics into exit codes.
"""

from __future__ import annotations

import importlib
import sys

import click

from clawgen import __version__
from clawgen.diagnostics import EXIT_INTERNAL, EXIT_INVALID
from clawgen.guard import InvalidPathError, missing_module_message, run_guarded

__all__ = ["cli", "main", "run_guarded"]  # run_guarded lives in clawgen.guard; import it from there


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
    "web": "clawgen.webinstall_cli",
    "init": "clawgen.init_cli",
    "run": "clawgen.run_cli",
    "logs": "clawgen.run_cli",
    "ota": "clawgen.ota_cli",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        modname = COMMAND_MODULES.get(cmd_name)
        if modname is None:
            return None
        mod = importlib.import_module(modname)  # every area ships with clawgen: a failure is loud
        holder = click.Group()
        mod.register(holder)
        return holder.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clawgen")
def cli() -> None:
    """Compile an LLM agent spec and a chip register map into MicroPython firmware."""


def _tolerant_output() -> None:
    """Text that the terminal's encoding cannot carry is shown escaped instead of raising
    UnicodeEncodeError: a file name in bytes that are not UTF-8 (Python reads it as surrogates)
    printed on a strict UTF-8 stdout ended a finished build with an "internal error"."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main() -> None:
    _tolerant_output()
    # click's own usage errors exit 2; ours reserve 2 for invalid input, so map them to 1.
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERNAL)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except InvalidPathError as e:  # invalid input, not a usage mistake
        e.show()
        sys.exit(EXIT_INVALID)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_INTERNAL)
    except ImportError as e:  # a command's module (or what it needs) cannot be imported
        click.echo(missing_module_message(e), err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)


if __name__ == "__main__":
    main()
