"""Package stage: build.json, the summary report, and the file-tree helpers the build publishes with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root).as_posix()): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def build_json(info: dict[str, Any]) -> bytes:
    return (json.dumps(info, indent=2, sort_keys=False) + "\n").encode()


def summary_table(rows: list[tuple[str, int, int]], budget: int) -> str:
    """module, .py bytes, .mpy bytes; and the total against the bundle budget."""
    width = max([len("module"), *(len(r[0]) for r in rows)])
    lines = [f"{'module':<{width}}  {'.py':>8}  {'.mpy':>8}"]
    for name, py, mpy in rows:
        lines.append(f"{name:<{width}}  {py:>8}  {mpy if mpy else '-':>8}")
    tpy = sum(r[1] for r in rows)
    tmpy = sum(r[2] for r in rows)
    lines.append(f"{'total':<{width}}  {tpy:>8}  {tmpy:>8}")
    pct = 100.0 * tmpy / budget if budget else 0.0
    lines.append(f".mpy bundle: {tmpy} of {budget} bytes ({pct:.1f}%), {budget - tmpy} bytes left")
    return "\n".join(lines)
