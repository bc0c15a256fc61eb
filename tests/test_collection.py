"""The whole suite is what CI runs: every directory of tests is collected by a plain `pytest`.

(pytest's default norecursedirs holds "build", which skipped tests/build for several stops without
a word: pyproject.toml now lists the defaults without it.)"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_every_directory_of_tests_is_collected() -> None:
    expected = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "tests").rglob("test_*.py")
                if "golden" not in p.parts}
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    collected = {line.split("::", 1)[0].rsplit("/", 1)[0] for line in r.stdout.splitlines() if "::" in line}
    assert expected - collected == set(), f"never collected: {sorted(expected - collected)}"
    assert "tests/build" in collected
