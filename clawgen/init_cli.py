"""`clawgen init [DIR]`: the project wizard (see clawgen/init.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clawgen.guard import PathArg, run_guarded
from clawgen.init import (
    PROVIDERS,
    TELNET_PASSWORD_SECRET,
    TRANSPORTS,
    InitAnswers,
    name_problem,
    suggest_name,
    write_project,
)


def _name_answer(text: str) -> str:
    """The name typed at the prompt, or asked again with what is wrong (click re-prompts on BadParameter)."""
    problem = name_problem(text)
    if problem:
        raise click.BadParameter(problem)
    return text


def _transports_answer(text: str, wifi: bool) -> tuple[str, ...]:
    """"uart,telnet" typed at the prompt -> ("uart", "telnet"), or asked again."""
    chosen = tuple(t for t in text.replace(" ", "").split(",") if t)
    bad = [t for t in chosen if t not in TRANSPORTS]
    if not chosen or bad:
        raise click.BadParameter(f"choose uart, telnet, or both (uart,telnet){f', not {bad[0]!r}' if bad else ''}")
    if "telnet" in chosen and not wifi:
        raise click.BadParameter("telnet needs Wi-Fi, which this agent does not join: choose uart")
    return chosen


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

    def ask(value: object, prompt: str, **kw: Any) -> Any:
        """The option's value, else the default (-y) or the answer, through ``value_proc`` as click
        passes a typed answer or the default through it."""
        if value is not None:
            return value
        if defaults:
            return kw["value_proc"](kw["default"]) if "value_proc" in kw else kw["default"]
        return click.prompt(prompt, **kw)

    def body() -> None:
        agent = str(ask(name, "Agent name", default=suggest_name(Path(directory).resolve().name),
                        value_proc=_name_answer))
        chip_board = str(ask(board, "Board", type=click.Choice(board_names()), default="esp32s3"))
        model = str(ask(provider, "Model provider", type=click.Choice(sorted(PROVIDERS)), default="openai"))
        joins = bool(ask(wifi, "Join Wi-Fi", type=bool, default=True))
        chosen = tuple(transports) or ask(None, "Transports (uart, telnet, or both: uart,telnet)",
                                          default="uart,telnet" if joins else "uart",
                                          value_proc=lambda text: _transports_answer(text, joins))
        a = InitAnswers(name=agent, board=chip_board, provider=model, wifi=joins, transports=chosen)
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
