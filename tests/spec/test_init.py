"""`clawgen init`: the wizard's files validate and build at once; nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from clawgen.cli import cli
from clawgen.init import PROVIDERS


def _init(tmp: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["init", str(tmp), *args], input=input)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_provider_validates_and_builds(tmp_path: Path, provider: str) -> None:
    r = _init(tmp_path, "--name", "demo", "--board", "esp32c3", "--provider", provider, "--wifi",
              "--transport", "uart", "--transport", "telnet")
    assert r.exit_code == 0, r.output
    spec = tmp_path / "demo.yaml"
    secrets = yaml.safe_load((tmp_path / "secrets.yaml").read_text())
    text = spec.read_text()
    if PROVIDERS[provider].secret:
        assert f"api_key: !secret {PROVIDERS[provider].secret}" in text
        assert secrets[PROVIDERS[provider].secret].startswith("REPLACE-ME")
    else:
        assert "api_key" not in text
    assert ("api: anthropic" in text) == (provider == "anthropic")
    assert (tmp_path / ".gitignore").read_text().splitlines() == ["secrets.yaml", "generated/"]
    # Telnet is never open to the network: init makes up its password (the only secret it can).
    assert "telnet: {password: !secret telnet_password}" in text
    pw = secrets["telnet_password"]
    assert len(pw) == 16 and pw.isascii() and pw not in r.output
    assert "Telnet asks for the password secrets.yaml holds as telnet_password" in r.output
    v = CliRunner().invoke(cli, ["validate", str(spec)])
    assert v.exit_code == 0, v.output
    b = CliRunner().invoke(cli, ["build", str(spec), "--out", str(tmp_path / "out"), "--no-images"])
    assert b.exit_code == 0, b.output
    assert (tmp_path / "out" / "build.json").is_file()
    assert "TELNET_PW_KEY = 'telnet_pw'" in (tmp_path / "out" / "app" / "claw_config.py").read_text()
    assert not any(pw in f.read_text(errors="replace") for f in (tmp_path / "out").rglob("*.py"))


def test_two_projects_get_two_telnet_passwords(tmp_path: Path) -> None:
    for d in ("a", "b"):
        assert _init(tmp_path / d, "-y", "--name", d).exit_code == 0
    a, b = (yaml.safe_load((tmp_path / d / "secrets.yaml").read_text())["telnet_password"] for d in ("a", "b"))
    assert a != b


def test_prompts_fill_what_options_do_not_say(tmp_path: Path) -> None:
    # name, board, provider, wifi, transports
    r = _init(tmp_path, input="kitchen\nesp32c6\nollama\nn\nuart\n")
    assert r.exit_code == 0, r.output
    doc = (tmp_path / "kitchen.yaml").read_text()
    assert "board: esp32c6" in doc and "network:" not in doc and "11434" in doc
    assert "telnet" not in doc
    # The prompt names the chip (not the board file's title), with its article.
    prompt = yaml.safe_load(doc)["system_prompt"]
    assert prompt.startswith("You are kitchen, an assistant living on an ESP32-C6 microcontroller."), prompt


def test_a_bad_answer_is_asked_again(tmp_path: Path) -> None:
    # Was taken, and refused only after every other question (exit 2, nothing written).
    r = _init(tmp_path, input="\x1b[31m\nBad Name\nkitchen\n\n\nn\nuart,serial\n,\ntelnet\nuart\n")
    assert r.exit_code == 0, r.output
    assert r.output.count("Error: agent name") == 2 and "Error: agent name '?[31m'" in r.output
    assert "Error: choose uart, telnet, or both (uart,telnet), not 'serial'" in r.output
    assert "Error: choose uart, telnet, or both (uart,telnet)\n" in r.output  # (",": no transport)
    assert "Error: telnet needs Wi-Fi, which this agent does not join: choose uart" in r.output
    # Without Wi-Fi the transports' default is uart alone.
    assert "Transports (uart, telnet, or both: uart,telnet) [uart]:" in r.output
    assert "telnet" not in (tmp_path / "kitchen.yaml").read_text()


@pytest.mark.parametrize(("directory", "name"), [
    ("My Project 2", "my-project-2"), ("2nd_try", "nd-try"), ("___", "my-agent"), ("ÄÖÜ", "my-agent"),
    ("x" * 40, "x" * 31), ("kitchen", "kitchen")])
def test_the_default_name_comes_from_the_directory(tmp_path: Path, directory: str, name: str) -> None:
    r = _init(tmp_path / directory, input="\n\n\n\n\n")
    assert r.exit_code == 0, r.output
    assert f"Agent name [{name}]" in r.output and (tmp_path / directory / f"{name}.yaml").is_file()


def test_defaults_flag_needs_no_input(tmp_path: Path) -> None:
    r = _init(tmp_path / "proj", "-y", "--name", "proj")
    assert r.exit_code == 0, r.output
    assert "board: esp32s3" in (tmp_path / "proj" / "proj.yaml").read_text()


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("mine: 1\n")
    (tmp_path / ".gitignore").write_text("build/")
    r = _init(tmp_path, "-y", "--name", "demo")
    assert r.exit_code == 2
    assert "already exists; nothing was written" in r.output
    assert (tmp_path / "secrets.yaml").read_text() == "mine: 1\n"
    assert not (tmp_path / "demo.yaml").exists()
    assert (tmp_path / ".gitignore").read_text() == "build/"


def test_existing_gitignore_is_extended(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build/")
    r = _init(tmp_path, "-y", "--name", "demo")
    assert r.exit_code == 0, r.output
    assert (tmp_path / ".gitignore").read_text() == "build/\nsecrets.yaml\ngenerated/\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "Bad Name"], "agent name 'Bad Name'"),
    (["--name", "x", "--board", "esp8266"], "unknown board 'esp8266'"),
    (["--name", "x", "--no-wifi", "--transport", "telnet"], "telnet needs Wi-Fi"),
])
def test_bad_answers_exit_2_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    r = _init(tmp_path / "p", "-y", *args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not (tmp_path / "p").exists()


def test_a_directory_that_cannot_be_made_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    r = _init(tmp_path / "afile" / "sub", "-y", "--name", "demo")
    assert r.exit_code == 2, r.output
    assert "cannot write the new project into" in r.output and "nothing was written" in r.output
    assert (tmp_path / "afile").read_text() == "x"


def test_a_failed_write_takes_back_what_it_wrote(tmp_path: Path) -> None:
    # secrets.yaml is a dangling link: not "existing" for the check before writing, but the secrets
    # file cannot be created there. The spec written just before goes again; the link stays.
    (tmp_path / "secrets.yaml").symlink_to(tmp_path / "elsewhere" / "secrets.yaml")
    r = _init(tmp_path, "-y", "--name", "demo")
    assert r.exit_code == 2, r.output
    assert "nothing was written" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.yaml"]
    assert (tmp_path / "secrets.yaml").is_symlink()


def test_the_secrets_file_is_private_from_the_start(tmp_path: Path) -> None:
    r = _init(tmp_path, "-y", "--name", "demo")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "secrets.yaml").stat().st_mode & 0o777 == 0o600


def test_the_readme_lists_every_provider() -> None:
    line = next(x for x in (Path(__file__).resolve().parents[2] / "README.md").read_text().splitlines()
                if x.startswith("| `clawgen init"))
    listed = line.split("providers: ", 1)[1].split(")", 1)[0]
    assert sorted(p.strip(" `") for p in listed.split(",")) == sorted(PROVIDERS)
