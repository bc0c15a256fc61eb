import copy
import hashlib
import urllib.error

import pytest

from clawgen.boards import load_board
from clawgen.diagnostics import DiagnosticError, UsageError
from clawgen.image import basefw
from tests.image import synth


@pytest.fixture
def s3():
    return copy.deepcopy(load_board("esp32s3").data)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def test_stock_like_image_is_accepted(s3):
    info = basefw.inspect_base_firmware(synth.stock_firmware("esp32s3"), s3)
    assert (info.chip, info.version, info.build_date) == ("esp32s3", "v1.29.0", "2026-11-01")
    assert info.app_offset == 0x10000
    assert [p.name for p in info.partitions] == ["nvs", "phy_init", "factory"]
    assert info.app_size == len(synth.app_image("esp32s3"))


@pytest.mark.parametrize(("chip", "name"), [("esp32", "esp32"), ("esp32c3", "esp32c3"), ("esp32c6", "esp32c6")])
def test_other_boards(chip, name):
    board = load_board(name).data
    offset = board["firmware"]["bootloader_offset"]
    info = basefw.inspect_base_firmware(synth.stock_firmware(chip, offset), board)
    assert info.chip == chip and info.bootloader_offset == offset


def test_wrong_chip_is_refused_with_what_was_found_and_needed(s3):
    with pytest.raises(DiagnosticError) as err:
        basefw.inspect_base_firmware(synth.stock_firmware("esp32c3"), s3, "fw.bin")
    msg = err.value.diagnostics[0].text()
    assert msg.startswith("fw.bin:1:1: error:")
    assert "esp32c3 (image chip id 5)" in msg and "needs esp32s3 (chip id 9)" in msg
    assert "ESP32_GENERIC_S3" in msg


def test_wrong_app_chip_is_refused(s3):
    with pytest.raises(DiagnosticError, match="application in the base firmware is for esp32c3"):
        basefw.inspect_base_firmware(synth.stock_firmware("esp32s3", app_chip="esp32c3"), s3)


@pytest.mark.parametrize("banner", ["MicroPython v1.28.0 on 2026-04-06", "MicroPython v1.29.1 on 2027-01-01",
                                    "MicroPython v1.29.0-preview.20.g1c3c201149 on 2026-08-19"])
def test_wrong_version_is_refused(s3, banner):
    fw = synth.stock_firmware("esp32s3", banner=banner)
    with pytest.raises(DiagnosticError) as err:
        basefw.inspect_base_firmware(fw, s3)
    msg = str(err.value)
    found = banner.split()[1]
    assert f"base firmware is MicroPython {found}" in msg
    assert "clawgen targets MicroPython v1.29.0" in msg


def test_prerelease_of_pinned_version_accepted_for_own_builds(s3):
    fw = synth.stock_firmware("esp32s3", banner="MicroPython v1.29.0-preview.20.g1c3c201149 on 2026-08-19")
    info = basefw.inspect_base_firmware(fw, s3, accept_prerelease=True)
    assert info.version.startswith("v1.29.0-preview")


def test_not_micropython_is_refused(s3):
    with pytest.raises(DiagnosticError, match="does not say it is MicroPython"):
        basefw.inspect_base_firmware(synth.stock_firmware("esp32s3", banner=None), s3)
    with pytest.raises(DiagnosticError, match="not MicroPython"):
        basefw.inspect_base_firmware(synth.stock_firmware("esp32s3", project="blink", desc_version="1.0"), s3)


def test_app_descriptor_version_is_used_when_set(s3):
    fw = synth.stock_firmware("esp32s3", banner=None, desc_version="v1.29.0", project="micropython")
    assert basefw.inspect_base_firmware(fw, s3).version == "v1.29.0"


def test_damaged_images_are_refused(s3):
    fw = bytearray(synth.stock_firmware("esp32s3"))
    fw[0x10000 + 0x200] ^= 0xFF  # inside the app's first segment
    with pytest.raises(DiagnosticError, match=r"checksum|SHA-256"):
        basefw.inspect_base_firmware(bytes(fw), s3)
    with pytest.raises(DiagnosticError, match="not an ESP firmware image"):
        basefw.inspect_base_firmware(b"PK\x03\x04 a zip file", s3)
    with pytest.raises(DiagnosticError, match="no application image"):
        basefw.inspect_base_firmware(synth.stock_firmware("esp32s3")[:0x10000], s3)


def test_esp32_image_saved_from_0x0_is_accepted():
    board = load_board("esp32").data
    fw = b"\xff" * 0x1000 + synth.stock_firmware("esp32", 0x1000)
    assert basefw.inspect_base_firmware(fw, board).data[0] == 0xE9


def test_cache_path_follows_env(s3, tmp_path):
    assert basefw.cache_path(s3) == tmp_path / "cache" / "firmware" / "ESP32_GENERIC_S3-v1.29.0.bin"


def test_import_file_into_cache(s3, tmp_path):
    src = tmp_path / "ESP32_GENERIC_S3-20261101-v1.29.0.bin"
    src.write_bytes(synth.stock_firmware("esp32s3"))
    path, _info, digest = basefw.fetch_firmware(s3, src)
    assert path == basefw.cache_path(s3) and path.read_bytes() == src.read_bytes()
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    assert basefw.find_cached(s3) == path


def test_import_refuses_wrong_file_and_leaves_cache_empty(s3, tmp_path):
    src = tmp_path / "c3.bin"
    src.write_bytes(synth.stock_firmware("esp32c3"))
    with pytest.raises(DiagnosticError):
        basefw.fetch_firmware(s3, src)
    assert basefw.find_cached(s3) is None


def test_pinned_sha256_is_checked(s3, tmp_path):
    src = tmp_path / "fw.bin"
    src.write_bytes(synth.stock_firmware("esp32s3"))
    s3["firmware"]["sha256"] = "0" * 64
    with pytest.raises(DiagnosticError, match="sha256 is"):
        basefw.fetch_firmware(s3, src)


def test_unpinned_fetch_says_which_file_and_where(s3):
    with pytest.raises(UsageError) as err:
        basefw.fetch_firmware(s3)
    msg = str(err.value)
    assert "https://micropython.org/download/ESP32_GENERIC_S3/" in msg
    assert "--file" in msg and str(basefw.cache_path(s3)) in msg


def test_offline_fetch_says_which_file_and_where(s3, monkeypatch):
    s3["firmware"]["release_date"] = "20261101"

    def offline(url, timeout=30.0):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(basefw, "download", offline)
    with pytest.raises(UsageError) as err:
        basefw.fetch_firmware(s3)
    msg = str(err.value)
    url = "https://micropython.org/resources/firmware/ESP32_GENERIC_S3-20261101-v1.29.0.bin"
    assert f"cannot download {url}" in msg and f"download {url}" in msg
    assert str(basefw.cache_path(s3)) in msg


def test_download_is_checked_and_cached(s3, monkeypatch):
    s3["firmware"]["release_date"] = "20261101"
    fw = synth.stock_firmware("esp32s3")
    s3["firmware"]["sha256"] = hashlib.sha256(fw).hexdigest()
    seen = []
    monkeypatch.setattr(basefw, "download", lambda url, timeout=30.0: seen.append(url) or fw)
    path, _info, _digest = basefw.fetch_firmware(s3)
    assert seen == ["https://micropython.org/resources/firmware/ESP32_GENERIC_S3-20261101-v1.29.0.bin"]
    assert path.read_bytes() == fw
