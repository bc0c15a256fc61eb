"""Boards: one data file per board in clawgen/boards/*.yaml."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from clawgen.diagnostics import UsageError, did_you_mean
from clawgen.resources import boards_dir

if TYPE_CHECKING:  # (imported when a board is loaded: `build --board B` of an unchanged spec needs names only)
    from clawgen.model import Board


def _fast_loader() -> Any:
    """libyaml when available: the data files are ours and trusted to be plain YAML."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def __getattr__(name: str) -> Any:
    """``FAST_LOADER`` is made on first use, so listing the boards does not import yaml."""
    if name == "FAST_LOADER":
        return _fast_loader()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_SIZE_RE = re.compile(r"^(\d+)\s*(MB|MiB|KB|KiB)$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'8MB' -> 8 MiB in bytes (flash sizes are binary megabytes)."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"not a size: {text!r} (expected e.g. 4MB)")
    n = int(m.group(1))
    return n * (1 << 20 if m.group(2).upper().startswith("M") else 1 << 10)


def format_size(n: int) -> str:
    return f"{n >> 20}MB" if n % (1 << 20) == 0 else f"{n >> 10}KB"


@functools.cache
def board_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in boards_dir().glob("*.yaml")))


@functools.cache
def load_board(name: str) -> Board:
    if name not in board_names():
        raise UsageError(f"unknown board '{name}'{did_you_mean(name, board_names())}; "
                         f"known boards: {', '.join(board_names())}")
    import yaml

    from clawgen.model import Board

    data = yaml.load((boards_dir() / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_fast_loader())
    return Board(
        name=data["name"],
        title=data["title"],
        chip=data["chip"],
        chip_id=int(data["chip_id"]),
        mpy_arch=data["mpy_arch"],
        micropython=str(data["micropython"]),
        mpy_version=(int(data["mpy_version"][0]), int(data["mpy_version"][1])),
        firmware=dict(data["firmware"]),
        flash_sizes=tuple(parse_size(s) for s in data["flash"]["sizes"]),
        default_flash=parse_size(data["flash"]["default"]),
        psram_supported=bool(data["psram"]["supported"]),
        psram_default=bool(data["psram"]["default"]),
        partitions=dict(data["partitions"]),
        filesystem=dict(data["filesystem"]),
        heap={k: int(v) for k, v in data["heap"].items()},
        bundle_budget=int(data["bundle_budget"]),
        limits={k: int(v) for k, v in data["limits"].items()},
        data=data,
    )


def all_boards() -> list[Board]:
    return [load_board(n) for n in board_names()]
