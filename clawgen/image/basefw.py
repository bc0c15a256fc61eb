"""Base firmware: check a stock MicroPython release image, keep it in the cache, fetch it.

A stock MicroPython .bin for an ESP32-family board (ports/esp32/makeimg.py) is already a
merged image that starts at the bootloader offset (0x1000 on ESP32, 0x0 on the others):
bootloader, partition table at 0x8000, application at the first app partition (0x10000).

What identifies it:
- chip: the image header's chip id (byte 12-13 of the bootloader and app headers);
- MicroPython version: stock builds set CONFIG_APP_EXCLUDE_PROJECT_VER_VAR and
  CONFIG_APP_EXCLUDE_PROJECT_NAME_VAR (ports/esp32/boards/sdkconfig.base), so the
  esp_app_desc_t version and project name are empty. The version lives in the banner
  string every build carries, "MicroPython v1.29.0 on 2026-MM-DD" (py/mpconfig.h
  MICROPY_BANNER_NAME_AND_VERSION, also sys.version). The app descriptor is still checked
  (magic 0xABCD5432; project name, when set, must be "micropython"; version, when set, wins).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

from clawgen import MICROPYTHON_VERSION
from clawgen.diagnostics import Diagnostic, DiagnosticError, UsageError, peer_text
from clawgen.files import read_input_file
from clawgen.image import partitions as pt
from clawgen.records import record

IMAGE_MAGIC = 0xE9
APP_DESC_MAGIC = 0xABCD5432
CHIP_NAMES = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 12: "esp32c2", 13: "esp32c6",
              16: "esp32h2", 18: "esp32p4", 23: "esp32c5"}
_BANNER = re.compile(rb"MicroPython (v\d+\.\d+\.\d+[0-9A-Za-z.+\-]*) on (\d{4}-\d{2}-\d{2})")
DOWNLOAD_PAGE = "https://micropython.org/download/{board_id}/"
RELEASE_URL = "https://micropython.org/resources/firmware/{board_id}-{date}-v{version}.bin"


@record
class BaseFirmware:
    data: bytes  # the file, starting at the bootloader
    bootloader_offset: int  # flash address of data[0]
    chip: str
    version: str  # e.g. "v1.29.0"
    build_date: str
    idf_version: str
    partitions: list[pt.Partition]  # the base's own table
    app_offset: int  # flash address of the application image
    app_size: int  # bytes of the application image (header to digest)
    bootloader_size: int = 0  # bytes of the bootloader image (header to digest)


def _fail(source: str, message: str) -> DiagnosticError:
    return DiagnosticError(Diagnostic(source, 1, 1, "", "error", message))


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _chip_of(header: bytes) -> tuple[int, str]:
    (chip_id,) = struct.unpack_from("<H", header, 12)
    return chip_id, CHIP_NAMES.get(chip_id, f"unknown chip id {chip_id}")


def _load_image(data: bytes, chip: str, what: str, source: str, needed: str):
    """Parse an ESP image (bootloader or app) with esptool; refuse it unless checksum and digest hold."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        image = LoadFirmwareImage(chip, data)
    except (FatalError, struct.error, KeyError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _fail(source, f"the {what} image is truncated or damaged ({reason}); need {needed}") from None
    if image.checksum != image.calculate_checksum():
        raise _fail(source, f"the {what} image checksum is wrong (file truncated or modified?); need {needed}")
    if image.append_digest and image.stored_digest != image.calc_digest:
        raise _fail(source, f"the {what} image SHA-256 does not match (file truncated or modified?); "
                            f"need {needed}")
    size = image.data_length + (32 if image.append_digest else 0) if image.data_length else len(data)
    return image, size


def _bootloader_size(data: bytes, slot: int, chip: str, source: str, needed: str) -> int:
    """Bytes of the bootloader image, which must fit in the `slot` bytes before the partition table."""
    try:
        return _load_image(data[:slot], chip, "bootloader", source, needed)[1]
    except DiagnosticError:
        try:  # does it parse when allowed to run into the partition table? then it is too big
            size = _load_image(data, chip, "bootloader", source, needed)[1]
        except DiagnosticError:
            size = 0
        if size > slot:
            raise _fail(source, f"bootloader overflows its {slot} bytes by {size - slot} bytes") from None
        raise


def _is_app_image(data: bytes, chip: str) -> bool:
    """An application image's first segment is flash-mapped (DROM/IROM); a bootloader's is in RAM."""
    from esptool.targets import CHIP_DEFS

    if len(data) < 32:
        return False
    (addr,) = struct.unpack_from("<I", data, 24)
    rom = CHIP_DEFS[chip]
    return rom.DROM_MAP_START <= addr < rom.DROM_MAP_END or rom.IROM_MAP_START <= addr < rom.IROM_MAP_END


def inspect_base_firmware(data: bytes, board: dict, source: str = "<base firmware>", *,
                          accept_prerelease: bool = False) -> BaseFirmware:
    """Parse and check a base firmware for `board`; refuses a wrong chip or MicroPython version.

    accept_prerelease: also accept development builds of the pinned version
    ("v1.29.0-preview.12.gabcdef"), for firmware clawgen built itself from a source tree.
    """
    want_chip, want_id = board["chip"], int(board["chip_id"])
    want_version = "v" + str(board.get("micropython", MICROPYTHON_VERSION))
    bl_offset = int(board["firmware"]["bootloader_offset"])
    table_offset = int(board["partitions"]["table_offset"])
    needed = f"a stock MicroPython {want_version} .bin for {want_chip} ({board['firmware']['board_id']})"

    # An image saved from a full flash read (starting at 0x0) has 0xFF before the bootloader.
    if bl_offset and len(data) > bl_offset and data[0] == 0xFF and data[bl_offset] == IMAGE_MAGIC:
        data = data[bl_offset:]
    if len(data) < 24 or data[0] != IMAGE_MAGIC:
        first = f"{data[0]:#04x}" if data else "empty"
        raise _fail(source, f"not an ESP firmware image (first byte {first}, expected 0xe9); need {needed}")
    chip_id, chip = _chip_of(data)
    if chip_id != want_id:
        raise _fail(source, f"base firmware is for {chip} (image chip id {chip_id}); board "
                            f"{board['name']} needs {want_chip} (chip id {want_id}): use {needed}")

    if _is_app_image(data, want_chip):
        raise _fail(source, "this is an application image only (like MicroPython's build-*/micropython.bin), "
                            f"not a full release .bin starting with the bootloader; need {needed}")
    table_at = table_offset - bl_offset
    # A bootloader that fails its checksum would not boot; one longer than its slot would be
    # cut by the partition table.
    bl_size = _bootloader_size(data, table_at, want_chip, source, needed)
    try:
        base_parts = pt.from_binary(data[table_at:table_at + pt.TABLE_MAX_LEN])
    except pt.PartitionTableError as e:
        raise _fail(source, f"no valid partition table at {table_offset:#x}: {e}; need {needed}") from None
    apps = [p for p in base_parts if p.type == pt.TYPE_APP]
    if not apps:
        raise _fail(source, f"the partition table at {table_offset:#x} has no application partition; "
                            f"need {needed}")
    app_offset = apps[0].offset
    app = data[app_offset - bl_offset:]
    if len(app) < 24 or app[0] != IMAGE_MAGIC:
        raise _fail(source, f"no application image at {app_offset:#x} (file ends or holds no image there); "
                            f"need {needed}")
    app_chip_id, app_chip = _chip_of(app)
    if app_chip_id != want_id:
        raise _fail(source, f"the application in the base firmware is for {app_chip} (chip id "
                            f"{app_chip_id}); board {board['name']} needs {want_chip}")
    image, app_size = _load_image(app, want_chip, "application", source, needed)

    # ESP-IDF puts esp_app_desc_t at the start of the first (rodata) segment; scan them all so
    # an unusual segment order (flash-mapped segments sorted by address) does not matter.
    desc = next((seg.data for seg in image.segments
                 if len(seg.data) >= 144 and struct.unpack_from("<I", seg.data, 0)[0] == APP_DESC_MAGIC), b"")
    if not desc:
        raise _fail(source, "the application has no ESP-IDF app description (magic 0xABCD5432); "
                            f"need {needed}")
    desc_version, project, idf_ver = _cstr(desc[16:48]), _cstr(desc[48:80]), _cstr(desc[112:144])
    if project and project.lower() != "micropython":
        raise _fail(source, f"the application is {project!r} {desc_version}, not MicroPython; need {needed}")

    found = _BANNER.search(app[:app_size])
    version = found.group(1).decode() if found else ""
    date = found.group(2).decode() if found else ""
    if desc_version.startswith("v1.") or desc_version.startswith("1."):
        version = version or ("v" + desc_version.lstrip("v"))
    if not version:
        raise _fail(source, "the application does not say it is MicroPython (no \"MicroPython vX.Y.Z on "
                            f"DATE\" banner, empty app version); need {needed}")
    dev_build = accept_prerelease and version.startswith(want_version + "-")
    if version != want_version and not dev_build:
        raise _fail(source, f"base firmware is MicroPython {version}" + (f" (built {date})" if date else "")
                    + f"; clawgen targets MicroPython {want_version}: use {needed}")
    return BaseFirmware(data, bl_offset, want_chip, version, date, idf_ver, base_parts, app_offset, app_size,
                        bl_size)


# -- cache -------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """The user cache's firmware/ (clawgen.diskcache.cache_root)."""
    from clawgen.diskcache import cache_root

    return cache_root() / "firmware"


def cache_path(board: dict) -> Path:
    version = board.get("micropython", MICROPYTHON_VERSION)
    return cache_dir() / f"{board['firmware']['board_id']}-v{version}.bin"


URL_ENV = "CLAWGEN_FIRMWARE_URL"  # where `firmware fetch` downloads from instead of the pinned URL
MAX_DOWNLOAD = 16 * 1024 * 1024  # a release .bin is about 1.6 MB; anything past 16 MB is not one


def url_override(board: dict, url: str | None = None) -> str | None:
    """The download URL given with --url or $CLAWGEN_FIRMWARE_URL (a mirror, a local server), with
    ``{board_id}`` and ``{version}`` filled in; None when neither is set."""
    url = url or os.environ.get(URL_ENV) or None
    if url is None:
        return None
    return url.replace("{board_id}", str(board["firmware"]["board_id"])).replace(
        "{version}", str(board.get("micropython", MICROPYTHON_VERSION)))


def release_url(board: dict) -> str | None:
    """The pinned release URL, when the board data pins a release date (else unknown)."""
    fw = board["firmware"]
    if fw.get("url"):
        return str(fw["url"])
    if fw.get("release_date"):
        return RELEASE_URL.format(board_id=fw["board_id"], date=fw["release_date"],
                                  version=board.get("micropython", MICROPYTHON_VERSION))
    return None


def obtain_instructions(board: dict) -> str:
    """Exactly which file to get and where to put it."""
    fw = board["firmware"]
    version = board.get("micropython", MICROPYTHON_VERSION)
    url = release_url(board)
    what = url or (f"the v{version} release .bin from {DOWNLOAD_PAGE.format(board_id=fw['board_id'])} "
                   f"(named {fw['board_id']}-<date>-v{version}.bin)")
    lines = [f"download {what}",
             f"then run: clawgen firmware fetch --board {board['name']} --file <the downloaded .bin>",
             f"(or copy it to {cache_path(board)})"]
    if fw.get("sha256"):
        lines.append(f"its sha256 must be {fw['sha256']}")
    return "\n  ".join(lines)


def find_cached(board: dict) -> Path | None:
    path = cache_path(board)
    return path if path.is_file() else None


def load_base_firmware(path: Path, board: dict) -> BaseFirmware:
    if path.is_dir():
        raise UsageError(f"base firmware {path} is a directory; give the MicroPython .bin file")
    data = read_input_file(path, "base firmware", MAX_DOWNLOAD, UsageError)
    return inspect_base_firmware(data, board, str(path))


def _check_pinned_sha(data: bytes, board: dict, source: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    pinned = board["firmware"].get("sha256")
    if pinned and digest != str(pinned).lower():
        raise _fail(source, f"sha256 is {digest}, the pinned MicroPython release for {board['name']} "
                            f"has {pinned}: wrong or corrupted download")
    return digest


def import_firmware(data: bytes, board: dict, source: str) -> tuple[Path, BaseFirmware, str]:
    """Check a downloaded/imported image and store it in the cache (atomically)."""
    digest = _check_pinned_sha(data, board, source)
    info = inspect_base_firmware(data, board, source)
    dest = cache_path(board)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest, info, digest


def download(url: str, timeout: float = 30.0, limit: int = MAX_DOWNLOAD) -> bytes:
    """The body at ``url``; OSError (urllib's URLError/HTTPError are OSErrors) when it cannot be had,
    ValueError when it is larger than ``limit`` bytes (not a firmware image)."""
    import http.client
    import urllib.request  # only `firmware fetch` downloads: a build never pays for urllib/http.client

    req = urllib.request.Request(url, headers={"User-Agent": "clawgen"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        try:
            data = resp.read(limit + 1)
        except http.client.HTTPException as e:  # IncompleteRead: the server closed mid-file
            raise OSError(f"the download stopped early ({type(e).__name__})") from None
    if len(data) > limit:
        raise ValueError(f"the download is larger than {limit // (1024 * 1024)} MB, so not a firmware image")
    if length and length.isdigit() and int(length) != len(data):
        raise OSError(f"the download stopped after {len(data)} of {length} bytes")
    return data


def _download_failure(e: BaseException) -> str:
    code = getattr(e, "code", None)  # urllib.error.HTTPError
    if isinstance(code, int):
        return f"HTTP {code} {peer_text(str(getattr(e, 'reason', '')), 80)}".rstrip()  # (the server's words)
    reason = getattr(e, "reason", None) or e
    return str(reason)


def fetch_firmware(board: dict, file: Path | None = None, url: str | None = None,
                   progress: Callable[[str], object] = lambda s: None) -> tuple[Path, BaseFirmware, str]:
    """`clawgen firmware fetch`: import `file`, or download the release, into the cache.

    The download comes from ``url`` (--url), else $CLAWGEN_FIRMWARE_URL, else the pinned release URL
    (when the board data pins one). It is checked like an imported file (chip id, bootloader, the
    MicroPython banner, and the pinned sha256 when there is one) before anything is written to
    the cache: a failed or refused download leaves the cache as it was.
    """
    if file is not None:
        if file.is_dir():
            raise UsageError(f"{file} is a directory; give the downloaded MicroPython .bin file")
        data = read_input_file(file, "firmware file", MAX_DOWNLOAD, UsageError)
        return import_firmware(data, board, str(file))
    override = url_override(board, url)
    url = override or release_url(board)
    if url is None:
        raise UsageError("clawgen does not pin a download URL for MicroPython "
                         f"v{board.get('micropython', MICROPYTHON_VERSION)} on {board['name']} "
                         "(its release date was not known when this clawgen was made); to get it:\n  "
                         + obtain_instructions(board))
    progress(f"downloading {url}")
    try:
        data = download(url)
    except (OSError, TimeoutError, ValueError) as e:  # urllib.error.URLError is an OSError
        raise UsageError(f"cannot download {url} ({_download_failure(e)}); nothing was cached. "
                         "To get it by hand:\n  " + obtain_instructions(board)) from None
    progress(f"downloaded {len(data)} bytes; checking it")
    return import_firmware(data, board, url)


def missing_base_message(board: dict) -> str:
    """One line for a build without a merged image: which file to get, from where, the import
    command, and that the build must then be made again."""
    fw = board["firmware"]
    version = board.get("micropython", MICROPYTHON_VERSION)
    url = release_url(board)
    what = url or (f"the v{version} release .bin for {fw['board_id']} from "
                   f"{DOWNLOAD_PAGE.format(board_id=fw['board_id'])} ({fw['board_id']}-<date>-v{version}.bin)")
    return (f"this build has no merged firmware image: no stock MicroPython v{version} base firmware for "
            f"{board['name']} was at hand when it was built. Download {what}, import it with "
            f"`clawgen firmware fetch --board {board['name']} --file <the downloaded .bin>`, then build again "
            "(`clawgen build SPEC`, or --base-firmware FILE) and flash; on a board already running "
            f"MicroPython v{version}, --app-only writes just the filesystem and NVS")


def no_merged_image_message(build_dir: Path) -> str:
    """`missing_base_message` for the board a build directory was made for (its build.json)."""
    import json

    from clawgen.boards import load_board

    try:
        board = load_board(str(json.loads((Path(build_dir) / "build.json").read_text(encoding="utf-8"))["board"])).data
    except (OSError, ValueError, KeyError, TypeError, UsageError, DiagnosticError):
        return ("this build has no merged firmware image (no base MicroPython firmware was available): get the "
                "stock release .bin with `clawgen firmware fetch --board BOARD` (or `--file` for a downloaded "
                "one), build again and flash; or use --app-only on a board already running MicroPython")
    return missing_base_message(board)
