"""SIGTERM and SIGHUP end any `clawgen` command through its cleanup, as Ctrl-C does
(clawgen/signals.py; the full build's process group: tests/image/test_fullbuild.py; the
simulator's node: tests/sim/test_sim_early.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(("signame", "status"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_termination_signal_ends_a_command_with_the_shell_s_status(tmp_path: Path, signame: str,
                                                                      status: int) -> None:
    # Before, Python died of the signal at once (status -15 to a parent, no cleanup ran). `init`
    # waiting at its first question stands for any command: it has written nothing yet.
    p = subprocess.Popen([sys.executable, "-m", "clawgen", "init"], cwd=tmp_path, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(REPO), "CLAWGEN_CACHE": str(tmp_path / "cache")})
    try:
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        seen = b""
        end = time.monotonic() + 30
        while b"Agent name" not in seen and time.monotonic() < end and p.poll() is None:
            time.sleep(0.05)
            seen += p.stdout.read() or b""
        assert b"Agent name" in seen
        p.send_signal(getattr(signal, signame))
        assert p.wait(timeout=30) == status
        _, err = p.communicate()
        assert b"Traceback" not in err and b"internal error" not in err
        assert sorted(x.name for x in tmp_path.iterdir()) == []  # (no cache made either)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
