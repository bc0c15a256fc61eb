#!/usr/bin/env python3
"""Regenerate the built-in chip databases (clawgen/chips/builtin/<chip>.json.gz) from
Espressif's SVD files with clawgen's own importer.

    python scripts/make_builtin_chips.py [SVD_DIR]     # default: ../shared/svd

This is the one place that reads the vendor SVDs. Facts are kept (names, addresses, bit ranges,
access, reset values, enumerations); vendor description text is dropped (--no-descriptions):
our own short descriptions live in <chip>.notes.yaml. Espressif's files declare no readAction
or modifiedWriteValues, so the few we rely on are added here from the chips' documented
behaviour (see docs/registers.md, "Built-in chips").
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clawgen.chips.db import write_chip  # noqa: E402
from clawgen.chips.model import Chip, Register  # noqa: E402
from clawgen.chips.policy import compile_policy, default_policy  # noqa: E402
from clawgen.chips.svd import import_svd  # noqa: E402

CHIPS = ("esp32s3", "esp32", "esp32c3", "esp32c6")
OUT = REPO / "clawgen" / "chips" / "builtin"
MAX_BYTES = 400_000

# Register path globs -> modifiedWriteValues for all their fields: set/clear aliases and
# interrupt-clear registers act on 1 bits only, so 0 is their no-effect value.
MODIFIED_WRITES = (
    ("*.*_W1TS", "oneToSet"),
    ("*.*_W1TC", "oneToClear"),
    ("*.INT_CLR*", "oneToClear"),
    ("*.*_INT_CLR*", "oneToClear"),
)
# Registers whose read pops data from a FIFO.
READ_SIDE_EFFECTS = ("UART*.FIFO", "I2C*.DATA", "LP_UART.FIFO", "LP_I2C*.DATA")


def _annotate(chip: Chip) -> tuple[int, int]:
    """Add the readAction/modifiedWriteValues facts above; returns (mwv count, readAction count)."""
    n_mwv = n_ra = 0
    seen: set[int] = set()
    for ri in chip.iter_registers():
        reg: Register = ri.register
        if id(reg) in seen:  # arrays and derived peripherals share one Register object
            continue
        path = ri.path.upper()
        for pat, mwv in MODIFIED_WRITES:
            if fnmatch.fnmatchcase(path, pat):
                seen.add(id(reg))
                reg.modified_write_values = mwv
                for f in reg.fields:
                    f.modified_write_values = mwv
                n_mwv += 1
                break
        if any(fnmatch.fnmatchcase(path, pat) for pat in READ_SIDE_EFFECTS):
            seen.add(id(reg))
            reg.read_action = "modify"
            n_ra += 1
    return n_mwv, n_ra


def main(argv: list[str]) -> int:
    svd_dir = Path(argv[1]) if len(argv) > 1 else REPO.parent / "shared" / "svd"
    status = 0
    for name in CHIPS:
        src = svd_dir / f"{name}.svd"
        chip, warnings = import_svd(src, name, keep_descriptions=False, display_path=f"{name}.svd")
        n_mwv, n_ra = _annotate(chip)
        out = write_chip(chip, OUT / f"{name}.json.gz")
        out.chmod(0o644)
        size = out.stat().st_size
        # The default policy as if a user wrote it: every entry must match something.
        table, diags = compile_policy(chip, {"defaults": False, **default_policy(name)})
        errors = [d for d in diags if d.severity == "error"]
        print(f"{name}: {len(chip.peripherals)} peripherals, {chip.register_count()} registers, "
              f"{len(warnings)} import warnings, {n_mwv} write-1 registers, {n_ra} FIFO registers; "
              f"{out.relative_to(REPO)} {size} bytes; default policy: {len(table.entries)} registers")
        for d in diags:
            print("  " + d.text())
        if size > MAX_BYTES or errors:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
