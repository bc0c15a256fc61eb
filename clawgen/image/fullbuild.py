"""Tailored full build: MicroPython's own ESP32 build with the agent frozen in.

`make -C <mp>/ports/esp32 BOARD=<id> BUILD=<dir> FROZEN_MANIFEST=<manifest.py>
USER_C_MODULES=<usermod>/micropython.cmake` - the port's Makefile is a wrapper around
idf.py: it passes FROZEN_MANIFEST as -D MICROPY_FROZEN_MANIFEST and USER_C_MODULES as
-D USER_C_MODULES (a CMake file for this CMake-based port), then makeimg.py writes
<BUILD>/firmware.bin (bootloader + partition table + app, starting at the bootloader offset).
That firmware.bin becomes the base of the merged image.

boot.py and main.py are not frozen: the port runs them from the filesystem only
(pyexec_file_if_exists), so they stay in the LittleFS image; the other app modules are
frozen and dropped from the filesystem (".frozen" comes before "/lib" on sys.path anyway).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import jinja2

from clawgen import MICROPYTHON_VERSION, __version__
from clawgen.diagnostics import UsageError
from clawgen.records import record
from clawgen.resources import templates_dir
from clawgen.signals import run_group

NOT_FROZEN = ("boot", "main")  # run from the filesystem by the port
ESP32_BOARD_MANIFEST = "$(PORT_DIR)/boards/manifest.py"


@record
class FullBuildPlan:
    command: list[str]
    cwd: Path
    manifest: Path
    usermod_cmake: Path | None
    firmware: Path  # what the build writes
    frozen_modules: list[str]


def frozen_module_names(app_dir: Path) -> list[str]:
    """Module names (file stems) to freeze: every app/*.py but boot and main."""
    return sorted(p.stem for p in app_dir.glob("*.py") if p.stem not in NOT_FROZEN)


def render_manifest(modules: list[str], *, spec_name: str, board_id: str, base_path: str = "app",
                    board_manifest: str = ESP32_BOARD_MANIFEST,
                    micropython: str = MICROPYTHON_VERSION) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    for m in modules:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m):
            raise UsageError(f"cannot freeze module {m!r}: not a Python module name")
    return env.get_template("manifest.py.j2").render(
        modules=[f"{m}.py" for m in modules], spec_name=spec_name, board_id=board_id,
        base_path=base_path, board_manifest=board_manifest, micropython=micropython,
        clawgen_version=__version__)


def tree_version(mp_dir: Path) -> str:
    """'1.29.0' from py/mpconfig.h (with '-preview' when MICROPY_VERSION_PRERELEASE is set)."""
    try:
        text = (mp_dir / "py" / "mpconfig.h").read_text(errors="replace")
    except OSError:
        raise UsageError(f"{mp_dir} is not a MicroPython source tree (no py/mpconfig.h)") from None
    nums = [re.search(rf"#define MICROPY_VERSION_{k} (\d+)", text) for k in ("MAJOR", "MINOR", "MICRO")]
    if not all(nums):
        raise UsageError(f"cannot read the MicroPython version from {mp_dir}/py/mpconfig.h")
    version = ".".join(m.group(1) for m in nums if m)
    pre = re.search(r"#define MICROPY_VERSION_PRERELEASE (\d+)", text)
    return version + ("-preview" if pre and pre.group(1) != "0" else "")


def usermod_cmake(out_dir: Path) -> Path | None:
    """The CMake entry of the generated user C module(s), if the build made any."""
    for candidate in (out_dir / "usermod" / "micropython.cmake",
                      out_dir / "usermod" / "clawreg" / "micropython.cmake"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def check_environment(mp_dir: Path, board_id: str, *, env: Mapping[str, str] | None = None,
                      which: Callable[[str], str | None] = shutil.which) -> None:
    """Everything the full build needs; raises UsageError naming all that is missing."""
    env = os.environ if env is None else env
    missing: list[str] = []
    port = mp_dir / "ports" / "esp32"
    if not (port / "Makefile").is_file():
        missing.append(f"the MicroPython ESP32 port ({port}/Makefile not found; --micropython must "
                       "point at a MicroPython source tree)")
    elif not (port / "boards" / board_id).is_dir():
        missing.append(f"board {board_id} in {port}/boards")
    else:
        version = tree_version(mp_dir)
        if not version.startswith(MICROPYTHON_VERSION):
            missing.append(f"MicroPython {MICROPYTHON_VERSION} sources ({mp_dir} is {version})")
    idf_path = env.get("IDF_PATH")
    if not idf_path:
        missing.append("IDF_PATH (ESP-IDF not set up: run `. <esp-idf>/export.sh`)")
    elif not Path(idf_path, "tools", "idf.py").is_file():
        missing.append(f"ESP-IDF at IDF_PATH={idf_path} (no tools/idf.py there)")
    for tool, hint in (("make", "GNU make"), ("idf.py", "ESP-IDF's idf.py on PATH (run export.sh)"),
                       ("cmake", "CMake (installed by ESP-IDF's install.sh)"),
                       ("ninja", "Ninja (installed by ESP-IDF's install.sh)")):
        if which(tool) is None:
            missing.append(hint)
    if missing:
        raise UsageError("the tailored full build (--micropython) needs: " + "; ".join(missing))


def plan_full_build(mp_dir: Path, board: dict, out_dir: Path, spec_name: str) -> FullBuildPlan:
    """Write manifest.py into out_dir and work out the exact make command line."""
    mp_dir = mp_dir.resolve()
    board_id = board["firmware"]["board_id"]
    modules = frozen_module_names(out_dir / "app")
    manifest = (out_dir / "manifest.py").resolve()
    manifest.write_text(render_manifest(modules, spec_name=spec_name, board_id=board_id))
    port = mp_dir / "ports" / "esp32"
    build = f"build-{board_id}-clawgen"  # ours, so a user's own build-<BOARD> stays untouched
    command = ["make", "-C", str(port), f"BOARD={board_id}", f"BUILD={build}",
               f"FROZEN_MANIFEST={manifest}"]
    cmake = usermod_cmake(out_dir)
    if cmake is not None:
        command.append(f"USER_C_MODULES={cmake}")
    return FullBuildPlan(command, port, manifest, cmake, port / build / "firmware.bin", modules)


def run_full_build(plan: FullBuildPlan, log_path: Path,
                   runner: Callable[..., subprocess.CompletedProcess] | None = None) -> Path:
    """Run the build, output to log_path; returns the firmware.bin it made. make runs in a process
    group of its own (``signals.run_group``): a build interrupted (Ctrl-C, SIGTERM) ends it and
    everything under it (idf.py, cmake, ninja, the compilers), which otherwise kept building."""
    runner = runner or run_group
    with open(log_path, "wb") as log:
        try:
            result = runner(plan.command, stdout=log, stderr=subprocess.STDOUT, check=False)
        except FileNotFoundError as e:
            raise UsageError(f"cannot run {plan.command[0]}: {e.strerror}") from None
    if result.returncode != 0:
        text = log_path.read_text(errors="replace") if log_path.is_file() else ""
        # log_path is in the build's staging directory, which a failed build deletes: keep a
        # copy in MicroPython's own build directory so the message points at a file that stays.
        kept = plan.firmware.parent / "clawgen-fullbuild.log"
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(text)
        except OSError:
            kept = log_path
        tail = text.splitlines()[-15:]
        raise UsageError(f"MicroPython build failed (exit {result.returncode}); command: "
                         f"{' '.join(plan.command)}\nlast lines of {kept}:\n" + "\n".join(tail))
    if not plan.firmware.is_file():
        raise UsageError(f"MicroPython build finished but {plan.firmware} is missing")
    return plan.firmware
