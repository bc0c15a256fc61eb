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


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


S3 = synth.stock_firmware("esp32s3")
WRONG_FILES = {
    # name: (content or None for a directory, exit code, what the one-line error must say)
    "random": (bytes(range(256)) * 400, 2, "not an ESP firmware image (first byte 0x00, expected 0xe9)"),
    "empty": (b"", 2, "not an ESP firmware image (first byte empty"),
    "c3-image": (synth.stock_firmware("esp32c3"), 2, "base firmware is for esp32c3 (image chip id 5); "
                 "board esp32s3 needs esp32s3 (chip id 9)"),
    "older-version": (synth.stock_firmware("esp32s3", banner="MicroPython v1.28.0 on 2026-04-06"), 2,
                      "base firmware is MicroPython v1.28.0 (built 2026-04-06); clawgen targets MicroPython "
                      "v1.29.0"),
    "truncated-in-table": (S3[:0x8100], 2, "no application image at 0x10000"),
    "truncated-in-app": (S3[:0x10000 + 0x1800], 2, "the application image is truncated or damaged"),
    "modified-app": (_flip(S3, 0x10000 + 0x400), 2, "the application image checksum is wrong"),
    "modified-bootloader": (_flip(S3, 0x100), 2, "the bootloader image checksum is wrong"),
    "app-only": (synth.app_image("esp32s3"), 2, "this is an application image only"),
    "directory": (None, 1, "is a directory; give the downloaded MicroPython .bin file"),
}


@pytest.mark.parametrize("case", sorted(WRONG_FILES))
def test_fetch_wrong_file_is_one_clear_line(tmp_path, case):
    content, code, says = WRONG_FILES[case]
    src = tmp_path / f"{case}.bin"
    if content is None:
        src.mkdir()
    else:
        src.write_bytes(content)
    r = CliRunner().invoke(cli, ["firmware", "fetch", "--board", "esp32s3", "--file", str(src)])
    assert r.exit_code == code
    lines = r.output.splitlines()
    assert len(lines) == 1 and says in lines[0], r.output
    assert lines[0].startswith(f"{src}:1:1: error: " if code == 2 else "clawgen: error: ")
    if code == 2:  # says what is needed, too
        assert "ESP32_GENERIC_S3" in lines[0] or "v1.29.0" in lines[0]
    assert not (tmp_path / "cache" / "firmware").exists() or not any((tmp_path / "cache" / "firmware").iterdir())
