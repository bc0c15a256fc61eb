"""`clawgen init`: start a project the way ESPHome's wizard does.

Asks for (or takes as flags) the board, the model provider, Wi-Fi and the transports, then writes
three files into the project directory and nothing else:

- ``NAME.yaml``: the agent spec, every secret a ``!secret`` reference;
- ``secrets.yaml``: a placeholder for each of those secrets (replace them before flashing), but
  the Telnet password, made up here (a console on the network is never open to anyone on it);
- ``.gitignore``: keeps ``secrets.yaml`` and ``generated/`` out of version control (an existing
  ``.gitignore`` is extended, never rewritten).

The spec validates and builds at once. No file is overwritten: an existing spec or secrets file
is refused before anything is written. Secret values are never asked for on the command line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from secrets import token_urlsafe

from clawgen.diagnostics import InputError, peer_text
from clawgen.records import record

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


@record
class Provider:
    key: str
    title: str
    base_url: str
    model: str
    secret: str | None  # the secrets.yaml key of its API key (None: keyless local server)
    api: str = "openai"  # model.api: the wire format


PROVIDERS: dict[str, Provider] = {p.key: p for p in (
    Provider("openai", "OpenAI", "https://api.openai.com/v1", "gpt-4o-mini", "openai_api_key"),
    Provider("anthropic", "Anthropic (Claude, its Messages API)", "https://api.anthropic.com/v1",
             "claude-sonnet-4-5", "anthropic_api_key", api="anthropic"),
    Provider("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini",
             "openrouter_api_key"),
    Provider("ollama", "Ollama on your LAN (no key, plain HTTP)", "http://192.168.1.20:11434/v1",
             "qwen2.5:1.5b", None),
    Provider("llamacpp", "llama.cpp server on your LAN (no key, plain HTTP)", "http://192.168.1.20:8080/v1",
             "local-model", None),
)}
TRANSPORTS = ("uart", "telnet")
PLACEHOLDER = "REPLACE-ME"
GITIGNORE_LINES = ("secrets.yaml", "generated/")
TELNET_PASSWORD_SECRET = "telnet_password"  # the secrets.yaml key of the Telnet password


@record
class InitAnswers:
    name: str
    board: str
    provider: str
    wifi: bool
    transports: tuple[str, ...]


def name_problem(name: str) -> str | None:
    """What is wrong with an agent name (at the prompt and in ``check_answers``), or None."""
    if NAME_RE.match(name):
        return None
    return (f"agent name {peer_text(name, 40)!r}: use 1-31 lower-case letters, digits and '-', starting with "
            "a letter (it becomes the device's hostname)")


def suggest_name(directory_name: str) -> str:
    """The prompt's default agent name from the project directory's ("My Project 2" -> "my-project-2"),
    or "my-agent" when nothing of it makes a name."""
    name = re.sub(r"[^a-z0-9]+", "-", directory_name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:31].rstrip("-")
    return name if NAME_RE.match(name) else "my-agent"


def check_answers(a: InitAnswers) -> None:
    from clawgen.boards import board_names

    problem = name_problem(a.name)
    if problem:
        raise InputError(problem)
    if a.board not in board_names():
        raise InputError(f"unknown board {a.board!r}; choose one of {', '.join(board_names())}")
    if a.provider not in PROVIDERS:
        raise InputError(f"unknown provider {a.provider!r}; choose one of {', '.join(PROVIDERS)}")
    if not a.transports:
        raise InputError("choose at least one transport (uart, telnet)")
    bad = [t for t in a.transports if t not in TRANSPORTS]
    if bad:
        raise InputError(f"unknown transport {bad[0]!r}; choose from {', '.join(TRANSPORTS)}")
    if "telnet" in a.transports and not a.wifi:
        raise InputError("telnet needs Wi-Fi: add --wifi or drop telnet")


def schema_uri() -> str:
    """The spec schema as a file URI, for editors (the yaml-language-server line)."""
    from clawgen.resources import schemas_dir

    return (schemas_dir() / "agent.schema.json").as_uri()


def render_spec(a: InitAnswers) -> str:
    from clawgen.boards import load_board

    p = PROVIDERS[a.provider]
    lines = [
        f"# yaml-language-server: $schema={schema_uri()}",
        f"# Agent spec written by `clawgen init`. Build it: clawgen build {a.name}.yaml",
        f"name: {a.name}",
        f"board: {a.board}",
        "system_prompt: >-",
        f"  You are {a.name}, an assistant living on {_chip_phrase(load_board(a.board).title)} microcontroller.",
        "  Answer briefly.",
        "model:",
        *([f"  api: {p.api}"] if p.api != "openai" else []),
        f"  base_url: {p.base_url}",
        f"  model: {p.model}",
    ]
    if p.secret:
        lines.append(f"  api_key: !secret {p.secret}")
    lines.append("  max_tokens: 512")
    if a.wifi:
        lines += ["network:", "  ssid: !secret wifi_ssid", "  password: !secret wifi_password",
                  f"  hostname: {a.name}"]
    lines.append("transports:")
    if "uart" in a.transports:
        lines.append("  uart: true")
    if "telnet" in a.transports:
        lines.append(f"  telnet: {{password: !secret {TELNET_PASSWORD_SECRET}}}")
    lines.append("capabilities: [system]")
    return "\n".join(lines) + "\n"


def render_secrets(a: InitAnswers) -> str:
    p = PROVIDERS[a.provider]
    lines = ["# Secrets for the agent spec next to this file. Replace every placeholder before you flash.",
             "# Keep this file out of version control (.gitignore lists it)."]
    if p.secret:
        lines.append(f"{p.secret}: {PLACEHOLDER}-{p.key}-api-key")
    if a.wifi:
        lines += [f"wifi_ssid: {PLACEHOLDER}-wifi-name", f"wifi_password: {PLACEHOLDER}-wifi-password"]
    if "telnet" in a.transports:
        lines += ["# What a Telnet connection must send first (`clawgen run`/`logs` send it for you).",
                  f"{TELNET_PASSWORD_SECRET}: {token_urlsafe(12)}"]
    if len(lines) == 2:
        lines.append("{}  # this agent needs no secrets yet")
    return "\n".join(lines) + "\n"


def write_project(directory: Path, a: InitAnswers) -> list[Path]:
    """Write the three files (refusing before writing anything if the spec or secrets exist)."""
    check_answers(a)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file, not a directory")
    spec = directory / f"{a.name}.yaml"
    secrets = directory / "secrets.yaml"
    for p in (spec, secrets):
        if p.exists():
            raise InputError(f"{p} already exists; nothing was written (choose another directory or name)")
    text = render_spec(a)
    created = not directory.exists()
    written: list[Path] = []
    gi = directory / ".gitignore"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        spec.write_text(text, encoding="utf-8")
        written.append(spec)
        # Secrets are created unreadable to others before anything is written into them.
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        written.append(secrets)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_secrets(a))
        have = gi.read_text(encoding="utf-8").splitlines() if gi.is_file() else []
        missing = [ln for ln in GITIGNORE_LINES if ln not in have]
        if missing:
            prefix = "" if not have or (gi.read_text(encoding="utf-8").endswith("\n")) else "\n"
            with gi.open("a", encoding="utf-8") as f:
                f.write(prefix + "\n".join(missing) + "\n")
    except OSError as e:
        # Nothing half-written stays: the files this call made go, and the directory if it made it.
        for p in written:
            p.unlink(missing_ok=True)
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise InputError(f"cannot write the new project into {directory}: {e.strerror or e}; nothing was written "
                         "(choose a directory you can write)") from None
    return [spec, secrets, gi]


def _chip_phrase(title: str) -> str:
    """"an ESP32-S3" from a board title ("ESP32-S3 (generic module, ...)"): the chip, with its article."""
    chip = title.split(" (", 1)[0]
    return f"{'an' if chip[:1].upper() in 'AEIOU' else 'a'} {chip}"
