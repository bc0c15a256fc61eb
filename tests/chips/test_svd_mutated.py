"""Hostile variants of the test SVDs, seeded: leaf values replaced by empty, huge, negative,
non-numeric, `%s` or odd bit-range texts, elements removed or repeated, derivedFrom added with good
and bad references. The import, the chip database's encoding and the totals end in a chip (with
warnings) or a DiagnosticError at a line of the file, never another exception."""

from __future__ import annotations

import copy
import random
from collections import Counter
from pathlib import Path

from lxml import etree

from clawgen.chips.db import chip_from_json, chip_to_json
from clawgen.chips.svd import import_svd
from clawgen.diagnostics import DiagnosticError

SVD = Path(__file__).parent / "svd"
ODD = ("", " ", "-1", "0", "99999999999999999999999999999999999999999", "0x", "0xZZ", "#1x", "1.5", "%s", "[7:0]",
       "[0:7]", "[99:0]", "read-only", "bogus", "\u0663", "1e3", "0b102", "4294967296", "x" * 500)


def _mutate(root: etree._Element, rng: random.Random) -> None:
    elements = list(root.iter())
    leaves = [e for e in elements if len(e) == 0 and e is not root]
    named = [e for e in elements if e.find("name") is not None]
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.55 and leaves:
            rng.choice(leaves).text = rng.choice(ODD)
        elif op < 0.7 and len(elements) > 2:
            e = rng.choice(elements[1:])
            parent = e.getparent()
            if parent is not None:
                parent.remove(e)
                elements = list(root.iter())
        elif op < 0.85 and len(elements) > 2:
            e = rng.choice(elements[1:])
            parent = e.getparent()
            if parent is not None:
                parent.append(copy.deepcopy(e))
        elif named:
            e = rng.choice(named)
            ref = rng.choice(named).findtext("name") if rng.random() < 0.7 else rng.choice(["nope", "A.B.C", ""])
            e.set("derivedFrom", ref or "")


def test_mutated_svds_import_or_fail_with_a_diagnostic(tmp_path: Path) -> None:
    rng = random.Random(20261205)
    files = sorted(SVD.glob("*.svd"))
    outcomes: Counter[str] = Counter()
    for case in range(240):
        src = files[case % len(files)]
        root = etree.parse(str(src)).getroot()
        _mutate(root, rng)
        path = tmp_path / f"m{case % 4}.svd"
        path.write_bytes(etree.tostring(root))
        try:
            chip, warnings = import_svd(path, "fuzz")
        except DiagnosticError as e:
            assert all(d.line >= 1 for d in e.diagnostics), (case, [d.text() for d in e.diagnostics])
            outcomes["refused"] += 1
            continue
        except Exception as e:  # (the point of the test: nothing else may escape)
            raise AssertionError(f"case {case} ({src.name}): {type(e).__name__}: {e}\n"
                                 f"{path.read_text()[:3000]}") from None
        outcomes["warned" if warnings else "clean"] += 1
        doc = chip_to_json(chip)
        again = chip_from_json(doc)
        assert again.totals() == chip.totals(), case
    assert outcomes["refused"] and outcomes["warned"], outcomes  # both the refusals and the warnings are reached
