"""Fixtures for simulator tests: the MicroPython VM, the scripted LLM server.

Loaded from tests/conftest.py with ``from tests.sim_fixtures import *``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import llm_server

__all__ = ["llm_server", "mpvm", "sim_run"]


@pytest.fixture(scope="session")
def mpvm() -> Path:
    """The installed MicroPython WebAssembly VM (npm ci on first use); skips without node/npm."""
    if not shutil.which("node"):
        pytest.skip("Node.js is not installed: simulator tests need it")
    from clawgen.diagnostics import UsageError
    from clawgen.sim.install import ensure_installed, is_installed

    if not is_installed() and not shutil.which("npm"):
        pytest.skip("npm is not installed and the MicroPython VM is not cached")
    try:
        return ensure_installed(quiet=True)
    except UsageError as e:
        pytest.skip(f"cannot install the MicroPython VM: {e}")


@pytest.fixture
def sim_run(mpvm: Path) -> Callable[..., Any]:
    """clawgen.sim.vm.run with a short default timeout for tests."""
    from clawgen.sim import vm

    def run(build_dir: Path | str | None = None, **kw: Any) -> vm.SimResult:
        kw.setdefault("timeout", 30)
        return vm.run(build_dir, **kw)

    return run
