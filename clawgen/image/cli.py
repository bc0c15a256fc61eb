"""The `clawgen firmware` group (`firmware fetch`), plus flash/monitor from flash_cli.py."""

from __future__ import annotations

from pathlib import Path

import click

from clawgen.guard import PathArg


@click.group("firmware")
def firmware_group() -> None:
    """Stock MicroPython base firmware: fetch it into the cache, or import a downloaded file."""


@firmware_group.command("fetch")
@click.option("--board", "-b", "board_name", required=True, help="Board name (e.g. esp32s3).")
@click.option("--file", "file", type=PathArg(),
              help="Import this already-downloaded .bin instead of downloading.")
@click.option("--url", help="Download from this URL instead of the pinned release (a mirror or a local "
              "server; {board_id} and {version} are filled in). Default: $CLAWGEN_FIRMWARE_URL, else the "
              "pinned release URL.")
def fetch_command(board_name: str, file: Path | None, url: str | None) -> None:
    """Put the pinned stock MicroPython release for BOARD into the cache, after checking it.

    The file is checked (chip id, bootloader, MicroPython version banner, and the pinned sha256 when
    there is one) before it is cached; a failed or refused download caches nothing."""
    from clawgen.guard import run_guarded

    def body() -> None:
        from clawgen.boards import load_board
        from clawgen.diagnostics import UsageError
        from clawgen.image.basefw import fetch_firmware

        board = load_board(board_name).data
        if file is not None and url is not None:
            raise UsageError("--file and --url exclude each other: import a file, or download one")
        path, info, digest = fetch_firmware(board, file, url, progress=lambda s: click.echo(s, err=True))
        click.echo(f"cached MicroPython {info.version}"
                   + (f" (built {info.build_date})" if info.build_date else "")
                   + f" for {info.chip} at {path}\nsha256 {digest}")

    run_guarded(body)


@firmware_group.command("path")
@click.option("--board", "-b", "board_name", required=True, help="Board name (e.g. esp32s3).")
def path_command(board_name: str) -> None:
    """Print where the base firmware for BOARD is cached, and how to obtain it if it is not."""
    from clawgen.guard import run_guarded

    def body() -> None:
        from clawgen.boards import load_board
        from clawgen.image.basefw import cache_path, obtain_instructions

        board = load_board(board_name).data
        path = cache_path(board)
        click.echo(str(path))
        if not path.is_file():
            click.echo("not cached yet; " + obtain_instructions(board), err=True)

    run_guarded(body)


def register(group: click.Group) -> None:
    group.add_command(firmware_group)
    from clawgen.image import flash_cli

    flash_cli.register(group)
