"""Package stage: build.json, the summary report, and publishing the output atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Output:
    """Files of a build, by path relative to the output directory."""

    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, rel: str, data: bytes) -> None:
        self.files[rel] = data

    def artifacts(self) -> list[dict[str, Any]]:
        return [{"path": rel, "size": len(data), "sha256": sha256(data)}
                for rel, data in sorted(self.files.items()) if rel != "build.json"]


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root).as_posix()): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def publish(out_dir: Path, files: dict[str, bytes], extra_dirs: dict[str, Path] | None = None) -> bool:
    """Replace ``out_dir`` with exactly ``files`` (and copies of extra_dirs). Returns False when identical.

    The new tree is written beside the old one and renamed into place, so an interrupted
    or failed build never leaves a half-written output.
    """
    if not extra_dirs and read_tree(out_dir) == files:
        return False
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_tree(tmp, files)
        for rel, src in (extra_dirs or {}).items():
            shutil.copytree(src, tmp / rel, dirs_exist_ok=True)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return True


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
