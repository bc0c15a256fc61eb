"""How every command body runs: diagnostics and errors become one clear message and an exit code.

Kept apart from clawgen/cli.py so the command modules (commands.py, chips/cli.py, image/cli.py,
sim/cli.py...) need not import the top-level CLI that imports them (no import cycle).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from clawgen.diagnostics import (
    EXIT_INTERNAL,
    EXIT_INVALID,
    DiagnosticError,
    InputError,
    UsageError,
    format_diagnostics,
    terminal_safe,
)
from clawgen.files import path_length_problem


class InvalidPathError(click.BadParameter):
    """A path on the command line no file system could have: invalid input (exit 2, clawgen.cli.main)."""


class EmptyPathError(InvalidPathError):
    """An empty path on the command line."""


class PathArg(click.Path):
    """A path argument or option (a pathlib.Path) that refuses an empty value (pathlib reads "" as
    the current directory, so `clawgen validate "$SPEC"` with SPEC unset in CI would check whatever
    the working directory holds, and pass), and a path too long for any file system (every later
    ``exists()`` of it would fail with "File name too long")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(path_type=Path, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            if not value:
                raise EmptyPathError("an empty path (an unset variable?): give a file or directory", ctx=ctx,
                                     param=param)
            problem = path_length_problem(value)
            if problem:
                raise InvalidPathError(problem, ctx=ctx, param=param)
        return super().convert(value, param, ctx)


def missing_module_message(e: ImportError) -> str:
    """A module clawgen needs cannot be imported: name it, and say how to repair the installation."""
    name = e.name or "?"
    return (f"clawgen: error: required module '{name}' cannot be imported ({type(e).__name__}: {e}); "
            "the installation is incomplete or broken: reinstall clawgen (pip install -e . or "
            "pip install clawgen)")


def _shown(e: Exception) -> str:
    """An error's message for the terminal: its lines kept, what input put in them printable
    (an SVD's names, a file name: terminal_safe)."""
    return "\n".join(terminal_safe(line) for line in str(e).split("\n"))


def run_guarded(fn: Callable[..., Any], *args: Any, fmt: str = "text", **kwargs: Any) -> Any:
    """Run a command body: diagnostics and invalid input -> stderr + exit 2, usage problems -> exit 1."""
    try:
        return fn(*args, **kwargs)
    except DiagnosticError as e:
        out = format_diagnostics(e.diagnostics, fmt)
        click.echo(out, err=fmt == "text")
        sys.exit(EXIT_INVALID)
    except InputError as e:
        click.echo(f"clawgen: error: {_shown(e)}", err=True)
        sys.exit(EXIT_INVALID)
    except UsageError as e:
        click.echo(f"clawgen: error: {_shown(e)}", err=True)
        sys.exit(EXIT_INTERNAL)
    except ImportError as e:  # never skipped silently: a missing dependency is a loud failure
        if os.environ.get("CLAWGEN_DEBUG"):
            traceback.print_exc()
        click.echo(missing_module_message(e), err=True)
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
