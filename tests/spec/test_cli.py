"""The spec commands through the real CLI entry point: exit codes, formats, masking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def clawgen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawgen.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


def test_validate_examples_exit_0(examples_copy: Path):
    r = clawgen("validate", str(examples_copy / "sensor-agent.yaml"), str(examples_copy / "local-chat.yaml"))
    assert r.returncode == 0, r.stderr
    assert "2 spec(s) valid" in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_invalid_exit_2_text_json_github(write_spec):
    spec = write_spec({"spec.yaml": "name: a\nmodle:\n  base_url: http://h/v1\n"})
    r = clawgen("validate", str(spec))
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert f"{spec}:2:1: error: at modle: unknown key 'modle' (did you mean \"model\"?)" in lines
    assert f"{spec}:1:1: error: missing required key 'model'" in lines

    r = clawgen("validate", "--format", "json", str(spec))
    assert r.returncode == 2
    data = json.loads(r.stdout)
    assert {"file": str(spec), "line": 2, "column": 1, "path": "modle", "severity": "error",
            "message": "unknown key 'modle' (did you mean \"model\"?)"} in data

    r = clawgen("validate", "--format", "github", str(spec))
    assert r.returncode == 2
    assert (f"::error file={spec},line=2,col=1::at modle: unknown key 'modle' (did you mean \"model\"?)"
            in r.stdout.splitlines())


def test_validate_usage_errors_exit_1(tmp_path: Path):
    assert clawgen("validate").returncode == 1  # no PATH
    r = clawgen("validate", "--format", "xml", str(tmp_path))
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_missing_file_is_invalid_input(tmp_path: Path):
    r = clawgen("validate", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == f"{tmp_path / 'nope.yaml'}:1:1: error: spec file not found"


@pytest.mark.parametrize("args", [
    ("validate", ""), ("build", ""), ("config", ""), ("sim", ""), ("flash", ""), ("ota", "", "--host", "x"),
    ("web", ""), ("init", "", "-y"),
])
def test_an_empty_path_is_invalid_input(examples_copy: Path, args: tuple[str, ...]):
    # pathlib reads "" as ".": `clawgen validate "$SPEC"` with SPEC unset checked the working
    # directory (here the examples, all valid) and passed.
    r = subprocess.run([sys.executable, "-m", "clawgen.cli", *args], capture_output=True, text=True,
                       cwd=examples_copy, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "an empty path (an unset variable?)" in r.stderr and "Traceback" not in r.stderr


def test_a_directory_s_specs_that_cannot_be_read_are_errors_not_skipped(examples_copy: Path):
    # validate DIR skipped them (a broken link to a spec passed CI as "1 spec(s) valid").
    import os

    d = examples_copy
    os.mkfifo(d / "fifo.yaml")
    (d / "zero.yaml").symlink_to("/dev/zero")
    (d / "broken.yaml").symlink_to("moved-away.yaml")
    (d / "adir.yaml").mkdir()  # (a directory: neither a spec nor a mistake)
    r = clawgen("validate", str(d))
    assert r.returncode == 2, r.stderr
    assert f"{d / 'fifo.yaml'}:1:1: error: spec file is not a regular file (a FIFO or a device?)" in r.stderr
    assert f"{d / 'zero.yaml'}:1:1: error: spec file is not a regular file (a FIFO or a device?)" in r.stderr
    assert (f"{d / 'broken.yaml'}:1:1: error: spec file is a symbolic link to moved-away.yaml, which does not "
            "exist") in r.stderr
    assert "adir.yaml" not in r.stderr and "Traceback" not in r.stderr
    for cmd in ("build", "sim", "config"):  # one spec: the same words
        r = clawgen(cmd, str(d / "broken.yaml"))
        assert r.returncode == 2 and "is a symbolic link to moved-away.yaml, which does not exist" in r.stderr, r.stderr


_LONG_NAME = "x" * 300  # over NAME_MAX: stat() fails with "File name too long", exists() raises it
_LONG_PATH = "a/" * 2000 + "spec.yaml"  # every name short, the whole over PATH_MAX


@pytest.mark.parametrize("args", [
    ("validate", _LONG_NAME), ("validate", _LONG_PATH), ("build", _LONG_NAME), ("config", _LONG_NAME),
    ("sim", _LONG_NAME), ("flash", _LONG_NAME), ("web", _LONG_NAME), ("run", _LONG_NAME),
    ("logs", _LONG_NAME), ("ota", _LONG_NAME, "--host", "x"),
    ("build", "--out", _LONG_NAME, "sensor-agent.yaml"), ("build", "--out", _LONG_PATH, "sensor-agent.yaml"),
    ("build", "--base-firmware", _LONG_NAME, "sensor-agent.yaml"),
    ("build", "--micropython", _LONG_NAME, "sensor-agent.yaml"),
    ("build", "--devices", _LONG_NAME, "sensor-agent.yaml"), ("sim", "--out", _LONG_NAME, "sensor-agent.yaml"),
])
def test_a_path_no_file_system_takes_is_invalid_input(examples_copy: Path, args: tuple[str, ...]):
    # Was "internal error: OSError: [Errno 36] File name too long" (exit 1) from the first exists().
    r = subprocess.run([sys.executable, "-m", "clawgen.cli", *args], capture_output=True, text=True,
                       cwd=examples_copy, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert ("file systems take names of at most 255 bytes" in r.stderr
            or "clawgen takes paths of at most 3,800 bytes" in r.stderr), r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr) < 1000  # the path is not echoed whole
    assert not (examples_copy / "generated").exists()


import yaml  # noqa: E402


class _SecretTagLoader(yaml.SafeLoader):
    """Reads `!secret NAME` as '<secret NAME>' to look at config output without clawgen's loader."""


_SecretTagLoader.add_constructor("!secret", lambda loader, node: f"<secret {node.value}>")


@pytest.mark.parametrize("spec", ["local-chat.yaml", "sensor-agent.yaml", "register-assistant.yaml"])
def test_config_output_is_itself_a_valid_spec_with_the_same_resolution(examples_copy: Path, spec: str):
    first = clawgen("config", str(examples_copy / spec))
    assert first.returncode == 0, first.stderr
    resolved = examples_copy / f"resolved-{spec}"  # beside secrets.yaml, so its !secret tags resolve
    resolved.write_text(first.stdout)
    check = clawgen("validate", "--format", "json", str(resolved))
    assert (check.returncode, json.loads(check.stdout)) == (0, [])  # not even a warning
    again = clawgen("config", str(resolved))
    assert again.stdout == first.stdout


def test_config_prints_resolved_spec_with_secrets_masked(examples_copy: Path):
    r = clawgen("config", str(examples_copy / "local-chat.yaml"), "-s", "LLM_HOST", "10.0.0.7")
    assert r.returncode == 0, r.stderr
    import yaml

    assert "\n  password: !secret wifi_password\n" in r.stdout
    body = yaml.load(r.stdout, Loader=_SecretTagLoader)
    assert body["model"]["base_url"] == "http://10.0.0.7:11434/v1"  # -s overrides substitutions
    assert body["network"]["password"] == "<secret wifi_password>"
    assert body["limits"]["request_bytes"] == 8192  # board default filled in
    assert body["transports"]["telnet"] == {"enabled": True, "port": 2323, "password": "<secret telnet_password>"}
    assert "example-password" not in r.stdout + r.stderr and "example-telnet-password" not in r.stdout + r.stderr
    assert "example-wifi" not in r.stdout + r.stderr


def test_schema_command_prints_the_schema():
    r = clawgen("schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == json.loads((REPO / "schemas" / "agent.schema.json").read_text())


def test_boards_lists_every_board():
    r = clawgen("boards")
    assert r.returncode == 0
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert set(rows) == {"esp32", "esp32c3", "esp32c6", "esp32s3"}
    assert rows["esp32s3"][1:4] == ["esp32s3", "xtensawin", "1.29.0"]
    assert rows["esp32c3"][2] == "rv32imc"
    assert rows["esp32"][7:9] == ["56->112", "K"] and rows["esp32s3"][7:9] == ["64->128", "K"]  # heap start -> limit


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\x00\x00", b"- a\n- b\n", b"just text\n"])
def test_malformed_files_never_traceback(write_spec, content: bytes):
    spec = write_spec({"spec.yaml": content})
    r = clawgen("validate", str(spec))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert r.stderr.startswith(f"{spec}:")


def test_build_cli_reports_and_skips(examples_copy: Path, tmp_path: Path):
    out = tmp_path / "out"
    r = clawgen("build", str(examples_copy / "local-chat.yaml"), "--board", "esp32c3", "--out", str(out),
                "--no-images")
    assert r.returncode == 0, r.stderr
    assert "mpy bundle:" in r.stdout and "built local-chat for esp32c3" in r.stdout
    r = clawgen("build", str(examples_copy / "local-chat.yaml"), "--board", "esp32c3", "--out", str(out),
                "--no-images")
    assert r.returncode == 0 and "up to date" in r.stdout


@pytest.mark.parametrize("command", ["build", "config", "validate"])
def test_unknown_board_option_is_invalid_input(examples_copy: Path, tmp_path: Path, command: str):
    """Any invalid --board value exits 2 with the list of boards, and nothing is written."""
    out = tmp_path / "out"
    extra = ("--out", str(out)) if command == "build" else ()
    r = clawgen(command, str(examples_copy / "local-chat.yaml"), "--board", "esp32s2", *extra)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("clawgen: error: unknown board 'esp32s2' (did you mean \"esp32s3\"?); "
                                "known boards: esp32, esp32c3, esp32c6, esp32s3")
    assert not out.exists()
    r = clawgen(command, str(examples_copy / "local-chat.yaml"), "--board", "", *extra)
    assert r.returncode == 2 and "--board is empty" in r.stderr and "esp32c3" in r.stderr


def test_validate_directory_skips_secrets_and_included_files(write_spec):
    spec = write_spec({
        "agent.yaml": "name: a\nmodel: !include 'model.yaml'\ntools: !include tools.yaml\n",
        "model.yaml": "base_url: https://api.openai.com/v1\nmodel: m\napi_key: !secret k\n",
        "tools.yaml": "[]\n",
        "secrets.yaml": "k: sk-x\n",
        "other.yaml": "name: b\n",  # a spec of its own (invalid): still validated
    })
    r = clawgen("validate", "--format", "json", str(spec.parent))
    assert r.returncode == 2
    assert {(Path(d["file"]).name, d["message"]) for d in json.loads(r.stdout)} == {
        ("other.yaml", "missing required key 'model'")}
    assert "in 2 spec(s)" in clawgen("validate", str(spec.parent)).stderr
