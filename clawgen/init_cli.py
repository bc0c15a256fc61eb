"""`clawgen init [DIR]`: the project wizard (see clawgen/init.py)."""

from __future__ import annotations

from pathlib import Path

import click

from clawgen.guard import PathArg, run_guarded
from clawgen.init import PROVIDERS, TELNET_PASSWORD_SECRET, TRANSPORTS, InitAnswers, write_project


@click.command("init")
@click.argument("directory", type=PathArg(), default=".")
@click.option("--name", help="Agent name (also the Wi-Fi hostname).")
@click.option("--board", help="esp32s3, esp32, esp32c3 or esp32c6.")
@click.option("--provider", type=click.Choice(sorted(PROVIDERS)), help="Model provider.")
@click.option("--wifi/--no-wifi", default=None, help="Join a Wi-Fi network (credentials go to secrets.yaml).")
@click.option("--transport", "transports", multiple=True, type=click.Choice(TRANSPORTS),
              help="uart and/or telnet (repeat the option).")
@click.option("-y", "--defaults", is_flag=True, help="Take the default for everything the options do not say.")
def init_command(directory: Path, name: str | None, board: str | None, provider: str | None, wifi: bool | None,
                 transports: tuple[str, ...], defaults: bool) -> None:
    """Write a new agent spec, a secrets.yaml with placeholders and a .gitignore into DIRECTORY.

    Asks for what the options do not say (or takes the defaults with -y)."""
    from clawgen.boards import board_names

    def ask(value: object, prompt: str, **kw: object) -> object:
        if value is not None:
            return value
        if defaults:
            return kw["default"]
        return click.prompt(prompt, **kw)

    def body() -> None:
        a = InitAnswers(
            name=str(ask(name, "Agent name", default=Path(directory).resolve().name.lower() or "my-agent")),
            board=str(ask(board, "Board", type=click.Choice(board_names()), default="esp32s3")),
            provider=str(ask(provider, "Model provider", type=click.Choice(sorted(PROVIDERS)), default="openai")),
            wifi=bool(ask(wifi, "Join Wi-Fi", type=bool, default=True)),
            transports=tuple(transports) or tuple(str(ask(None, "Transports (uart, telnet, or both: uart,telnet)",
                                                         default="uart,telnet")).replace(" ", "").split(",")),
        )
        written = write_project(directory, a)
        spec = written[0]
        for p in written:
            click.echo(f"wrote {p}")
        click.echo(f"next: put your keys into {written[1]}, then\n  clawgen build {spec}\n"
                   f"  clawgen sim {spec} --model mock   # try it on the simulator")
        if "telnet" in a.transports:
            click.echo(f"Telnet asks for the password {written[1].name} holds as {TELNET_PASSWORD_SECRET} (`clawgen run` and "
                       "`clawgen logs` answer it for you)")

    run_guarded(body)


def register(group: click.Group) -> None:
    group.add_command(init_command)
