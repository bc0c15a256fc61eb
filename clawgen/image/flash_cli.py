"""The `clawgen flash` and `clawgen monitor` commands; `register(group)` adds both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from clawgen.guard import PathArg
from clawgen.image.flash import AFTER_CHOICES, BEFORE_CHOICES, DEFAULT_BAUD


def _guarded(body: Callable[[], None]) -> None:
    from clawgen.guard import run_guarded

    run_guarded(body)


@click.command("flash")
@click.argument("build_dir", type=PathArg())
@click.option("--port", "-p", help="Serial port (e.g. /dev/ttyUSB0, COM3, socket://host:port); "
              "picked automatically when exactly one board is connected.")
@click.option("--baud", "-b", type=click.IntRange(9600, 4_000_000), default=DEFAULT_BAUD, show_default=True,
              help="Transfer baud rate (the connection starts at the ROM's 115200).")
@click.option("--erase", is_flag=True, help="Erase the whole flash first (also wipes the filesystem).")
@click.option("--app-only", is_flag=True,
              help="Write only the filesystem and NVS images, for a board already running MicroPython.")
@click.option("--no-stub", is_flag=True,
              help="Talk to the chip's ROM bootloader only; do not upload esptool's flasher stub.")
@click.option("--before", type=click.Choice(BEFORE_CHOICES), default="default-reset", show_default=True,
              help="How to put the chip into download mode (socket:// ports always use no-reset).")
@click.option("--after", type=click.Choice(AFTER_CHOICES), default="hard-reset", show_default=True,
              help="What to do with the chip after flashing.")
@click.option("--connect-attempts", type=click.IntRange(1, 100), default=7, show_default=True,
              help="How many times to try to reach the bootloader.")
@click.option("--device", "device", metavar="NAME",
              help="Fleet builds (--devices): the device whose NVS image (secrets, name) to write.")
def flash_command(build_dir: Path, port: str | None, baud: int, erase: bool, app_only: bool,
                  no_stub: bool, before: str, after: str, connect_attempts: int, device: str | None) -> None:
    """Write BUILD_DIR's firmware (or with --app-only its filesystem and NVS) to a board, and verify it."""

    def body() -> None:
        from clawgen.image.flash import FlashOptions, flash_build, load_flash_plan
        from clawgen.image.ports import choose_port

        plan = load_flash_plan(build_dir, app_only=app_only, device=device)
        options = FlashOptions(port=choose_port(port), baud=baud, erase=erase, stub=not no_stub,
                               before=before, after=after, connect_attempts=connect_attempts)
        click.echo(f"Flashing {plan.build_dir}{f' for device {device}' if device else ''} "
                   f"({'filesystem and NVS' if app_only else 'full image'}, "
                   f"{plan.chip}, {plan.flash_size}) through {options.port}")
        flash_build(plan, options, echo=click.echo)

    _guarded(body)


@click.command("monitor")
@click.option("--port", "-p", help="Serial port; picked automatically when exactly one board is connected.")
@click.option("--baud", "-b", type=click.IntRange(300, 4_000_000), default=115200, show_default=True)
def monitor_command(port: str | None, baud: int) -> None:
    """Open the board's serial console (MicroPython REPL); Ctrl-] to leave."""

    def body() -> None:
        from clawgen.image.monitor import monitor
        from clawgen.image.ports import choose_port

        monitor(choose_port(port), baud)

    _guarded(body)


def register(group: click.Group) -> None:
    group.add_command(flash_command)
    group.add_command(monitor_command)
