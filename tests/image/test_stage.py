import copy
import json
import os
import re
import subprocess
import sys

import pytest

from clawgen.boards import load_board
from clawgen.diagnostics import DiagnosticError, UsageError
from clawgen.image import fsimage, nvs
from clawgen.image import partitions as pt
from clawgen.image.stage import ImageInputs, build_images
from tests.image import synth

FILES = {
    "/boot.py": b"# boot\n",
    "/main.py": b"import claw_agent\n",
    "/clawgen.json": b'{"agent": "demo", "model": "gpt"}',
    "/lib/claw_agent.mpy": b"M\x06\x00\x1f" + bytes(range(256)) * 20,
}
# Generated per run: the test can then search every output byte for them.
SECRETS = {"llm_key": b"sk-" + os.urandom(16).hex().encode(), "wifi_pw": os.urandom(12).hex().encode()}


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def _inputs(tmp_path, board="esp32s3", flash=8 << 20, base=True, chip=None, **kw):
    b = copy.deepcopy(load_board(board).data)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    fw = None
    if base:
        fw = tmp_path / "base.bin"
        fw.write_bytes(synth.stock_firmware(chip or b["chip"], b["firmware"]["bootloader_offset"]))
    args = {"out_dir": out, "board": b, "flash_size": flash, "files": dict(FILES),
            "secrets": dict(SECRETS), "base_firmware": fw, "spec_name": "demo.yaml"}
    args.update(kw)
    return ImageInputs(**args)


def _image_info(path) -> str:
    r = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.parametrize(("board", "flash"), [("esp32s3", 8 << 20), ("esp32s3", 16 << 20), ("esp32", 4 << 20),
                                             ("esp32c3", 4 << 20), ("esp32c6", 4 << 20)])
def test_merged_image_is_complete_and_valid(tmp_path, board, flash):
    ctx = _inputs(tmp_path, board, flash)
    result = build_images(ctx)
    image = ctx.out_dir / "image"
    names = sorted(p.name for p in result.artifacts)
    assert names == ["firmware.bin", "flash_args.json", "fs.bin", "nvs.bin", "partitions.bin"]
    fw = (image / "firmware.bin").read_bytes()
    start = ctx.board["firmware"]["bootloader_offset"]

    def at(addr, n):
        return fw[addr - start:addr - start + n]

    # bootloader: valid, and its header now says the chosen flash size
    info = _image_info(image / "firmware.bin")
    assert f"Flash size: {pt.format_flash_size(flash)}" in info
    assert "Checksum:" in info and "(valid)" in info and "invalid" not in info
    # partition table at 0x8000: ours, with vfs to the end of flash
    parts = pt.from_binary(at(0x8000, pt.TABLE_MAX_LEN))
    assert parts == pt.layout_for(ctx.board, flash)
    # app at 0x10000: the base's, unchanged and valid
    app = synth.app_image(ctx.board["chip"])
    assert at(0x10000, len(app)) == app
    (tmp_path / "app.bin").write_bytes(at(0x10000, len(app)))
    app_info = _image_info(tmp_path / "app.bin")
    assert "invalid" not in app_info and f"Chip ID: {ctx.board['chip_id']}" in app_info
    # nvs at 0x9000 and the filesystem at 0x200000
    assert nvs.decode_nvs_image(at(0x9000, 0x6000)) == {("clawgen", k): v for k, v in SECRETS.items()}
    fs = (image / "fs.bin").read_bytes()
    assert at(0x200000, len(fs)) == fs and len(fw) == 0x200000 - start + len(fs)
    assert fsimage.read_fs_image(fs, flash - 0x200000) == FILES
    # the report: one line per region
    assert any(line.startswith("vfs ") for line in result.report_lines)
    assert {r.name for r in result.regions} == {"bootloader", "partition-table", "nvs", "phy_init", "factory", "vfs"}
    args = json.loads((image / "flash_args.json").read_text())
    assert args["merged"] == {"offset": start, "file": "firmware.bin"}
    assert args["chip"] == ctx.board["chip"] and args["flash_size"] == pt.format_flash_size(flash)
    assert {(e["offset"], e["file"]) for e in args["app_only"]} == {(0x200000, "fs.bin"), (0x9000, "nvs.bin")}


def test_secrets_appear_only_in_the_nvs_region(tmp_path):
    ctx = _inputs(tmp_path)
    result = build_images(ctx)
    for path in ctx.out_dir.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name == "firmware.bin":
            data = data[:0x9000] + data[0xF000:]  # all but the nvs partition
        elif path.name == "nvs.bin":
            continue
        for value in SECRETS.values():
            assert value not in data, f"secret found in {path}"
    text = "\n".join(result.report_lines) + repr(result)
    for value in SECRETS.values():
        assert value.decode() not in text


def test_no_base_firmware_gives_app_images_and_instructions(tmp_path):
    ctx = _inputs(tmp_path, base=False)
    result = build_images(ctx)
    assert not (ctx.out_dir / "image" / "firmware.bin").exists()
    args = json.loads((ctx.out_dir / "image" / "flash_args.json").read_text())
    assert args["merged"] is None
    assert any("https://micropython.org/download/ESP32_GENERIC_S3/" in line for line in result.report_lines)


def test_cached_base_firmware_is_used(tmp_path):
    from clawgen.image import basefw

    ctx = _inputs(tmp_path, base=False)
    cache = basefw.cache_path(ctx.board)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(synth.stock_firmware("esp32s3"))
    result = build_images(ctx)
    assert (ctx.out_dir / "image" / "firmware.bin").is_file()
    assert any("(cache)" in line for line in result.report_lines)


def test_wrong_base_firmware_fails_the_build(tmp_path):
    ctx = _inputs(tmp_path, chip="esp32c3")
    with pytest.raises(DiagnosticError, match="base firmware is for esp32c3"):
        build_images(ctx)


def _overflow_message(ctx) -> str:
    with pytest.raises(DiagnosticError) as err:
        build_images(ctx)
    (diag,) = err.value.diagnostics
    assert diag.file == "specs/demo.yaml" and diag.severity == "error"
    return diag.message


def _overflow_bytes(message: str, region: str, capacity: int) -> int:
    m = re.fullmatch(rf"{region} overflows its {capacity} bytes by (\d+) bytes", message)
    assert m, message
    return int(m.group(1))


def test_filesystem_overflow_message_names_exactly_what_is_missing(tmp_path):
    ctx = _inputs(tmp_path, base=False, spec_file="specs/demo.yaml")
    ctx.board["partitions"]["vfs"]["offset"] = (8 << 20) - 0x8000  # 8 blocks of filesystem
    ctx.files["/lib/big.mpy"] = os.urandom(40_000)
    missing = _overflow_bytes(_overflow_message(ctx), "vfs", 32768)
    assert missing % 4096 == 0 and missing >= 40_000 - 32768
    # exactly that much more room is enough
    ctx.board["partitions"]["vfs"]["offset"] -= missing
    build_images(ctx)
    fs = (ctx.out_dir / "image" / "fs.bin").read_bytes()
    assert fsimage.read_fs_image(fs, 32768 + missing) == ctx.files


def test_nvs_overflow_message_names_exactly_what_is_missing(tmp_path):
    secrets = {"blob": os.urandom(30_000)}
    ctx = _inputs(tmp_path, base=False, secrets=secrets, spec_file="specs/demo.yaml")
    missing = _overflow_bytes(_overflow_message(ctx), "nvs", 24576)
    assert missing % 4096 == 0
    nvs_part = ctx.board["partitions"]["nvs"]
    nvs_part["size"] += missing  # grow it into phy_init and beyond: only the NVS image matters here
    image = nvs.build_nvs_image(secrets, nvs_part["size"])
    assert nvs.decode_nvs_image(image) == {("clawgen", "blob"): secrets["blob"]}
    with pytest.raises(nvs.NvsOverflowError):
        nvs.build_nvs_image(secrets, nvs_part["size"] - 4096)


def test_factory_overflow_message_is_exact(tmp_path):
    ctx = _inputs(tmp_path, spec_file="specs/demo.yaml")
    ctx.board["partitions"]["factory"]["size"] = 0x10000  # smaller than the synthetic app
    app = len(synth.app_image("esp32s3"))
    assert _overflow_message(ctx) == f"factory overflows its 65536 bytes by {app - 65536} bytes"


def test_bootloader_overflow_message_is_exact(tmp_path):
    ctx = _inputs(tmp_path)
    big_bootloader = synth.bootloader_image("esp32s3", size=0x8800)  # runs into the partition table
    fw = big_bootloader + synth.stock_firmware("esp32s3")[len(big_bootloader):]
    ctx.base_firmware.write_bytes(fw)
    with pytest.raises(DiagnosticError) as err:
        build_images(ctx)
    (diag,) = err.value.diagnostics
    assert diag.file == str(ctx.base_firmware)
    assert diag.message == f"bootloader overflows its 32768 bytes by {len(big_bootloader) - 32768} bytes"


def test_partition_table_overflow_message_is_exact():
    parts = [pt.Partition(f"p{i}", pt.TYPE_DATA, 0x40, 0x10000 + i * 0x1000, 0x1000) for i in range(96)]
    with pytest.raises(UsageError) as err:
        pt.to_binary(parts)
    assert str(err.value) == f"partition-table overflows its 3072 bytes by {96 * 32 + 32 - 3072} bytes"


def test_nvs_image_is_reused_only_when_it_holds_the_same_secrets(tmp_path):
    """Secrets are found by where they go (nvs.bin); the files are proved clean by the render stage
    (tests/build/test_secrets_in_code.py). An unchanged nvs.bin is taken from the previous output."""
    for d in "abc":
        (tmp_path / d).mkdir()
    first = _inputs(tmp_path / "a", base=False)
    build_images(first)
    prev = tmp_path / "a" / "out"
    prev_nvs = (prev / "image" / "nvs.bin").read_bytes()
    (prev / "image" / "nvs.bin").write_bytes(prev_nvs[:-1] + b"\x00")  # marked: reused or not?
    build_images(_inputs(tmp_path / "b", base=False, previous=prev))
    assert (tmp_path / "b" / "out" / "image" / "nvs.bin").read_bytes() == prev_nvs[:-1] + b"\x00"
    changed = {**SECRETS, "llm_key": b"another-key-value"}
    build_images(_inputs(tmp_path / "c", base=False, secrets=changed, previous=prev))
    got = nvs.decode_nvs_image((tmp_path / "c" / "out" / "image" / "nvs.bin").read_bytes())
    assert got[("clawgen", "llm_key")] == b"another-key-value"


def test_no_secrets_keeps_nvs_out_of_app_only(tmp_path):
    ctx = _inputs(tmp_path, base=False, secrets={})
    build_images(ctx)
    args = json.loads((ctx.out_dir / "image" / "flash_args.json").read_text())
    assert [e["file"] for e in args["app_only"]] == ["fs.bin"]


def test_images_that_hold_secrets_are_the_owners_only(tmp_path):
    # nvs.bin and the merged firmware.bin (which carries it) hold the secrets: 0600, like the
    # secrets.yaml `clawgen init` writes; the other images are ordinary files.
    old = os.umask(0o022)
    try:
        ctx = _inputs(tmp_path)
        (ctx.out_dir / "image").mkdir(parents=True, exist_ok=True)
        (ctx.out_dir / "image" / "nvs.bin").write_bytes(b"x")  # there before, world-readable
        os.chmod(ctx.out_dir / "image" / "nvs.bin", 0o644)
        build_images(ctx)
    finally:
        os.umask(old)
    image = ctx.out_dir / "image"
    modes = {p.name: p.stat().st_mode & 0o777 for p in image.iterdir()}
    assert modes["nvs.bin"] == 0o600 and modes["firmware.bin"] == 0o600
    assert modes["fs.bin"] == modes["partitions.bin"] == 0o644
