"""Package stage: the bundle's files, build.json (its one writer), the summary report, and the
file-tree helpers the build publishes with.

build.json records the board, MicroPython and .mpy versions, every artifact (path, size,
sha256), the buffer plan and the static RAM estimate; never a secret value (secrets appear as
their NVS key and spec path only).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clawgen import __version__
from clawgen.appmodules import AppModule
from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark
from clawgen.mcpserver import PATH as MCP_PATH
from clawgen.model import Plan
from clawgen.publish import walk
from clawgen.records import record

BUILD_JSON = "build.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    made: set[str] = set()
    for rel, data in files.items():
        parent = os.path.dirname(rel)
        if parent not in made:
            (root / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)


def _files(root: Path, skip: tuple[str, ...]) -> list[tuple[str, str]]:
    """(relative posix path, path) of each file below ``root`` (links to files too), minus ``skip``."""
    return [(rel, e.path) for rel, e in walk(root) if rel not in skip and e.is_file()]


def read_tree(root: Path, skip: tuple[str, ...] = (), written: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """Every file below ``root`` (minus ``skip``). ``written``: files the caller has just written
    there with write_tree, taken as they are instead of read back (the rest, read)."""
    if not root.is_dir():
        return {}
    out = {}
    known = written or {}
    for rel, path in _files(root, skip):
        if rel in known:
            out[rel] = known[rel]
            continue
        with open(path, "rb") as f:
            out[rel] = f.read()
    return out


def same_tree(root: Path, tree: Mapping[str, bytes], skip: tuple[str, ...] = ()) -> bool:
    """True when the files below ``root`` (minus ``skip``) are exactly ``tree``. Reads a file only
    when the names and sizes all match, build.json first: it holds every artifact's sha256, so a
    changed build almost always stops there without reading the rest."""
    if not root.is_dir():
        return False
    found = dict(_files(root, skip))
    if found.keys() != tree.keys():
        return False
    if any(os.stat(found[rel]).st_size != len(data) for rel, data in tree.items()):
        return False
    for rel in sorted(tree, key=lambda rel: rel != BUILD_JSON):
        with open(found[rel], "rb") as f:
            if f.read() != tree[rel]:
                return False
    return True


def build_json(info: dict[str, Any]) -> bytes:
    return (json.dumps(info, indent=2, sort_keys=False) + "\n").encode()


def read_build_json(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / BUILD_JSON).read_text(encoding="utf-8"))


@record(frozen=False)
class Bundle:
    """What goes into the output directory before the images: sources, .mpy, usermod."""

    files: dict[str, bytes]  # relative path -> bytes
    rows: list[tuple[str, int, int]]  # module, .py bytes, .mpy bytes (the summary table)
    mpy_bytes: int


def bundle_files(modules: list[AppModule], sources: Mapping[str, str], mpys: Mapping[str, bytes],
                 extra: Mapping[str, bytes]) -> Bundle:
    files: dict[str, bytes] = {}
    rows = []
    for m in sorted(modules, key=lambda m: m.name):
        src = sources[m.name].encode()
        files[m.source_rel] = src
        if m.compile:
            files[f"mpy/{m.name}.mpy"] = mpys[m.name]
        rows.append((m.name, len(src), len(mpys[m.name]) if m.compile else 0))
    files.update(extra)
    return Bundle(files, rows, sum(len(mpys[m.name]) for m in modules if m.compile))


def check_budget(plan: Plan, mpys: Mapping[str, bytes], bundle_bytes: int, where: Mark | None,
                 path: str) -> None:
    """The .mpy bundle must fit the board's budget (DiagnosticError naming the largest module)."""
    budget = plan.board.bundle_budget
    if bundle_bytes <= budget:
        return
    biggest = max(mpys, key=lambda n: len(mpys[n]))
    raise DiagnosticError(Diagnostic.at(
        where, path,
        f"app bundle overflows its {budget} bytes by {bundle_bytes - budget} bytes ({bundle_bytes} bytes of "
        f".mpy; the largest module is {biggest} with {len(mpys[biggest])}): narrow registers.allow, or drop "
        "capabilities or tools", file=plan.spec_file))


def build_info(plan: Plan, modules: list[AppModule], bundle: Bundle, mpy_cross_version: str,
               extra: Mapping[str, Any], tree: Mapping[str, bytes]) -> dict[str, Any]:
    """build.json's content; ``tree`` is every file of the output (the artifacts)."""
    return {
        "clawgen": __version__,
        "spec": plan.spec_file,
        "name": plan.name,
        "board": plan.board.name,
        "chip": plan.chip,
        "micropython": plan.board.micropython,
        "mpy": {"version": f"{plan.board.mpy_version[0]}.{plan.board.mpy_version[1]}",
                "arch": plan.board.mpy_arch, "mpy_cross": mpy_cross_version},
        "flash_size": plan.flash_size,
        "psram": plan.psram,
        "tools": [t.name for t in plan.tools],
        "buffers": {**plan.limits.buffers(), "history_messages": plan.limits.history_messages,
                    "history_message_bytes": plan.limits.history_message_bytes},
        "static_ram_bytes": plan.limits.static_ram(),
        "bundle": {"mpy_bytes": bundle.mpy_bytes, "budget_bytes": plan.board.bundle_budget},
        "secrets": [{"nvs_key": s.key, "spec_path": s.spec_path} for s in plan.secrets],
        "device_files": {m.device_path: m.artifact for m in sorted(modules, key=lambda m: m.device_path)},
        "build_id": bundle_id(modules, tree),
        **({"ota": {"port": plan.ota.port, "confirm_timeout": plan.ota.confirm_timeout}} if plan.ota else {}),
        **({"mcp": {"port": plan.mcp.port, "path": MCP_PATH}} if plan.mcp else {}),
        **extra,
        "artifacts": [{"path": rel, "size": len(data), "sha256": sha256(data)}
                      for rel, data in sorted(tree.items())],
    }


def bundle_id(modules: list[AppModule], tree: Mapping[str, bytes]) -> str:
    """The bundle's stable id: sha256 over each device file's path and content hash, in path order
    (what OTA installs and /status shows; the same sources give the same id)."""
    h = hashlib.sha256()
    for m in sorted(modules, key=lambda m: m.device_path):
        h.update(f"{m.device_path} {sha256(tree[m.artifact])}\n".encode())
    return h.hexdigest()


def write_build_json(out_dir: Path, info: dict[str, Any]) -> bytes:
    """Write build.json into ``out_dir``; -> its bytes."""
    data = build_json(info)
    (out_dir / BUILD_JSON).write_bytes(data)
    return data


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
