"""The `clawgen flash` / `clawgen monitor` commands: exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from clawgen.image import flash_cli
from tests.fakes.esp_rom import EspRomEmulator
from tests.image.test_flash_e2e import VFS_OFFSET, make_build


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("clawgen")
    flash_cli.register(group)
    return group


def run(cli: click.Group, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_flash_app_only_through_the_command(cli: click.Group, tmp_path: Path) -> None:
    images = make_build(tmp_path)
    with EspRomEmulator() as rom:
        result = run(cli, "flash", str(tmp_path), "--port", rom.url, "--app-only", "--no-stub",
                     "--baud", "115200", "--connect-attempts", "1")
    assert result.exit_code == 0, result.output
    offset, data = images["vfs"]
    assert offset == VFS_OFFSET and bytes(rom.flash[offset:offset + len(data)]) == data
    assert rom.ran("SPI_FLASH_MD5")
    assert "verified" in result.output


def test_invalid_build_directory_exits_2_with_its_path(cli: click.Group, tmp_path: Path) -> None:
    result = run(cli, "flash", str(tmp_path / "missing"), "--port", "socket://127.0.0.1:9")
    assert result.exit_code == 2
    assert f"{tmp_path / 'missing'}:1:1: error:" in result.output


def test_wrong_chip_exits_1_with_one_line(cli: click.Group, tmp_path: Path) -> None:
    make_build(tmp_path)
    with EspRomEmulator(chip_id=13) as rom:  # poses as an ESP32-C6
        result = run(cli, "flash", str(tmp_path), "--port", rom.url, "--no-stub", "--connect-attempts", "1")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("clawgen: error:")]
    assert len(errors) == 1 and "ESP32-C6" in errors[0] and "ESP32-S3" in errors[0]


def test_no_port_found_exits_1(cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serial.tools import list_ports

    make_build(tmp_path)
    monkeypatch.setattr(list_ports, "comports", lambda: [])
    for args in (["flash", str(tmp_path)], ["monitor"]):
        result = run(cli, *args)
        assert result.exit_code == 1
        assert "no serial port found" in result.output
