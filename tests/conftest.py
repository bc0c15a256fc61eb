"""Shared fixtures. Area fixtures live beside their tests or in tests/*_fixtures.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.sim_fixtures import *  # noqa: F403  (simulator and LLM-server fixtures)
from tests.unixvm_fixtures import *  # noqa: F403  (the real MicroPython unix-port VM)

REPO = Path(__file__).resolve().parent.parent

# Every build the suite makes (in this process and in the CLI processes it starts) checks each
# reused or traced template output against a plain render (clawgen/render.py, render traces).
os.environ["CLAWGEN_CHECK_RENDER_TRACES"] = "1"
EXAMPLES = REPO / "examples" / "agents"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not; reads /proc: Linux only)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def examples_copy(tmp_path: Path) -> Path:
    """A private copy of examples/agents (specs, secrets.yaml, tools/)."""
    dst = tmp_path / "agents"
    shutil.copytree(EXAMPLES, dst)
    return dst


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write files into a fresh project dir: write_spec({"spec.yaml": "...", "secrets.yaml": "..."})."""

    def write(files: dict[str, str | bytes]) -> Path:
        for rel, content in files.items():
            p = tmp_path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        return tmp_path / next(iter(files))

    return write
