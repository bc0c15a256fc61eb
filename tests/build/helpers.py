"""Shared by the build tests: run the real CLI in a subprocess, write a small project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SPEC = """\
name: tiny
board: esp32c3
model:
  base_url: https://api.example.com/v1
  model: m
  api_key: !secret key
network:
  ssid: !secret ssid
  password: !secret pw
"""

SECRETS = """\
key: sk-test-0123456789abcdef0123
ssid: test-ssid
pw: test-password
"""


def clawgen(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`clawgen ARGS` in a fresh interpreter; ``prelude`` runs first (e.g. to hide a module)."""
    code = f"{prelude}\nimport sys\nfrom clawgen.cli import main\nsys.argv = ['clawgen', *sys.argv[1:]]\nmain()\n"
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=full_env, timeout=180)


def project(root: Path, spec: str = SPEC, secrets: str = SECRETS, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "agent.yaml").write_text(spec)
    (root / "secrets.yaml").write_text(secrets)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "agent.yaml"
