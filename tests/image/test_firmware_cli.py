import pytest
from click.testing import CliRunner

from clawgen.cli import cli
from tests.image import synth


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def test_fetch_file_imports_into_cache(tmp_path):
    src = tmp_path / "dl.bin"
    src.write_bytes(synth.stock_firmware("esp32s3"))
    r = CliRunner().invoke(cli, ["firmware", "fetch", "--board", "esp32s3", "--file", str(src)])
    assert r.exit_code == 0, r.output
    cached = tmp_path / "cache" / "firmware" / "ESP32_GENERIC_S3-v1.29.0.bin"
    assert cached.read_bytes() == src.read_bytes()
    assert f"cached MicroPython v1.29.0 (built 2026-11-01) for esp32s3 at {cached}" in r.output


def test_fetch_wrong_file_exits_2_with_reason(tmp_path):
    src = tmp_path / "dl.bin"
    src.write_bytes(synth.stock_firmware("esp32s3", banner="MicroPython v1.28.0 on 2026-04-06"))
    r = CliRunner().invoke(cli, ["firmware", "fetch", "--board", "esp32s3", "--file", str(src)])
    assert r.exit_code == 2
    assert "base firmware is MicroPython v1.28.0" in r.output


def test_fetch_without_pin_explains_exit_1(tmp_path):
    r = CliRunner().invoke(cli, ["firmware", "fetch", "--board", "esp32c6"])
    assert r.exit_code == 1
    assert "https://micropython.org/download/ESP32_GENERIC_C6/" in r.output
    assert str(tmp_path / "cache" / "firmware" / "ESP32_GENERIC_C6-v1.29.0.bin") in r.output


def test_path_command(tmp_path):
    r = CliRunner().invoke(cli, ["firmware", "path", "--board", "esp32"])
    assert r.exit_code == 0
    assert r.output.splitlines()[0] == str(tmp_path / "cache" / "firmware" / "ESP32_GENERIC-v1.29.0.bin")


def test_unknown_board():
    r = CliRunner().invoke(cli, ["firmware", "fetch", "--board", "esp32s4"])
    assert r.exit_code == 1 and "unknown board" in r.output
