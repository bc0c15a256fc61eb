"""The unix-port harness on other MicroPython binaries: what a binary says it is (vm_info), and a
frozen install (frozen=True: the build's modules that the binary has built in stay out of /lib).

The install logic is tested on any binary (the binary's description is replaced by one that claims
the modules); the end-to-end turn needs a local unix build with an example agent frozen in
($CLAWGEN_MICROPYTHON, see clawgen/sim/unixvm.py) and skips without one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from clawgen.build import build_spec
from clawgen.sim import unixvm as uvm
from clawgen.sim.llmserver import LLMServer, Reply, tool_call

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "agents"
AGENT = "register-assistant"


def build_example(tmp_path: Path, name: str, base_url: str) -> tuple[Path, dict[str, bytes]]:
    work = tmp_path / "ex"
    shutil.copytree(EXAMPLES, work)
    res = build_spec(work / f"{name}.yaml", out_dir=tmp_path / "build", images=False, force=True,
                     board="esp32s3", model_override=base_url)
    return res.out_dir, dict(res.nvs_values)


def test_vm_info_says_which_binary(unixvm: str) -> None:
    info = uvm.vm_info(unixvm)
    maxsize = int(subprocess.run([unixvm, "-c", "import sys; print(sys.maxsize)"], capture_output=True, text=True,
                                 timeout=60, check=True).stdout)
    assert info.bits == (64 if maxsize > 2**32 else 32)
    assert "MicroPython" in info.version
    # the runtime's needs, built in: C modules and the frozen asyncio package (by its top name)
    assert {"socket", "select", "ssl", "json", "asyncio"} <= info.modules
    assert not any("/" in m for m in info.modules)
    line = info.describe()
    assert f"{info.bits}-bit" in line and line.startswith(info.exe) and "\n" not in line


def test_frozen_install_leaves_the_frozen_modules_out(unixvm: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = build_example(tmp_path, AGENT, "http://127.0.0.1:9/v1")
    built = sorted(p.stem for p in (out / "mpy").glob("*.mpy"))
    frozen = {"claw_main", "claw_agent"}
    app = out / "app"
    sums = tuple((m, hashlib.sha256((app / f"{m}.py").read_bytes()).hexdigest()) for m in sorted(frozen))
    real = uvm.vm_info(unixvm)
    claimed = replace(real, modules=(real.modules - set(built)) | frozen, frozen_sources=sums,
                      frozen_agent=AGENT, frozen_model_url="http://127.0.0.1:9/v1")
    monkeypatch.setattr(uvm, "vm_info", lambda exe=None: claimed)
    with uvm.UnixDevice(out, frozen=True, workdir=tmp_path / "dev") as dev:
        lib = {p.stem for p in (dev.root / "lib").glob("*.mpy")}
        assert dev.frozen_modules == sorted(frozen)
        assert not lib & frozen
        assert set(built) - frozen - uvm.SHIM_MODULES <= lib  # the rest is installed
        assert {"machine", "_simhost"} <= lib  # the harness's shims stay
        assert (dev.root / "clawreg.tab").is_file()  # data files stay
    with uvm.UnixDevice(out, frozen=False, workdir=tmp_path / "dev2") as dev:
        assert dev.frozen_modules == []
        assert frozen <= {p.stem for p in (dev.root / "lib").glob("*.mpy")}
    monkeypatch.setenv(uvm.FROZEN_ENV, "1")  # the default comes from the environment
    with uvm.UnixDevice(out, workdir=tmp_path / "dev3") as dev:
        assert dev.frozen_modules == sorted(frozen)


def test_frozen_refuses_a_stale_or_foreign_binary(unixvm: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = build_example(tmp_path, AGENT, "http://127.0.0.1:9/v1")
    real = uvm.vm_info(unixvm)
    stale = replace(real, modules=real.modules | {"claw_main", "claw_config"},
                    frozen_sources=(("claw_config", "0" * 64), ("claw_main", "1" * 64)), frozen_agent=AGENT,
                    frozen_model_url="http://127.0.0.1:47321/v1")
    monkeypatch.setattr(uvm, "vm_info", lambda exe=None: stale)
    with pytest.raises(ValueError, match=r"froze a different claw_config\.py .*47321.*rebuild it"):
        uvm.UnixDevice(out, frozen=True, workdir=tmp_path / "dev")
    none = replace(real, modules=real.modules - {p.stem for p in (out / "mpy").glob("*.mpy")}, frozen_sources=())
    monkeypatch.setattr(uvm, "vm_info", lambda exe=None: none)
    with pytest.raises(ValueError, match="has none of this build's modules frozen in"):
        uvm.UnixDevice(out, frozen=True, workdir=tmp_path / "dev2")


def test_turn_on_a_binary_with_the_agent_frozen_in(unixvm: str, tmp_path: Path) -> None:
    info = uvm.vm_info(unixvm)
    if info.frozen_agent is None or info.frozen_model_url is None:
        pytest.skip(f"needs a unix build with an example agent frozen in ($CLAWGEN_MICROPYTHON); {unixvm} has none")
    port = int(info.frozen_model_url.rsplit(":", 1)[1].split("/", 1)[0])
    # the port the binary was frozen for (its claw_config holds it), not a free one
    with LLMServer(port=port) as server:
        out, secrets = build_example(tmp_path, info.frozen_agent, server.base_url)
        server.push(Reply.tool_calls(tool_call("system_uptime", {}, "c1")), Reply.text("frozen and fine"))
        with uvm.UnixDevice(out, frozen=True, secrets=secrets, workdir=tmp_path / "dev") as dev:
            assert "claw_main" in dev.frozen_modules
            assert not (dev.root / "lib" / "claw_main.mpy").exists()
            res = dev.run(stdin=["how long have you been up?"], timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "frozen and fine" in res.stdout and "[error]" not in res.stdout
    assert len(server.requests) == 2


def test_builds_bench_without_a_local_build(tmp_path: Path) -> None:
    """CI builds no MicroPython: the bench says so in one line and exits 0; a wrong path is one error line, exit 2."""
    bench = ROOT / "bench" / "runtime_heap_builds.py"
    env = {k: v for k, v in os.environ.items() if k != "CLAWGEN_MICROPYTHON_BUILDS"}
    none = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, env=env, timeout=120)
    assert none.returncode == 0, none.stderr
    assert none.stdout.startswith("no local MicroPython unix build") and none.stdout.count("\n") == 1
    bad = subprocess.run([sys.executable, str(bench), "--micropython", str(tmp_path / "nope")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: not an executable file "
                                               "(a MicroPython unix-port binary expected)"]
