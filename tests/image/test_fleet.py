"""Fleets: `clawgen build SPEC --devices devices.yaml`, `clawgen flash BUILD_DIR --device NAME`.

One build for all the output tests: three devices, each with its own Wi-Fi values (inline, or a
`!secret` into the secrets.yaml beside the devices file), one with its own API key, the others
with the shared one. Secret values are random per run, so every output can be searched for them.
Each device's nvs.bin is read back with clawgen's decoder and compared byte for byte with what
Espressif's generator (esp-idf-nvs-partition-gen, its CLI on a CSV) writes for that device's
entries (that package has no reader for plain images; an encrypted device image is decrypted
with its `decrypt` command into exactly its generator's plain image); flashing runs the real
esptool against the emulated ESP32-S3 ROM (tests/fakes/esp_rom.py);
`/status` runs on the MicroPython unix-port VM with the device's NVS values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.cli import cli
from clawgen.fleet import HOST_KEY, NAME_KEY
from clawgen.image import nvs
from tests.fakes.esp_rom import MB, EspRomEmulator
from tests.image import synth

SPEC = """\
name: house-agent
board: esp32s3
system_prompt: Answer in one sentence.
model:
  base_url: http://127.0.0.1:9/v1
  model: small-model
  api_key: !secret api_key
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
"""
NVS_OFFSET, NVS_SIZE = 0x9000, 0x6000
SLOTS = {"api_key": "m0_key", "wifi_ssid": "wifi_ssid", "wifi_password": "wifi_pw"}  # secret -> NVS key


def _rand(prefix: str) -> str:
    return prefix + os.urandom(8).hex()


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("fleet")
    shared_key = _rand("sk-shared-")
    devices = {  # name -> (hostname, secret values)
        "kitchen": ("claw-kitchen", {"api_key": shared_key, "wifi_ssid": _rand("net-k-"),
                                     "wifi_password": _rand("pw-k-")}),
        "hall": ("hall", {"api_key": _rand("sk-hall-"), "wifi_ssid": _rand("net-h-"),
                          "wifi_password": _rand("pw-h-")}),
        "garage-2": ("garage-2", {"api_key": shared_key, "wifi_ssid": _rand("net-g-"),
                                  "wifi_password": _rand("pw-g-")}),
    }
    (root / "agent.yaml").write_text(SPEC)
    # The devices file's own secrets.yaml (referenced with !secret); the spec has none.
    (root / "fleet").mkdir()
    (root / "fleet" / "secrets.yaml").write_text(
        f"shared_key: {shared_key}\nkitchen_pw: {devices['kitchen'][1]['wifi_password']}\n")
    k, h, g = (devices[n][1] for n in ("kitchen", "hall", "garage-2"))
    (root / "fleet" / "devices.yaml").write_text(f"""\
secrets:
  api_key: !secret shared_key
devices:
  - name: kitchen
    hostname: claw-kitchen
    secrets:
      wifi_ssid: {k['wifi_ssid']}
      wifi_password: !secret kitchen_pw
  - name: hall
    secrets:
      api_key: {h['api_key']}
      wifi_ssid: {h['wifi_ssid']}
      wifi_password: {h['wifi_password']}
  - name: garage-2
    secrets: {{wifi_ssid: {g['wifi_ssid']}, wifi_password: "{g['wifi_password']}"}}
""")
    base = root / "ESP32_GENERIC_S3-20261101-v1.29.0.bin"
    base.write_bytes(synth.stock_firmware("esp32s3"))
    env = {"CLAWGEN_CACHE": str(root / "cache")}
    out = root / "out"
    code, output = _cli("build", str(root / "agent.yaml"), "--out", str(out), "--base-firmware", str(base),
                        "--devices", str(root / "fleet" / "devices.yaml"), env=env)
    assert code == 0, output
    return {"root": root, "out": out, "devices": devices, "env": env, "output": output, "base": base}


def _expected_nvs(fleet: dict, name: str) -> dict[str, bytes]:
    hostname, secrets = fleet["devices"][name]
    values = {SLOTS[s]: v.encode() for s, v in secrets.items()}
    return {**values, NAME_KEY: name.encode(), HOST_KEY: hostname.encode()}


def _espressif_image(values: dict[str, bytes], tmp: Path) -> bytes:
    """What `python -m esp_idf_nvs_partition_gen generate` writes for these entries."""
    csv = tmp / "in.csv"
    rows = ["key,type,encoding,value", "clawgen,namespace,,"]
    rows += [f"{k},data,hex2bin,{v.hex()}" for k, v in sorted(values.items())]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp / "espressif.bin"
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", str(csv), str(out),
                    hex(NVS_SIZE)], check=True, capture_output=True)
    return out.read_bytes()


def _espressif_decrypt(image: bytes, key: bytes, tmp: Path) -> bytes:
    """`python -m esp_idf_nvs_partition_gen decrypt` of an encrypted image with its key."""
    (tmp / "enc.bin").write_bytes(image)
    (tmp / "key.bin").write_bytes(key)
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "decrypt", str(tmp / "enc.bin"),
                    str(tmp / "key.bin"), str(tmp / "dec.bin"), "--outdir", str(tmp)], check=True,
                   capture_output=True)
    return (tmp / "dec.bin").read_bytes()


# -- the build -------------------------------------------------------------------------------------

def test_each_device_has_its_own_nvs_image(fleet: dict, tmp_path: Path) -> None:
    out = fleet["out"]
    assert sorted(p.name for p in (out / "devices").iterdir()) == sorted(fleet["devices"])
    for name in fleet["devices"]:
        data = (out / "devices" / name / "nvs.bin").read_bytes()
        want = _expected_nvs(fleet, name)
        assert nvs.decode_nvs_image(data) == {("clawgen", k): v for k, v in want.items()}
        assert data == _espressif_image(want, tmp_path), name
        info = json.loads((out / "devices" / name / "device.json").read_text())
        assert (info["name"], info["hostname"], info["nvs_keys"]) == (name, fleet["devices"][name][0],
                                                                      sorted(want))
    # one shared app image; no shared nvs.bin
    assert (out / "image" / "firmware.bin").is_file() and (out / "image" / "fs.bin").is_file()
    assert not (out / "image" / "nvs.bin").exists()
    args = json.loads((out / "image" / "flash_args.json").read_text())
    assert args["fleet"]["devices"] == {n: f"devices/{n}/nvs.bin" for n in fleet["devices"]}
    assert args["fleet"]["nvs"] == {"offset": NVS_OFFSET, "size": NVS_SIZE, "name": "nvs"}
    assert "fleet: 3 device(s)" in fleet["output"]
    # each device's secrets: its owner's only, after the whole build (staging, publishing)
    assert {(out / "devices" / n / "nvs.bin").stat().st_mode & 0o777 for n in fleet["devices"]} == {0o600}


def test_a_devices_secrets_are_only_in_its_own_nvs_image(fleet: dict) -> None:
    out = fleet["out"]
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert "image/firmware.bin" in files and "build.json" in files
    for name, (_host, secrets) in fleet["devices"].items():
        for secret, value in secrets.items():
            holders = {rel for rel, data in files.items() if value.encode() in data}
            users = {f"devices/{n}/nvs.bin" for n, (_h, s) in fleet["devices"].items() if s[secret] == value}
            assert holders == users, f"{name}'s {secret} is in {sorted(holders)}"
            assert value not in fleet["output"]
    # the shared image's NVS region holds the namespace and nothing else
    fw = files["image/firmware.bin"]
    assert nvs.decode_nvs_image(fw[NVS_OFFSET:NVS_OFFSET + NVS_SIZE]) == {}


def test_an_unchanged_fleet_is_up_to_date_and_a_changed_devices_file_rebuilds(fleet: dict, tmp_path: Path) -> None:
    root = tmp_path
    (root / "agent.yaml").write_text(SPEC)
    devices = root / "devices.yaml"
    line = "devices:\n  - name: one\n    secrets: {api_key: k1, wifi_ssid: n1, wifi_password: pw-000000001}\n"
    devices.write_text(line)
    args = ("build", str(root / "agent.yaml"), "--out", str(root / "out"), "--devices", str(devices))
    assert _cli(*args, env=fleet["env"])[0] == 0
    code, output = _cli(*args, env=fleet["env"])
    assert code == 0 and "up to date" in output
    devices.write_text(line.replace("one", "two"))
    code, output = _cli(*args, env=fleet["env"])
    assert code == 0 and "up to date" not in output
    assert sorted(p.name for p in (root / "out" / "devices").iterdir()) == ["two"]


def test_encrypted_fleet_each_device_decrypts_with_the_key(fleet: dict, tmp_path: Path) -> None:
    key = os.urandom(nvs.ENCRYPTION_KEY_LEN)
    (tmp_path / "nvs.key").write_bytes(key)
    (tmp_path / "agent.yaml").write_text(SPEC)
    secrets = {"api_key": _rand("sk-"), "wifi_ssid": _rand("n-"), "wifi_password": _rand("pw-")}
    (tmp_path / "devices.yaml").write_text(
        "devices:\n  - name: solo\n    secrets: {" + ", ".join(f"{k}: {v}" for k, v in secrets.items()) + "}\n")
    code, output = _cli("build", str(tmp_path / "agent.yaml"), "--out", str(tmp_path / "out"), "--devices",
                        str(tmp_path / "devices.yaml"), "--nvs-key", str(tmp_path / "nvs.key"), env=fleet["env"])
    assert code == 0, output
    data = (tmp_path / "out" / "devices" / "solo" / "nvs.bin").read_bytes()
    assert all(v.encode() not in data for v in secrets.values())
    want = {SLOTS[k]: v.encode() for k, v in secrets.items()} | {NAME_KEY: b"solo", HOST_KEY: b"solo"}
    assert nvs.decode_nvs_image(data, key) == {("clawgen", k): v for k, v in want.items()}
    # Espressif's own tool decrypts it with the key into exactly the plain image its generator writes.
    assert _espressif_decrypt(data, key, tmp_path) == _espressif_image(want, tmp_path)


# -- bad devices files -------------------------------------------------------------------------------

OK_SECRETS = "{api_key: k, wifi_ssid: n, wifi_password: pw-12345678}"
BAD = {
    "duplicate": (f"secrets: {OK_SECRETS}\ndevices:\n  - name: a1\n  - name: b\n  - name: a1\n",
                  "5:11", "device name 'a1' is used twice (first at line 3)"),
    "not-hostname-safe": (f"secrets: {OK_SECRETS}\ndevices:\n  - name: Kitchen_1\n",
                          "3:11", "device name 'Kitchen_1' is not hostname-safe"),
    "missing-secret": ("secrets: {api_key: k}\ndevices:\n  - name: a\n    secrets:\n      wifi_ssid: n\n",
                       "3:5", "device 'a' has no value for secret 'wifi_password' (used at network.password)"),
    "unknown-key": (f"secrets: {OK_SECRETS}\ndevices:\n  - name: a\n    hostnme: h\n",
                    "4:5", "unknown key 'hostnme' in a device; allowed: name, hostname, secrets "
                    '(did you mean "hostname"?)'),
    "bad-hostname": (f"secrets: {OK_SECRETS}\ndevices:\n  - name: a\n    hostname: claw.kitchen\n",
                     "4:15", "hostname 'claw.kitchen' of device 'a' is not valid"),
    "empty-list": (f"secrets: {OK_SECRETS}\ndevices: []\n", "2:10", "the devices list is empty"),
    "bad-shared-value": ("secrets: {api_key: k, wifi_ssid: n, wifi_password: short}\ndevices:\n  - name: a\n"
                         "  - name: b\n", "1:52", "the shared secrets: secret 'wifi_password', used as the Wi-Fi "
                         "password (network.password), is 5 bytes long"),
    "no-secrets-file": (f"secrets: {OK_SECRETS}\ndevices:\n  - name: a\n    secrets: {{api_key: !secret nope}}\n",
                        "4:24", "secrets.yaml does not exist; create it beside the devices file"),
    "unused-secret": (f"secrets: {OK_SECRETS}\ndevices:\n  - name: a\n    secrets: {{wifi_pasword: x}}\n",
                      "4:15", "secret 'wifi_pasword' of device 'a' is not used by the spec"),
    "bad-value": ("secrets: {api_key: k, wifi_ssid: n}\ndevices:\n  - name: a\n    secrets: {wifi_password: short}\n",
                  "4:30", "device 'a': secret 'wifi_password', used as the Wi-Fi password (network.password), "
                  "is 5 bytes long"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_devices_file_is_one_clear_error_and_nothing_is_written(case: str, tmp_path: Path) -> None:
    text, where, message = BAD[case]
    (tmp_path / "agent.yaml").write_text(SPEC)
    (tmp_path / "devices.yaml").write_text(text)
    out = tmp_path / "out"
    code, output = _cli("build", str(tmp_path / "agent.yaml"), "--out", str(out), "--devices",
                        str(tmp_path / "devices.yaml"), env={"CLAWGEN_CACHE": str(tmp_path / "cache")})
    assert code == 2, output
    errors = [ln for ln in output.splitlines() if ": error:" in ln]
    assert len(errors) == 1, output
    assert errors[0].startswith(f"{tmp_path / 'devices.yaml'}:{where}: error:"), errors[0]
    assert message in errors[0]
    assert "Traceback" not in output
    assert {p.name for p in tmp_path.iterdir()} <= {"agent.yaml", "devices.yaml", "cache"}  # no out/, no staging
    assert "short" not in output  # a value is never shown


def test_a_devices_files_errors_come_in_line_order(tmp_path: Path) -> None:
    # Found per device (a device's missing secret is only known after its own secrets: were read),
    # printed as the file reads: device a's missing secret (line 3) before its misspelled key (line
    # 5), then device b's bad value (line 7).
    (tmp_path / "agent.yaml").write_text(SPEC)
    (tmp_path / "devices.yaml").write_text(
        "secrets: {api_key: k, wifi_ssid: n}\ndevices:\n  - name: a\n    secrets:\n      wifi_pasword: x\n"
        "  - name: b\n    secrets: {wifi_password: short}\n")
    code, output = _cli("build", str(tmp_path / "agent.yaml"), "--out", str(tmp_path / "out"), "--devices",
                        str(tmp_path / "devices.yaml"), env={"CLAWGEN_CACHE": str(tmp_path / "cache")})
    assert code == 2, output
    where = [ln.split(": error:")[0].rsplit(":", 2)[1:] for ln in output.splitlines() if ": error:" in ln]
    assert where == [["3", "5"], ["5", "7"], ["7", "30"]], output


# -- flashing ----------------------------------------------------------------------------------------

def _flash(fleet: dict, rom: EspRomEmulator, *extra: str) -> tuple[int, str]:
    return _cli("flash", str(fleet["out"]), "--port", rom.url, "--connect-attempts", "1", *extra, env=fleet["env"])


def test_flash_a_device_writes_the_shared_image_then_its_nvs(fleet: dict) -> None:
    out = fleet["out"]
    firmware = (out / "image" / "firmware.bin").read_bytes()
    own = (out / "devices" / "hall" / "nvs.bin").read_bytes()
    with EspRomEmulator(flash_size=8 * MB) as rom:
        code, output = _flash(fleet, rom, "--device", "hall")
    assert code == 0, output
    assert "for device hall" in output
    assert rom.md5_requests == [(0, len(firmware)), (NVS_OFFSET, NVS_SIZE)]  # each verified, NVS last
    flash = bytes(rom.flash)
    assert flash[:NVS_OFFSET] == firmware[:NVS_OFFSET]
    assert flash[NVS_OFFSET:NVS_OFFSET + NVS_SIZE] == own
    assert flash[NVS_OFFSET + NVS_SIZE:len(firmware)] == firmware[NVS_OFFSET + NVS_SIZE:]
    decoded = nvs.decode_nvs_image(flash[NVS_OFFSET:NVS_OFFSET + NVS_SIZE])
    assert decoded == {("clawgen", k): v for k, v in _expected_nvs(fleet, "hall").items()}
    for value in fleet["devices"]["hall"][1].values():
        assert value not in output


def test_flash_a_device_app_only(fleet: dict) -> None:
    out = fleet["out"]
    fs_bin = (out / "image" / "fs.bin").read_bytes()
    own = (out / "devices" / "garage-2" / "nvs.bin").read_bytes()
    with EspRomEmulator(flash_size=8 * MB) as rom:
        code, output = _flash(fleet, rom, "--device", "garage-2", "--app-only", "--no-stub", "--baud", "115200")
    assert code == 0, output
    assert sorted(rom.md5_requests) == [(NVS_OFFSET, NVS_SIZE), (0x200000, len(fs_bin))]
    assert bytes(rom.flash[NVS_OFFSET:NVS_OFFSET + NVS_SIZE]) == own
    assert bytes(rom.flash[0x200000:0x200000 + len(fs_bin)]) == fs_bin
    assert set(rom.flash[:NVS_OFFSET]) == {rom.fill}  # bootloader and table left alone


def test_flash_a_fleet_needs_a_known_device(fleet: dict, tmp_path: Path) -> None:
    port = "socket://127.0.0.1:9"  # never reached: the build is refused first
    code, output = _cli("flash", str(fleet["out"]), "--port", port, env=fleet["env"])
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        f"clawgen: error: {fleet['out']} is a fleet build of 3 device(s): choose one with --device NAME "
        "(garage-2, hall, kitchen)")
    code, output = _cli("flash", str(fleet["out"]), "--port", port, "--device", "kitchn", env=fleet["env"])
    assert code == 1
    assert output.strip().splitlines()[-1] == ("clawgen: error: no device 'kitchn' in this fleet build "
                                               '(did you mean "kitchen"?); its devices: garage-2, hall, kitchen')
    # --device on a build without devices
    (tmp_path / "agent.yaml").write_text(SPEC)
    (tmp_path / "secrets.yaml").write_text("api_key: k\nwifi_ssid: n\nwifi_password: pw-12345678\n")
    assert _cli("build", str(tmp_path / "agent.yaml"), "--out", str(tmp_path / "out"), "--base-firmware",
                str(fleet["base"]), env=fleet["env"])[0] == 0
    code, output = _cli("flash", str(tmp_path / "out"), "--port", port, "--device", "kitchen", env=fleet["env"])
    assert code == 1
    assert "this build has no devices (it was built without --devices)" in output


# -- on the device -----------------------------------------------------------------------------------

def test_each_device_reports_its_own_name_in_status(fleet: dict, unix_run) -> None:
    out = fleet["out"]
    for name in ("kitchen", "hall"):
        values = nvs.decode_nvs_image((out / "devices" / name / "nvs.bin").read_bytes())
        res = unix_run(out, stdin=["/status", "/quit"], secrets={k: v for (_ns, k), v in values.items()})
        assert res.returncode == 0, res.stderr
        assert "agent house-agent on esp32s3" in res.stdout
        assert f"device {name}, hostname {fleet['devices'][name][0]}" in res.stdout
        for value in fleet["devices"][name][1].values():
            assert value not in res.stdout + res.stderr


def test_without_a_name_in_nvs_the_device_reports_the_spec_name(fleet: dict, unix_run) -> None:
    values = _expected_nvs(fleet, "hall")
    del values[NAME_KEY], values[HOST_KEY]
    res = unix_run(fleet["out"], stdin=["/status", "/quit"], secrets=values)
    assert res.returncode == 0, res.stderr
    assert "device house-agent, hostname house-agent" in res.stdout
