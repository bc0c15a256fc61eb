"""`clawgen flash`: write a build's images onto a board through esptool's Python API.

The build directory's ``image/flash_args.json`` (written by the image stage) says what
goes where::

    {"merged": {"offset": 0, "file": "firmware.bin"} | null,
     "app_only": [{"offset": 2097152, "file": "fs.bin", "name": "vfs"},
                  {"offset": 36864, "file": "nvs.bin", "name": "nvs"}],
     "chip": "esp32s3", "flash_size": "8MB"}

Default: the merged image (bootloader, partition table, MicroPython, filesystem, NVS).
``app_only``: just the filesystem and NVS images, for a board already running the same
MicroPython. esptool verifies every region it writes (flash MD5 against the image's) and
fails on a mismatch, so a successful return means the board holds exactly these bytes.

Erasing: the ROM bootloader has no "erase chip" command (ERASE_FLASH is stub-only), so
``--erase`` without the stub erases the whole flash the way esptool's own ROM path for
erase-region does: one FLASH_BEGIN over the full size, which the ROM erases up front.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

from clawgen.diagnostics import Diagnostic, DiagnosticError, UsageError
from clawgen.image.regions import FLASH_ARGS, FlashRegion
from clawgen.records import record

ROM_BAUD = 115200  # every ESP ROM bootloader starts at this rate
DEFAULT_BAUD = 460800
BEFORE_CHOICES = ("default-reset", "usb-reset", "no-reset")
AFTER_CHOICES = ("hard-reset", "soft-reset", "no-reset")
DOWNLOAD_MODE_HINT = "hold BOOT, press and release RESET, release BOOT, then retry"


@record
class FlashPlan:
    """What to write where, read and checked from a build directory."""

    build_dir: Path
    chip: str  # esptool chip name: esp32s3, esp32, esp32c3, esp32c6
    flash_size: str  # "8MB"
    regions: tuple[FlashRegion, ...]
    app_only: bool


@record
class FlashOptions:
    port: str
    baud: int = DEFAULT_BAUD
    erase: bool = False
    stub: bool = True  # upload esptool's flasher stub (faster; False = ROM bootloader only)
    compress: bool | None = None  # None: esptool's default (compress with the stub only)
    before: str = "default-reset"
    after: str = "hard-reset"
    connect_attempts: int = 7
    progress: bool | None = None  # None: show progress bars when stdout is a terminal


@record
class FlashedRegion:
    region: FlashRegion
    size: int
    md5: str
    verified: bool


@record(frozen=False)
class FlashResult:
    chip: str  # as esptool names it: "ESP32-S3"
    flash_size: str | None  # detected on the board
    regions: list[FlashedRegion] = field(default_factory=list)
    erased: bool = False


# -- reading the build ---------------------------------------------------------------


def _bad(file: Path, message: str, path: str = "", line: int = 1, column: int = 1) -> DiagnosticError:
    return DiagnosticError(Diagnostic(str(file), line, column, path, "error", message))


def load_flash_plan(build_dir: Path, app_only: bool = False, device: str | None = None,
                    staged: bool = False) -> FlashPlan:
    """Read ``image/flash_args.json``; DiagnosticError (exit 2) naming the file if it is unusable.

    A fleet build (``clawgen build --devices``) needs ``device``: that device's NVS image is
    written last, over the NVS region of the merged image (clawgen/fleet.py ``flash_region``).
    ``staged``: a build still being staged (its build.json comes last), e.g. for the web install page.
    """
    from esptool.targets import CHIP_DEFS

    build_dir = Path(build_dir)
    args_file = build_dir / FLASH_ARGS
    if not build_dir.is_dir():
        raise _bad(build_dir, "no such build directory (run `clawgen build` first)")
    if not staged and not (build_dir / "build.json").is_file():
        raise _bad(build_dir, "not a clawgen build directory (it has no build.json): give the directory "
                   "`clawgen build` wrote, e.g. generated/NAME/BOARD")
    if not args_file.is_file():
        raise _bad(args_file, "missing: this build has no flashable images "
                   "(run `clawgen build` again without --no-images)")
    try:
        doc = json.loads(args_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise _bad(args_file, f"not valid JSON: {e.msg}", line=e.lineno, column=e.colno) from e
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(args_file, f"cannot read: {e}") from e
    if not isinstance(doc, dict):
        raise _bad(args_file, "expected a JSON object")

    chip = doc.get("chip")
    if not isinstance(chip, str) or chip not in CHIP_DEFS:
        raise _bad(args_file, f"unknown chip {chip!r}", "chip")
    flash_size = doc.get("flash_size")
    size_bytes = parse_flash_size(flash_size)
    if not size_bytes:
        raise _bad(args_file, f"invalid flash size {flash_size!r} (expected e.g. \"8MB\")", "flash_size")

    image_dir = args_file.parent
    if app_only:
        entries = doc.get("app_only")
        if not isinstance(entries, list) or not entries:
            raise _bad(args_file, "no app-only images listed; flash the full image (without --app-only)",
                       "app_only")
        items = [(f"app_only[{i}]", e) for i, e in enumerate(entries)]
    else:
        merged = doc.get("merged")
        if merged is None:
            from clawgen.image.basefw import no_merged_image_message

            raise _bad(args_file, no_merged_image_message(build_dir), "merged")
        items = [("merged", merged)]

    regions: list[FlashRegion] = []
    for where, entry in items:
        if not isinstance(entry, dict):
            raise _bad(args_file, "expected an object with offset and file", where)
        offset, file = entry.get("offset"), entry.get("file")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _bad(args_file, f"offset must be a non-negative integer, not {offset!r}", f"{where}.offset")
        if not isinstance(file, str) or not file or Path(file).is_absolute() or ".." in Path(file).parts:
            raise _bad(args_file, f"file must be a path inside {image_dir}, not {file!r}", f"{where}.file")
        path = image_dir / file
        if not path.is_file():
            raise _bad(args_file, f"{file} is listed but missing from {image_dir}", f"{where}.file")
        size = path.stat().st_size
        if offset + size > size_bytes:
            raise _bad(args_file, f"{file} ({size} bytes at {offset:#x}) does not fit in {flash_size} "
                       "of flash", where)
        name = entry.get("name") if isinstance(entry.get("name"), str) else Path(file).stem
        regions.append(FlashRegion(name, offset, path))

    ordered = sorted(regions, key=lambda r: r.offset)
    for a, b in itertools.pairwise(ordered):
        if a.offset + a.path.stat().st_size > b.offset:
            raise _bad(args_file, f"images {a.name} ({a.offset:#x}) and {b.name} ({b.offset:#x}) overlap")
    from clawgen.fleet import flash_region

    own = flash_region(doc, args_file, device)
    if own is not None:
        end = own.offset + own.path.stat().st_size
        others = regions if app_only else []  # a full flash: the merged image, whose NVS region it replaces
        if end > size_bytes or any(r.offset < end and own.offset < r.offset + r.path.stat().st_size
                                   for r in others):
            raise _bad(args_file, f"the device's NVS image ({own.offset:#x}) overlaps another image or "
                       f"ends beyond {flash_size}", "fleet")
        ordered.append(own)  # written last: over the merged image's (empty) NVS region
    return FlashPlan(build_dir, chip, flash_size, tuple(ordered), app_only)


def parse_flash_size(text: object) -> int | None:
    """Bytes in "4MB" / "512KB" (esptool's spelling), or None."""
    m = re.fullmatch(r"([1-9][0-9]*)(MB|KB)", text) if isinstance(text, str) else None
    if not m:
        return None
    return int(m.group(1)) * (1024 * 1024 if m.group(2) == "MB" else 1024)


# -- flashing ------------------------------------------------------------------------


def _chip_title(chip: str) -> str:
    from esptool.targets import CHIP_DEFS

    return CHIP_DEFS[chip].CHIP_NAME


def flash_build(plan: FlashPlan, options: FlashOptions,
                echo: Callable[[str], Any] = print) -> FlashResult:
    """Write ``plan`` to the board on ``options.port``; UsageError with a one-line cause on failure."""
    from esptool import cmds

    if options.erase and plan.app_only:
        raise UsageError("--erase with --app-only would wipe MicroPython itself and leave the board "
                         "unbootable: flash the full image with --erase, or drop --erase")
    _check_port_name(options.port)
    progress = sys.stdout.isatty() if options.progress is None else options.progress
    esp = None
    try:
        esp = cmds.detect_chip(options.port, min(ROM_BAUD, options.baud), options.before,
                               connect_attempts=options.connect_attempts)
        wanted = _chip_title(plan.chip)
        if esp.CHIP_NAME != wanted:
            raise UsageError(f"the board on {options.port} is an {esp.CHIP_NAME}, but this build is for "
                             f"an {wanted}: connect the right board, or rebuild for this one")
        if options.stub:
            esp = cmds.run_stub(esp)
        if options.baud > ROM_BAUD:
            esp.change_baud(options.baud)
        cmds.attach_flash(esp)
        detected = None if esp.secure_download_mode else cmds.detect_flash_size(esp)
        _check_flash_size(detected, plan)
        result = FlashResult(esp.CHIP_NAME, detected)
        if options.erase:
            _erase_all(esp, detected or plan.flash_size)
            result.erased = True

        images = [(r, r.path.read_bytes()) for r in plan.regions]
        compress = {"compress": True} if options.compress else (
            {"no_compress": True} if options.compress is False else {})
        cmds.write_flash(esp, [(r.offset, str(r.path)) for r, _ in images], flash_size="keep",
                         no_progress=not progress, **compress)
        # write_flash raises unless each region's flash MD5 matched; it cannot check in
        # secure download mode (and says so).
        verified = not esp.secure_download_mode
        result.regions = [FlashedRegion(r, len(data), hashlib.md5(data).hexdigest(), verified)
                          for r, data in images]
        cmds.reset_chip(esp, options.after)
    except UsageError:
        raise
    except Exception as e:  # esptool FatalError, pyserial SerialException, OSError
        if not _is_environment_error(e):
            raise
        raise explain_failure(e, options.port) from e
    finally:
        if esp is not None:
            esp._port.close()
    for line in summary_lines(result):
        echo(line)
    if result.flash_size and (parse_flash_size(result.flash_size) or 0) > (parse_flash_size(plan.flash_size) or 0):
        echo(f"note: the board has {result.flash_size} of flash; this build uses {plan.flash_size} of it "
             f"(rebuild with hardware.flash_size: {result.flash_size} to give the filesystem the rest)")
    return result


def _check_flash_size(detected: str | None, plan: FlashPlan) -> None:
    """Refuse a board whose flash does not suit the build's layout.

    A smaller flash cannot hold it. With --app-only the board keeps its own partition table;
    stock MicroPython has no "vfs" row and makes one from 0x200000 to the end of the physical
    flash, so on a bigger flash the partition's block count differs from the one written in
    the filesystem image's superblock, littlefs refuses to mount it, and the port reports a
    corrupted filesystem. (The merged image brings its own table, so a bigger flash is fine.)
    """
    have, want = parse_flash_size(detected) or 0, parse_flash_size(plan.flash_size) or 0
    if not detected or have == want or (have > want and not plan.app_only):
        return
    if have < want:
        raise UsageError(f"the board has {detected} of flash, but this build is laid out for "
                         f"{plan.flash_size}: rebuild with hardware.flash_size: {detected}")
    raise UsageError(f"the board has {detected} of flash, but this build's filesystem is laid out for "
                     f"{plan.flash_size}; stock MicroPython would not mount it: rebuild with "
                     f"hardware.flash_size: {detected}, or flash the full image (without --app-only)")


def _check_port_name(port: str) -> None:
    """A malformed URL (``bogus://x``) is the user's typo, not a bug: say so before esptool trips on it."""
    import serial

    try:
        serial.serial_for_url(port, do_not_open=True)
    except ValueError as e:
        raise UsageError(f"cannot open serial port {port}: {e}") from e


def _erase_all(esp: Any, flash_size: str) -> None:
    from esptool import cmds

    if esp.IS_STUB:
        cmds.erase_flash(esp)
    else:  # ROM: FLASH_BEGIN erases the region it is given (what esptool's erase-region does)
        cmds.erase_region(esp, 0, parse_flash_size(flash_size) or 0)


def summary_lines(result: FlashResult) -> list[str]:
    lines = [f"Flashed {result.chip}" + (f" ({result.flash_size} flash)" if result.flash_size else "")
             + (", erased first" if result.erased else "") + ":"]
    for f in result.regions:
        state = "verified" if f.verified else "NOT verified (secure download mode)"
        lines.append(f"  {f.region.name:<10} {f.region.offset:#010x}  {f.size:>9} bytes  "
                     f"md5 {f.md5}  {state}")
    return lines


# -- errors --------------------------------------------------------------------------


def _is_environment_error(e: BaseException) -> bool:
    from esptool.util import FatalError
    from serial import SerialException

    return isinstance(e, (FatalError, SerialException, OSError))


# esptool's wrapper says "the port is busy or doesn't exist" whatever the cause: match the OS error.
_BUSY = re.compile(r"Resource busy|Errno 16\b|Errno 11\b|Access is denied|exclusively lock|"
                   r"Resource temporarily unavailable", re.IGNORECASE)
_PERMISSION = re.compile(r"Permission denied|Errno 13", re.IGNORECASE)
_MISSING = re.compile(r"Errno 2\b|No such file|FileNotFoundError|cannot find the file", re.IGNORECASE)
_REFUSED = re.compile(r"Connection refused|Errno 111", re.IGNORECASE)
_NO_SYNC = re.compile(r"Failed to connect|Wrong boot mode|No serial data received", re.IGNORECASE)
_WRONG_CHIP = re.compile(r"This chip is (\S+), not (\S+)")


def explain_failure(e: BaseException, port: str) -> UsageError:
    """One line saying what went wrong with the board or port, and what to do."""
    text = str(e)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    if "Could not open" in text or "could not open port" in text.lower():
        return explain_open_failure(text, port)
    if _NO_SYNC.search(text):
        return UsageError(f"no answer from the ESP bootloader on {port}: the board is not in download "
                          f"mode; {DOWNLOAD_MODE_HINT}")
    m = _WRONG_CHIP.search(text)
    if m:
        return UsageError(f"the board on {port} is an {m.group(1)}, but this build is for an "
                          f"{m.group(2)}: connect the right board, or rebuild for this one")
    if "Failed to start stub flasher" in text:
        return UsageError(f"the flasher stub did not start on {port}: retry, or pass --no-stub")
    if "MD5 of file does not match" in text or "written flash region is empty" in text:
        return UsageError("verification failed: the flash does not hold what was written; retry with "
                          "--erase or a lower --baud")
    if "will not fit" in text:
        return UsageError(f"the image does not fit in the board's flash ({first})")
    if "Failed to set baud rate" in text:
        return UsageError(f"the serial driver of {port} refused the baud rate ({first}); "
                          "retry with a lower --baud")
    from serial import SerialException

    if isinstance(e, (SerialException, OSError)):
        return UsageError(f"lost the connection to the board on {port} ({first}): check the USB cable, "
                          "then retry")
    return UsageError(f"flashing failed on {port}: {first}")


def explain_open_failure(text: str, port: str) -> UsageError:
    """Why a serial port would not open (busy, permissions, missing), as one line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # esptool puts pyserial's own message on a line in parentheses: the more telling one
    inner = next((ln[1:-1] for ln in lines if ln.startswith("(") and ln.endswith(")")), None)
    cause = inner or (lines[0] if lines else "unknown error")
    if _BUSY.search(text):
        return UsageError(f"serial port {port} is busy: close the program using it (a serial monitor, "
                          "mpremote, another flash) and retry")
    if _PERMISSION.search(text):
        return UsageError(f"no permission to open {port}: add your user to the port's group "
                          "(dialout on Debian/Ubuntu, uucp on Arch), log in again, and retry")
    if _REFUSED.search(text):
        return UsageError(f"cannot open {port}: connection refused")
    if _MISSING.search(text):
        return UsageError(f"serial port {port} does not exist: check the USB cable and the port name, "
                          "or leave out --port to pick the board automatically")
    return UsageError(f"cannot open serial port {port}: {cause}")
