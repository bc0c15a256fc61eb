"""The image stage: what the build pipeline calls after compiling (clawgen/build.py).

Writes under <out_dir>/image/: fs.bin, nvs.bin, partitions.bin, flash_args.json and, when a
base firmware is available (--base-firmware, the cache, or a tailored full build),
firmware.bin. Secret values go into nvs.bin and nowhere else: not the report, not
flash_args.json, not an exception message. (That no secret is in the files themselves is
proved where they are made: the render stage, clawgen/render.py `check_no_secrets`.)

Parts whose inputs did not change are reused: nvs.bin from the previous output when it holds
exactly the same secrets (read back, never cached elsewhere), fs.bin from a cache keyed by
the hash of its files and geometry (it never holds a secret).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from clawgen.diagnostics import Diagnostic, DiagnosticError
from clawgen.image import basefw, nvs
from clawgen.image import partitions as pt
from clawgen.image.regions import FLASH_ARGS
from clawgen.records import record

if TYPE_CHECKING:
    from clawgen.fleet import Fleet
    from clawgen.image.fsimage import FsImage


@record(frozen=False)
class ImageInputs:
    out_dir: Path  # staging build dir (contains app/, mpy/, usermod/ maybe)
    board: dict  # parsed clawgen/boards/<name>.yaml
    flash_size: int  # bytes
    files: dict[str, bytes]  # device path -> content ("/boot.py", "/lib/claw_x.mpy", ...)
    secrets: dict[str, bytes] = field(default_factory=dict)  # NVS key -> value, namespace "clawgen"
    nvs_encryption_key: Path | None = None
    base_firmware: Path | None = None  # explicit --base-firmware, else the cache, else no merged image
    micropython_dir: Path | None = None  # --micropython: run the tailored full build
    spec_name: str = "agent"
    spec_file: str | None = None  # where diagnostics point (else spec_name)
    previous: Path | None = None  # the previous output directory: unchanged parts are reused
    fleet: Fleet | None = None  # --devices: one NVS image per device (clawgen/fleet.py); secrets then {}


@record
class Region:
    name: str
    offset: int
    size: int  # capacity
    used: int | None  # None: not written by this build

    @property
    def left(self) -> int | None:
        return None if self.used is None else self.size - self.used

    def as_dict(self) -> dict:
        return {"name": self.name, "offset": self.offset, "size": self.size, "used": self.used}


@record(frozen=False)
class ImageResult:
    artifacts: list[Path]
    regions: list[Region]
    report_lines: list[str]
    merged: Path | None = None  # the flashable firmware.bin, when a base firmware was merged


def _overflow(spec_name: str, region: str, capacity: int, needed: int) -> DiagnosticError:
    msg = f"{region} overflows its {capacity} bytes by {needed - capacity} bytes"
    return DiagnosticError(Diagnostic(spec_name, 1, 1, "", "error", msg))


def _where(ctx: ImageInputs) -> str:
    return ctx.spec_file or ctx.spec_name


def _cache_dir() -> Path:
    from clawgen.diskcache import cache_root

    return cache_root() / "fs"


def _fs_image(files: dict[str, bytes], size: int, block_size: int) -> FsImage:
    """The LittleFS image of ``files``: from the cache when the same files were imaged before."""
    from clawgen.image import fsimage

    h = hashlib.sha256(f"{fsimage.FORMAT_ID}\0{size}\0{block_size}\0".encode())
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    entry = _cache_dir() / f"{h.hexdigest()}.json"
    try:
        meta = json.loads(entry.read_text())
        data = entry.with_suffix(".bin").read_bytes()
        if hashlib.sha256(data).hexdigest() == meta["sha256"]:
            from clawgen.diskcache import touch

            for used in (entry, entry.with_suffix(".bin")):  # used now: the cache's trim keeps them longer
                touch(used)
            return fsimage.FsImage(data, size, int(meta["used"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    fs = fsimage.build_fs_image(files, size, block_size)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.tmp{os.getpid()}")
        tmp.write_bytes(fs.data)
        os.replace(tmp, entry.with_suffix(".bin"))
        entry.write_text(json.dumps({"sha256": hashlib.sha256(fs.data).hexdigest(), "used": fs.used}))
    except OSError:
        pass  # a read-only cache only costs time
    return fs


def _previous_nvs(previous: Path | None, secrets: dict[str, bytes], size: int) -> bytes | None:
    """The previous build's nvs.bin when it holds exactly these secrets (plain NVS only)."""
    if previous is None:
        return None
    try:
        data = (previous / "image" / "nvs.bin").read_bytes()
    except OSError:
        return None
    if len(data) != size:
        return None
    try:
        held = nvs.decode_nvs_image(data)
    except (ValueError, IndexError, KeyError, UnicodeDecodeError, OverflowError):
        return None
    want = {(nvs.NAMESPACE, k): bytes(v) for k, v in secrets.items()}
    return data if held == want else None


def _resolve_base(inputs: ImageInputs) -> tuple[basefw.BaseFirmware | None, str]:
    if inputs.base_firmware is not None:
        return basefw.load_base_firmware(inputs.base_firmware, inputs.board), str(inputs.base_firmware)
    cached = basefw.find_cached(inputs.board)
    if cached is not None:
        return basefw.load_base_firmware(cached, inputs.board), f"{cached} (cache)"
    return None, ""


def _full_build(inputs: ImageInputs, image_dir: Path) -> tuple[basefw.BaseFirmware, dict[str, bytes], list[str]]:
    from clawgen.image import fullbuild

    assert inputs.micropython_dir is not None
    board_id = inputs.board["firmware"]["board_id"]
    fullbuild.check_environment(inputs.micropython_dir, board_id)
    plan = fullbuild.plan_full_build(inputs.micropython_dir, inputs.board, inputs.out_dir, inputs.spec_name)
    firmware = fullbuild.run_full_build(plan, image_dir / "fullbuild.log")
    base = basefw.inspect_base_firmware(firmware.read_bytes(), inputs.board, str(firmware),
                                        accept_prerelease=True)
    frozen = set(plan.frozen_modules)
    # Frozen modules need no copy on the filesystem.
    files = {p: c for p, c in inputs.files.items()
             if not (p.rsplit("/", 1)[-1].rsplit(".", 1)[0] in frozen and p.endswith((".py", ".mpy"))
                     and p not in ("/boot.py", "/main.py"))}
    lines = [f"full build: {' '.join(plan.command)}",
             f"froze {len(frozen)} modules ({', '.join(sorted(frozen))}); log in image/fullbuild.log"]
    return base, files, lines


def input_files(board: dict, base_firmware: Path | None, nvs_key: Path | None) -> set[str]:
    """Files whose content changes the images, for the build's up-to-date stamp.

    The cached base firmware is listed even when absent: fetching it later must make the
    next build produce firmware.bin instead of reporting "up to date".
    """
    base = base_firmware if base_firmware is not None else basefw.cache_path(board)
    return {str(Path(p).resolve()) for p in (base, nvs_key) if p is not None}


def build_images(ctx: ImageInputs) -> ImageResult:
    board, flash_size = ctx.board, ctx.flash_size
    table_offset = int(board["partitions"]["table_offset"])
    layout = pt.layout_for(board, flash_size)
    pt.check_layout(layout, table_offset, flash_size)
    by_name = {p.name: p for p in layout}
    image_dir = ctx.out_dir / "image"
    image_dir.mkdir(parents=True, exist_ok=True)
    nvs.check_secret_keys(ctx.secrets)
    report: list[str] = []

    files = dict(ctx.files)
    base: basefw.BaseFirmware | None
    if ctx.micropython_dir is not None:
        base, files, lines = _full_build(ctx, image_dir)
        report += lines
        base_source = "tailored full build"
    else:
        base, base_source = _resolve_base(ctx)

    # Filesystem.
    vfs = by_name["vfs"]
    block_size = int(board.get("filesystem", {}).get("block_size", 4096))
    from clawgen.image.fsimage import FsOverflowError

    try:
        fs = _fs_image(files, vfs.size, block_size)
    except FsOverflowError as e:
        raise _overflow(_where(ctx), "vfs", e.capacity, e.needed) from None

    # Secrets.
    key = nvs.load_encryption_key(ctx.nvs_encryption_key) if ctx.nvs_encryption_key else None
    nvs_part = by_name["nvs"]
    try:
        nvs_bin = (None if key is not None else _previous_nvs(ctx.previous, ctx.secrets, nvs_part.size)) \
            or nvs.build_nvs_image(ctx.secrets, nvs_part.size, key)
    except nvs.NvsOverflowError as e:
        raise _overflow(_where(ctx), "nvs", e.capacity, e.needed) from None
    nvs_used = sum(1 for p in range(0, len(nvs_bin), nvs.PAGE_SIZE)
                   if nvs_bin[p:p + 4] in (b"\xfe\xff\xff\xff", b"\xfc\xff\xff\xff")) * nvs.PAGE_SIZE

    table = pt.to_binary(layout)
    artifacts = []
    # A fleet's shared image holds no secrets: each device's NVS is under devices/NAME/ instead.
    for name, data in (("fs.bin", fs.data), ("nvs.bin", None if ctx.fleet else nvs_bin), ("partitions.bin", table)):
        if data is None:
            continue
        if name == "nvs.bin":
            nvs.write_private(image_dir / name, data)  # the secrets: the owner's only
        else:
            (image_dir / name).write_bytes(data)
        artifacts.append(image_dir / name)

    bl_offset = int(board["firmware"]["bootloader_offset"])
    factory = by_name["factory"]
    regions = [
        Region("bootloader", bl_offset, table_offset - bl_offset, None),
        Region("partition-table", table_offset, pt.TABLE_REGION, pt.TABLE_MAX_LEN),
        Region("nvs", nvs_part.offset, nvs_part.size, nvs_used),
        Region("phy_init", by_name["phy_init"].offset, by_name["phy_init"].size, None),
        Region("factory", factory.offset, factory.size, None),
        Region("vfs", vfs.offset, vfs.size, fs.used),
    ]

    merged_name = None
    if base is not None:
        if base.app_size > factory.size:
            raise _overflow(_where(ctx), "factory", factory.size, base.app_size)
        from clawgen.image import merge

        placed = merge.merged_parts(base, layout, table, nvs_bin, fs.data, board, flash_size)
        regions[0] = Region("bootloader", bl_offset, table_offset - bl_offset, base.bootloader_size)
        regions[4] = Region("factory", factory.offset, factory.size, base.app_size)
        merged_name = "firmware.bin"
        # It holds the NVS image (a fleet's shared one holds no secrets, but is written the same way).
        nvs.write_private(image_dir / merged_name, merge.merge(placed, bl_offset))
        artifacts.append(image_dir / merged_name)
        report.append(f"base firmware: MicroPython {base.version} for {base.chip} from {base_source}")
    else:
        report.append(f"no base firmware: wrote fs.bin{'' if ctx.fleet else '/nvs.bin'} only (no firmware.bin); "
                      "to get one:\n  "
                      + basefw.obtain_instructions(board))
    if key is not None:
        report.append("nvs.bin is encrypted: the device needs firmware built with CONFIG_NVS_ENCRYPTION "
                      "and the key in an nvs_keys partition (stock MicroPython reads plain NVS only)")

    flash_args = {
        "merged": {"offset": bl_offset, "file": merged_name} if merged_name else None,
        # Without secrets nvs.bin is not flashed app-only: that would wipe the board's NVS for nothing.
        "app_only": [{"offset": vfs.offset, "file": "fs.bin", "name": "vfs"}]
        + ([{"offset": nvs_part.offset, "file": "nvs.bin", "name": "nvs"}] if ctx.secrets else []),
        "partition_table": {"offset": table_offset, "file": "partitions.bin"},
        "chip": board["chip"],
        "flash_size": pt.format_flash_size(flash_size),
    }
    if ctx.fleet is not None:
        from clawgen.fleet import write_device_images

        flash_args["fleet"], lines = write_device_images(ctx.fleet, ctx.out_dir, nvs_part.offset, nvs_part.size,
                                                         key, ctx.spec_name)
        report += lines
    args_file = ctx.out_dir / FLASH_ARGS
    args_file.write_text(json.dumps(flash_args, indent=2) + "\n")
    artifacts.append(args_file)

    report.append(f"{'region':<16} {'offset':>10} {'size':>9} {'used':>9} {'left':>9}")
    for r in regions:
        used = "-" if r.used is None else str(r.used)
        left = "-" if r.left is None else str(r.left)
        report.append(f"{r.name:<16} {r.offset:#010x} {r.size:>9} {used:>9} {left:>9}")
    return ImageResult(artifacts, regions, report, image_dir / merged_name if merged_name else None)
