import copy
import subprocess
from pathlib import Path

import pytest

from clawgen.boards import load_board
from clawgen.diagnostics import UsageError
from clawgen.image import fullbuild, stage
from tests.conftest import pid_alive
from tests.image import synth


def _fake_mp_tree(root: Path, version=(1, 29, 0), prerelease=0, boards=("ESP32_GENERIC_S3",)) -> Path:
    (root / "py").mkdir(parents=True)
    (root / "py" / "mpconfig.h").write_text(
        f"#define MICROPY_VERSION_MAJOR {version[0]}\n#define MICROPY_VERSION_MINOR {version[1]}\n"
        f"#define MICROPY_VERSION_MICRO {version[2]}\n#define MICROPY_VERSION_PRERELEASE {prerelease}\n")
    port = root / "ports" / "esp32"
    for b in boards:
        (port / "boards" / b).mkdir(parents=True)
    (port / "Makefile").write_text("# esp32 port\n")
    return root


def _out_dir(tmp_path: Path, usermod: bool = True) -> Path:
    out = tmp_path / "out"
    (out / "app").mkdir(parents=True)
    for name in ("boot", "main", "claw_agent", "claw_http", "clawreg"):
        (out / "app" / f"{name}.py").write_text(f"# {name}\n")
    if usermod:
        (out / "usermod" / "clawreg").mkdir(parents=True)
        (out / "usermod" / "clawreg" / "micropython.cmake").write_text("# cmake\n")
    return out


def _env(tmp_path):
    idf = tmp_path / "idf"
    (idf / "tools").mkdir(parents=True)
    (idf / "tools" / "idf.py").write_text("")
    return {"IDF_PATH": str(idf)}


def _which_all(tool):
    return f"/usr/bin/{tool}"


def test_manifest_freezes_app_modules_but_boot_and_main(tmp_path):
    out = _out_dir(tmp_path)
    plan = fullbuild.plan_full_build(_fake_mp_tree(tmp_path / "mp"), load_board("esp32s3").data, out, "demo")
    text = plan.manifest.read_text()
    assert plan.manifest == (out / "manifest.py").resolve()
    assert 'include("$(PORT_DIR)/boards/manifest.py")' in text
    modules = [line for line in text.splitlines() if line.startswith("module(")]
    assert modules == [f'module("{m}.py", base_path="app")' for m in ("claw_agent", "claw_http", "clawreg")]
    assert plan.frozen_modules == ["claw_agent", "claw_http", "clawreg"]
    # the manifest is valid Python that calls only manifest functions
    calls = []
    exec(compile(text, "manifest.py", "exec"),
         {"include": lambda p: calls.append(("include", p)),
          "module": lambda m, base_path=".": calls.append(("module", m, base_path))})
    assert calls[0] == ("include", "$(PORT_DIR)/boards/manifest.py") and len(calls) == 4


def test_exact_command_line(tmp_path):
    mp = _fake_mp_tree(tmp_path / "mp")
    out = _out_dir(tmp_path)
    plan = fullbuild.plan_full_build(mp, load_board("esp32s3").data, out, "demo")
    port = mp.resolve() / "ports" / "esp32"
    assert plan.command == [
        "make", "-C", str(port), "BOARD=ESP32_GENERIC_S3", "BUILD=build-ESP32_GENERIC_S3-clawgen",
        f"FROZEN_MANIFEST={(out / 'manifest.py').resolve()}",
        f"USER_C_MODULES={(out / 'usermod' / 'clawreg' / 'micropython.cmake').resolve()}",
    ]
    assert plan.firmware == port / "build-ESP32_GENERIC_S3-clawgen" / "firmware.bin"


def test_top_level_usermod_cmake_preferred_and_absent_usermod_omitted(tmp_path):
    mp = _fake_mp_tree(tmp_path / "mp")
    out = _out_dir(tmp_path)
    (out / "usermod" / "micropython.cmake").write_text("include(clawreg/micropython.cmake)\n")
    plan = fullbuild.plan_full_build(mp, load_board("esp32s3").data, out, "demo")
    assert plan.command[-1] == f"USER_C_MODULES={(out / 'usermod' / 'micropython.cmake').resolve()}"
    out2 = _out_dir(tmp_path / "b", usermod=False)
    plan2 = fullbuild.plan_full_build(mp, load_board("esp32s3").data, out2, "demo")
    assert not any(a.startswith("USER_C_MODULES=") for a in plan2.command)


def test_missing_tools_are_named(tmp_path):
    mp = _fake_mp_tree(tmp_path / "mp")
    with pytest.raises(UsageError) as err:
        fullbuild.check_environment(mp, "ESP32_GENERIC_S3", env={}, which=lambda t: None)
    msg = str(err.value)
    for needle in ("IDF_PATH", "idf.py", "GNU make", "CMake", "Ninja"):
        assert needle in msg
    fullbuild.check_environment(mp, "ESP32_GENERIC_S3", env=_env(tmp_path), which=_which_all)


def test_wrong_tree_is_named(tmp_path):
    env = _env(tmp_path)
    with pytest.raises(UsageError, match="not found; --micropython must point at a MicroPython source tree"):
        fullbuild.check_environment(tmp_path / "nothing", "ESP32_GENERIC_S3", env=env, which=_which_all)
    old = _fake_mp_tree(tmp_path / "old", version=(1, 28, 0))
    with pytest.raises(UsageError, match=r"MicroPython 1.29.0 sources \(.* is 1.28.0\)"):
        fullbuild.check_environment(old, "ESP32_GENERIC_S3", env=env, which=_which_all)
    other = _fake_mp_tree(tmp_path / "other", boards=("ESP32_GENERIC",))
    with pytest.raises(UsageError, match="board ESP32_GENERIC_S3"):
        fullbuild.check_environment(other, "ESP32_GENERIC_S3", env=env, which=_which_all)
    pre = _fake_mp_tree(tmp_path / "pre", prerelease=1)
    assert fullbuild.tree_version(pre) == "1.29.0-preview"
    fullbuild.check_environment(pre, "ESP32_GENERIC_S3", env=env, which=_which_all)


def test_run_passes_the_command_and_reports_failure(tmp_path):
    mp = _fake_mp_tree(tmp_path / "mp")
    plan = fullbuild.plan_full_build(mp, load_board("esp32s3").data, _out_dir(tmp_path), "demo")
    calls = []

    def failing(cmd, stdout, stderr, check):
        calls.append(cmd)
        stdout.write(b"ninja: build stopped: subcommand failed.\n")
        return subprocess.CompletedProcess(cmd, 2)

    log = tmp_path / "build.log"
    with pytest.raises(UsageError) as err:
        fullbuild.run_full_build(plan, log, runner=failing)
    assert calls == [plan.command]
    assert "exit 2" in str(err.value) and "subcommand failed" in str(err.value)
    # the staging directory (and log) of a failed build goes away: the message names a copy that stays
    kept = plan.firmware.parent / "clawgen-fullbuild.log"
    assert f"last lines of {kept}:" in str(err.value)
    log.unlink()
    assert "subcommand failed" in kept.read_text()


def test_stage_uses_the_full_build_firmware_and_drops_frozen_files(tmp_path, monkeypatch):
    mp = _fake_mp_tree(tmp_path / "mp")
    out = _out_dir(tmp_path)
    board = copy.deepcopy(load_board("esp32s3").data)
    monkeypatch.setattr(fullbuild, "check_environment", lambda *a, **k: None)
    built = []

    def fake_make(cmd, stdout, stderr, check):
        built.append(cmd)
        fw = mp.resolve() / "ports" / "esp32" / "build-ESP32_GENERIC_S3-clawgen" / "firmware.bin"
        fw.parent.mkdir(parents=True)
        fw.write_bytes(synth.stock_firmware(
            "esp32s3", banner="MicroPython v1.29.0-preview.20.g1c3c201149 on 2026-08-19"))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(fullbuild, "run_group", fake_make)
    files = {"/boot.py": b"#", "/main.py": b"import claw_agent", "/lib/claw_agent.mpy": b"M\x06",
             "/lib/claw_http.mpy": b"M\x06", "/clawgen.json": b"{}"}
    result = stage.build_images(stage.ImageInputs(out_dir=out, board=board, flash_size=8 << 20, files=files,
                                                  micropython_dir=mp, spec_name="demo"))
    assert len(built) == 1 and built[0][0] == "make"
    assert (out / "image" / "firmware.bin").is_file()
    from clawgen.image.fsimage import read_fs_image

    on_fs = read_fs_image((out / "image" / "fs.bin").read_bytes(), 6 << 20)
    assert sorted(on_fs) == ["/boot.py", "/clawgen.json", "/main.py"]
    assert any(line.startswith("full build: make -C") for line in result.report_lines)


_GROUP_CHILD = r"""
import sys
from pathlib import Path
from clawgen import signals
from clawgen.image import fullbuild
import signal
signals.exit_on_termination_signals()  # as the `clawgen` command does
# Ctrl-C as in a terminal (a test runner's worker may start this process with SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
signals.GROUP_GRACE_S = 1.0
tmp = Path(sys.argv[1])
# make's stand-in: a shell (the group's first process) with two children, one of which ignores
# SIGTERM (as a compiler in an uninterruptible step would not end): each writes its pid.
script = "echo $$ >> pids; sleep 60 & echo $! >> pids; (trap '' TERM; exec sleep 61) & echo $! >> pids; wait"
plan = fullbuild.FullBuildPlan(["sh", "-c", script], tmp, tmp / "manifest.py", None, tmp / "firmware.bin", [])
try:
    fullbuild.run_full_build(plan, tmp / "build.log")
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the build's processes")
@pytest.mark.parametrize(("signame", "status"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_an_interrupted_full_build_ends_every_process_under_make(tmp_path: Path, signame: str, status: int) -> None:
    # SIGTERM (a CI timeout) killed clawgen at once and left make, and the compilers under it,
    # building for minutes; Ctrl-C (SIGINT) ended make alone. Now the whole process group ends:
    # SIGTERM to all, SIGKILL after the grace to what ignored it.
    import os
    import signal
    import sys
    import time

    from tests.conftest import REPO

    p = subprocess.Popen([sys.executable, "-c", _GROUP_CHILD, str(tmp_path)], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        end = time.monotonic() + 30
        while len(pids) < 3 and time.monotonic() < end and p.poll() is None:
            time.sleep(0.05)
            text = (tmp_path / "pids").read_text() if (tmp_path / "pids").is_file() else ""
            pids = [int(x) for x in text.split()] if text.endswith("\n") else []
        assert len(pids) == 3, p.stderr.read() if p.poll() is not None and p.stderr else "no pids"
        p.send_signal(getattr(signal, signame))
        assert p.wait(timeout=30) == status
        end = time.monotonic() + 10
        while any(pid_alive(x) for x in pids) and time.monotonic() < end:
            time.sleep(0.05)
        assert [x for x in pids if pid_alive(x)] == []
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
        for x in pids:  # (left running when the test fails)
            if pid_alive(x):
                os.kill(x, signal.SIGKILL)
