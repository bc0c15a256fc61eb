"""From a spec to a board: `clawgen build --base-firmware` then `clawgen flash`, all through the CLI.

The board is the emulated ESP32-S3 ROM bootloader (tests/fakes/esp_rom.py) driven by the
real esptool. Afterwards the emulated flash is read back as the device would: the merged
image at its offset, NVS decoding to the secrets, and the "vfs" partition mounting the way
MicroPython mounts it (whole partition, 4096-byte blocks) with exactly the app's files.
Secret values are generated per run, so every output can be searched for them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.cli import cli
from clawgen.image import nvs
from clawgen.image import partitions as pt
from tests.fakes.esp_rom import MB, EspRomEmulator
from tests.image import synth
from tests.image.device_fs import files_of, mount_like_micropython

SPEC = """\
name: e2e-agent
board: esp32s3
system_prompt: Answer in one sentence.
model:
  base_url: https://llm.example.com/v1
  model: small-model
  api_key: !secret api_key
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
"""
VFS_OFFSET = 0x200000
NVS_OFFSET = 0x9000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One build for all tests here (compiling is the slow part)."""
    root = tmp_path_factory.mktemp("e2e")
    secrets = {"api_key": "sk-" + os.urandom(12).hex(), "wifi_ssid": "net-" + os.urandom(4).hex(),
               "wifi_password": "pw-" + os.urandom(8).hex()}
    (root / "agent.yaml").write_text(SPEC)
    (root / "secrets.yaml").write_text("".join(f"{k}: {v}\n" for k, v in secrets.items()))
    base = root / "ESP32_GENERIC_S3-20261101-v1.29.0.bin"
    base.write_bytes(synth.stock_firmware("esp32s3"))
    out = root / "out"
    env = {"CLAWGEN_CACHE": str(root / "cache")}
    result = CliRunner().invoke(cli, ["build", str(root / "agent.yaml"), "--out", str(out),
                                      "--base-firmware", str(base)], env=env)
    assert result.exit_code == 0, result.output
    return {"out": out, "secrets": secrets, "build_output": result.output, "env": env}


def _flash(built: dict, rom: EspRomEmulator, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["flash", str(built["out"]), "--port", rom.url,
                                      "--connect-attempts", "1", *extra], env=built["env"])
    assert result.exit_code == 0, result.output
    return result.output


def _device_files(out: Path) -> dict[str, bytes]:
    info = json.loads((out / "build.json").read_text())
    return {dev: (out / rel).read_bytes() for dev, rel in info["device_files"].items()}


def _assert_no_secret(built: dict, text: str | bytes, where: str) -> None:
    for name, value in built["secrets"].items():
        needle = value.encode() if isinstance(text, bytes) else value
        assert needle not in text, f"secret {name} found in {where}"


def test_secrets_are_only_in_the_nvs_images(built: dict) -> None:
    out = built["out"]
    _assert_no_secret(built, built["build_output"], "the build output")
    for path in out.rglob("*"):
        if not path.is_file() or path.name == "nvs.bin":
            continue
        data = path.read_bytes()
        if path.name == "firmware.bin":  # starts at 0x0 on the ESP32-S3
            _assert_holds_the_secrets(built, data[NVS_OFFSET:NVS_OFFSET + 0x6000])
            data = data[:NVS_OFFSET] + data[NVS_OFFSET + 0x6000:]
        _assert_no_secret(built, data, str(path.relative_to(out)))


def _assert_holds_the_secrets(built: dict, nvs_image: bytes) -> None:
    decoded = nvs.decode_nvs_image(nvs_image)
    assert {ns for ns, _key in decoded} == {"clawgen"}
    assert sorted(decoded.values()) == sorted(v.encode() for v in built["secrets"].values())


def test_merged_image_lands_on_the_board_verified_and_mountable(built: dict) -> None:
    out = built["out"]
    firmware = (out / "image" / "firmware.bin").read_bytes()
    with EspRomEmulator(flash_size=8 * MB) as rom:
        output = _flash(built, rom)  # clawgen's defaults: esptool's flasher stub, compressed writes

    assert bytes(rom.flash[:len(firmware)]) == firmware
    assert rom.md5_requests == [(0, len(firmware))]  # esptool's verify step, over exactly the image
    assert rom.stub_running and rom.ran("FLASH_DEFL_DATA")
    assert "verified" in output
    _assert_no_secret(built, output, "the flash output")
    # what the device finds: our partition table, the secrets, and the app's filesystem
    table = pt.from_binary(bytes(rom.flash[0x8000:0x8000 + pt.TABLE_MAX_LEN]))
    vfs = next(p for p in table if p.name == "vfs")
    assert (vfs.offset, vfs.end) == (VFS_OFFSET, 8 * MB)
    _assert_holds_the_secrets(built, bytes(rom.flash[NVS_OFFSET:NVS_OFFSET + 0x6000]))
    # the rest of the partition keeps what the emulated flash held before (not 0xFF)
    partition = bytearray(rom.flash[vfs.offset:vfs.end])
    assert partition[-1] == rom.fill
    fs = mount_like_micropython(partition, vfs.size)
    assert files_of(fs) == _device_files(out)


def test_app_only_onto_a_used_board(built: dict) -> None:
    out = built["out"]
    fs_bin = (out / "image" / "fs.bin").read_bytes()
    nvs_bin = (out / "image" / "nvs.bin").read_bytes()
    with EspRomEmulator(flash_size=8 * MB) as rom:  # flash full of old bytes (0xA5)
        _flash(built, rom, "--app-only", "--no-stub", "--baud", "115200")  # the ROM bootloader only

    assert bytes(rom.flash[VFS_OFFSET:VFS_OFFSET + len(fs_bin)]) == fs_bin
    assert bytes(rom.flash[NVS_OFFSET:NVS_OFFSET + len(nvs_bin)]) == nvs_bin
    assert sorted(rom.md5_requests) == [(NVS_OFFSET, len(nvs_bin)), (VFS_OFFSET, len(fs_bin))]
    assert set(rom.flash[:NVS_OFFSET]) == {rom.fill}  # bootloader and table left alone
    # stock MicroPython's own "vfs" partition: 0x200000 to the end of the physical flash
    partition = bytearray(rom.flash[VFS_OFFSET:])
    fs = mount_like_micropython(partition, len(partition))
    assert files_of(fs) == _device_files(out)
    with fs.open("notes.txt", "wb") as f:  # and it is writable over the old bytes
        f.write(b"n" * 300_000)
    fs.unmount()
    assert files_of(mount_like_micropython(partition, len(partition)))["/notes.txt"] == b"n" * 300_000


def test_app_only_onto_a_board_with_more_flash_is_refused(built: dict) -> None:
    with EspRomEmulator(flash_size=16 * MB) as rom:
        result = CliRunner().invoke(cli, ["flash", str(built["out"]), "--port", rom.url, "--no-stub",
                                          "--app-only", "--connect-attempts", "1"], env=built["env"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("clawgen: error:")]
    assert len(errors) == 1
    assert "16MB" in errors[0] and "8MB" in errors[0] and "without --app-only" in errors[0]
    assert not any(c.startswith("FLASH") for c in rom.commands)


def test_fetching_the_base_firmware_later_makes_the_next_build_merge(tmp_path: Path) -> None:
    """The cached base firmware is a build input: a build is not "up to date" once it appears."""
    (tmp_path / "agent.yaml").write_text(SPEC)
    (tmp_path / "secrets.yaml").write_text("api_key: sk-x\nwifi_ssid: n\nwifi_password: password\n")
    env = {"CLAWGEN_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "out"
    build = ["build", str(tmp_path / "agent.yaml"), "--out", str(out)]
    runner = CliRunner()
    assert runner.invoke(cli, build, env=env).exit_code == 0
    assert not (out / "image" / "firmware.bin").exists()
    assert "up to date" in runner.invoke(cli, build, env=env).output

    (tmp_path / "dl.bin").write_bytes(synth.stock_firmware("esp32s3"))
    fetched = runner.invoke(cli, ["firmware", "fetch", "--board", "esp32s3", "--file", str(tmp_path / "dl.bin")],
                            env=env)
    assert fetched.exit_code == 0, fetched.output
    again = runner.invoke(cli, build, env=env)
    assert again.exit_code == 0 and "up to date" not in again.output
    assert (out / "image" / "firmware.bin").is_file()
