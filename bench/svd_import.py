"""SVD import benchmark: prints the figures the issue asks for.

1. esp32s3.svd: import time vs a bare lxml parse of the same file (target: within 3x); then, for
   the record, what `clawgen svd import` spends after the import writing the chip database.
2. Every file of the pyocd 0.46.0 corpus (and esp32s3.svd): the same ratio (target: max <= 3x),
   four ways (``file_ratios``): "paired", one parse and one import side by side in this process,
   the median over rounds (drift of the machine's speed cancels out of each round); "fresh", the
   same with one run per new interpreter, as `clawgen svd import` runs; and, for comparison with
   earlier notes, "seq" and "alt", best-ofs of each side taken at different moments, which a
   machine whose speed drifts skews (they swing between runs of this script).
3. nrf54lm20a.svd (4.4 MB, in the pyocd corpus): time and peak memory (target: < 10 s, < 1 GB).
4. The whole corpus: time and peak memory per file, each in a fresh process.
5. With --readers (only that section): other ways of reading the same XML, each timed against the
   bare parse in one run, to show where an import's time floor lies (see ``bench_readers``).
6. With --instructions [NAME ...] (only that section): instructions executed by one import and by
   one bare parse (valgrind's callgrind), and their ratio: no figure of the issue (that is time),
   but the same from run to run, so that a change to the importer of 1% shows, which the
   timings' noise (10-25% between runs on a shared machine) hides.
7. With --phases [NAME ...] (only that section): where one import's time goes, stage by stage
   (``import_svd``'s own functions run one after another, and the import with its plain fields
   left out), each as a ratio to the bare parse taken side by side (``phase_ratios``).
8. With --identity OUT.json (only that): a hash of every output of the import of every file (the
   chip database JSON, the whole model, its totals and every diagnostic; with and without
   descriptions) for the corpus, the test SVDs and ../shared/svd; two such files from before and
   after a change to the importer must be equal (``diff``).

The import is what ``import_svd`` runs: the compiled twin of the importer when clawgen was installed
with it (setup.py; the first line printed says which), else svd.py's own code.

Usage:  python bench/svd_import.py [--esp32s3 PATH] [--corpus DIR] [--skip-corpus] [--skip-memory]
                                   [--repeat N] [--all] [--readers] [--instructions [NAME ...]]
                                   [--phases [NAME ...]] [--identity OUT.json]
PATH defaults to ../shared/svd/esp32s3.svd (beside the checkout) when present. The corpus defaults
to the one the tests download (tests/chips/conftest.py; $CLAWGEN_TEST_CACHE or
~/.cache/clawgen-tests). Times are CPU seconds (process time, best of N) so that a busy machine
skews them less; each corpus file is imported in a fresh child process to measure its own peak
memory (VmHWM, or ru_maxrss off Linux, of that child; it includes the interpreter, ~20 MB).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The corpus files with the highest import/parse ratios (and one of many small registers).
_READER_FILES = ("max32665.svd", "LPC176x5x_v0.2.svd", "Musca_S1.svd")

_CHILD = r"""
import json, resource, sys, time
from clawgen.chips.svd import import_svd
t0 = time.process_time(); w0 = time.perf_counter()
chip, warnings = import_svd(sys.argv[1], "bench")
cpu = time.process_time() - t0; wall = time.perf_counter() - w0
n = 0
for _ in chip.iter_registers():
    n += 1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:  # VmHWM restarts at exec; ru_maxrss may carry the parent's peak over on Linux
    with open("/proc/self/status") as f:
        peak = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    pass
print(json.dumps({"cpu": cpu, "wall": wall, "registers": n, "peripherals": len(chip.peripherals),
                  "warnings": len(warnings), "peak_mb": peak}))
"""


def best_of(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


_ONE_SHOT = r"""
import sys, time
from lxml import etree
from clawgen.chips.svd import import_svd
t = time.process_time()
result = etree.parse(sys.argv[2]) if sys.argv[1] == "parse" else import_svd(sys.argv[2], "bench")
del result
print(time.process_time() - t)
"""


def one_shot(what: str, path: Path) -> float:
    """CPU seconds of one parse or import in a fresh interpreter (what `clawgen svd import` does)."""
    r = subprocess.run([sys.executable, "-c", _ONE_SHOT, what, str(path)], capture_output=True, text=True,
                       cwd=REPO, check=True, timeout=300)
    return float(r.stdout)


def bench_esp32s3(path: Path) -> None:
    from lxml import etree

    from clawgen.chips.svd import import_svd

    # Both include freeing what they built (the parse's tree; the import's tree and nodes), as
    # a user's run would. "Warm": best of 9 back to back in this process (the allocator reuses
    # the memory of the previous run); "cold": best of 5 fresh processes, one run each. (Best-ofs
    # taken at different moments: the corpus table's "paired" and "fresh" are the steadier figures.)
    size = f"esp32s3.svd ({path.stat().st_size / 1e6:.1f} MB)"
    parse = best_of(lambda: etree.parse(str(path)), 9)
    imp = best_of(lambda: import_svd(path, "esp32s3"), 9)
    print(f"{size} warm: lxml parse {parse * 1000:.0f} ms, import {imp * 1000:.0f} ms, "
          f"ratio {imp / parse:.2f}x (target <= 3x)")
    parse = min(one_shot("parse", path) for _ in range(5))
    imp = min(one_shot("import", path) for _ in range(5))
    print(f"{size} cold: lxml parse {parse * 1000:.0f} ms, import {imp * 1000:.0f} ms, "
          f"ratio {imp / parse:.2f}x")
    # What `clawgen svd import` does after the import: encode the chip database (JSON, gzip -9).
    # Not part of the ratio above (the figure is the import against the parse); shown so
    # that the whole command's cost is on record.
    import gzip
    import json

    from clawgen.chips.db import chip_to_json

    chip, _ = import_svd(path, "esp32s3")
    parse = best_of(lambda: etree.parse(str(path)), 5)
    doc_t = best_of(lambda: chip_to_json(chip), 5)
    raw = json.dumps(chip_to_json(chip), separators=(",", ":"), ensure_ascii=False).encode()
    dump_t = best_of(lambda: json.dumps(chip_to_json(chip), separators=(",", ":"), ensure_ascii=False).encode(), 5)
    gz_t = best_of(lambda: gzip.compress(raw, compresslevel=9, mtime=0), 5)
    print(f"{size} database write (after the import): to JSON {dump_t * 1000:.0f} ms "
          f"({doc_t * 1000:.0f} ms of it building the document), gzip -9 {gz_t * 1000:.0f} ms; "
          f"{(dump_t + gz_t) / parse:.2f}x the bare parse")


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` (None without glibc): it hands the memory that earlier runs freed
    back to the system and merges what stays, so that the next run starts from the same state of
    the C heap, whatever ran before it."""
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except AttributeError:  # not glibc
        return None


def file_ratios(path: Path, repeat: int) -> dict[str, float]:
    """The import of ``path`` against a bare lxml parse of it, measured in this process and in new
    ones. Returns CPU seconds (best of ``repeat``) and ratios:

    - "seq": ``repeat`` parses back to back, then ``repeat`` imports (the method of the esp32s3
      "warm" figure); "alt": parse and import alternated (a burst of load hits both). Each side is
      a best-of taken at another moment than the other side, and both depend on what the C heap
      looks like after the run before (measured on the corpus: in "alt" the parse, run on the heap
      the import left, takes 20-40% less than in "seq" on the large files, and the import, run
      after a parse, 10-20% more than after an import). On a machine whose speed drifts (a shared
      VM: the same parse took 18 ms and 36 ms a minute apart) the two best-ofs can come from
      different speeds: these figures swing by 1x between runs of this script.
    - "paired" (glibc only): ``2 * repeat + 1`` rounds of one parse and one import side by side,
      in alternating order, each run after ``malloc_trim(0)`` (untimed) so that both start from the
      same state of the C heap; the median of the rounds' ratios. Two runs a few milliseconds
      apart see the same machine: drift cancels out of each round's ratio. The in-process figure.
    - "fresh": the same pairing with one parse or one import per new interpreter (``one_shot``),
      as `clawgen svd import` runs (both include libxml2's first-parse setup and a C heap no
      earlier run shaped); the median of ``min(repeat, 5)`` rounds' ratios."""
    from lxml import etree

    from clawgen.chips.svd import import_svd

    def parse() -> None:
        etree.parse(str(path))

    def imp() -> None:
        import_svd(path, "bench")

    out = {"seq_parse": best_of(parse, repeat), "seq_import": best_of(imp, repeat)}
    alt_parse = alt_import = float("inf")
    for _ in range(repeat):
        alt_parse = min(alt_parse, best_of(parse, 1))
        alt_import = min(alt_import, best_of(imp, 1))
    out.update(alt_parse=alt_parse, alt_import=alt_import)
    trim = malloc_trim()
    if trim is not None:
        def trimmed(fn: Callable[[], None]) -> float:
            trim(0)
            return best_of(fn, 1)

        ratios = []
        for i in range(2 * repeat + 1):
            if i % 2:
                p = trimmed(parse)
                ratios.append(trimmed(imp) / p)
            else:
                t = trimmed(imp)
                ratios.append(t / trimmed(parse))
        out["paired"] = statistics.median(ratios)
    fresh = []
    for i in range(min(repeat, 5)):
        if i % 2:
            p = one_shot("parse", path)
            fresh.append(one_shot("import", path) / p)
        else:
            t = one_shot("import", path)
            fresh.append(t / one_shot("parse", path))
    out["fresh"] = statistics.median(fresh)
    return out


def bench_ratios(files: list[Path], repeat: int, show_all: bool) -> None:
    rows = []
    for p in files:
        r = file_ratios(p, repeat)
        r.setdefault("paired", float("nan"))
        rows.append((r["seq_import"] / r["seq_parse"], r["alt_import"] / r["alt_parse"], p.name, r))
    rows.sort(key=lambda row: -max(row[3]["paired"], row[3]["fresh"]))
    shown = rows if show_all else rows[:10] + [r for r in rows[10:] if r[2] == "esp32s3.svd"]
    print(f"\nimport vs bare lxml parse, {len(rows)} files ({'all' if show_all else 'worst 10 and esp32s3'}); "
          f"paired: median of {2 * repeat + 1} side-by-side rounds in this process (C heap trimmed before each "
          f"run), fresh: median of {min(repeat, 5)} side-by-side rounds of one run per new process; seq/alt: "
          f"best of {repeat} of each side at different moments (see file_ratios: they swing between runs)")
    print(f"{'file':<28} {'parse ms':>9} {'import ms':>10} {'seq':>6} {'alt':>6} {'paired':>7} {'fresh':>6}")
    for seq, alt, name, r in shown:
        print(f"{name:<28} {r['seq_parse'] * 1000:9.1f} {r['seq_import'] * 1000:10.1f} {seq:6.2f} {alt:6.2f} "
              f"{r['paired']:7.2f} {r['fresh']:6.2f}")
    summaries = [("paired", "in this process, side by side", lambda row: row[3]["paired"]),
                 ("fresh", "one run per new process, as `clawgen svd import` runs", lambda row: row[3]["fresh"]),
                 ("seq", "best-ofs back to back", lambda row: row[0]),
                 ("alt", "best-ofs alternated", lambda row: row[1])]
    for label, how, key in summaries:
        values = sorted(((key(row), row[2]) for row in rows if key(row) == key(row)), reverse=True)
        if not values:
            continue
        print(f"{label} ({how}): max ratio {values[0][0]:.2f}x ({values[0][1]}), median "
              f"{values[len(values) // 2][0]:.2f}x, {sum(1 for v, _ in values if v > 3)} of {len(values)} "
              f"file(s) above 3x (target: max <= 3x)")


# One line per <field>: its usual five children as columns (what the importer's fast path reads).
_FIELDS_XSLT = b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text"/>
<xsl:template match="/"><xsl:for-each select="//fields/field"><xsl:value-of select="name"/>|<xsl:value-of
select="bitOffset"/>|<xsl:value-of select="bitWidth"/>|<xsl:value-of select="access"/>|<xsl:value-of
select="description"/><xsl:text>&#10;</xsl:text></xsl:for-each></xsl:template></xsl:stylesheet>"""
# A field of the usual children in any order, from a serialized <fields> (tostring); the last of a
# repeated child wins, as in a dict.
_FIELD_RE = re.compile(r"<field>(?:<name>([^<&]*)</name>|<description>([^<&]*)</description>|"
                       r"<bitOffset>([^<&]*)</bitOffset>|<bitWidth>([^<&]*)</bitWidth>|"
                       r"<access>([^<&]*)</access>)+</field>")


class _NoOpTarget:
    """A parser target that does nothing: the floor of any SAX-like (callback) reading."""

    def start(self, tag: str, attrib: dict) -> None:
        pass

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass

    def close(self) -> None:
        return None


def _timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    gc.disable()  # as in the import
    try:
        return best_of(fn, repeat)
    finally:
        gc.enable()


def _reader_times(path: Path, repeat: int) -> tuple[float, dict[str, float]]:
    """CPU seconds of the bare parse of ``path`` and of each way of reading it (see bench_readers)."""
    from lxml import etree

    from clawgen.chips.svd import import_svd

    xslt = etree.XSLT(etree.XML(_FIELDS_XSLT))
    texts = etree.XPath("//fields/field/*/text()", smart_strings=False)
    data = path.read_bytes()
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False, no_network=True,
                             load_dtd=False, remove_blank_text=True)
    root = etree.fromstring(data, parser)
    containers = list(root.iter("fields"))

    def dicts() -> None:
        for fc in containers:
            for c in fc:
                {x.tag: x.text for x in c}

    def regex() -> None:
        for fc in containers:
            _FIELD_RE.findall(etree.tostring(fc, encoding=str, with_tail=False))

    def target() -> None:
        etree.fromstring(data, etree.XMLParser(target=_NoOpTarget(), remove_blank_text=True, resolve_entities=False,
                                               no_network=True))

    def iterparse() -> None:
        for _, el in etree.iterparse(str(path), events=("end",), tag="field", remove_blank_text=True):
            {x.tag: x.text for x in el}

    # The floor of any importer of this design: read the file, parse it, look at every element's
    # tag and text once (the cheapest way lxml offers: one flat iteration), create as many model
    # objects as the import does (each with the arguments of a real one) and hash the file; all
    # that an import must do before deciding anything about a single element.
    import hashlib

    from clawgen.chips.model import EnumValue, Field, Register

    chip, _ = import_svd(path, "bench")
    regs: dict[int, Register] = {}
    for per in chip.peripherals:
        stack = [(per.registers, per.clusters)]
        while stack:
            rs, cs = stack.pop()
            for r in rs:
                regs[id(r)] = r
            stack.extend((c.registers, c.clusters) for c in cs)
    n_regs = len(regs)
    n_fields = len({id(f) for r in regs.values() for f in r.fields})
    n_values = len({id(v) for r in regs.values() for f in r.fields for e in f.enums for v in e.values})
    del chip, regs

    def floor() -> None:
        with open(path, "rb") as f:
            raw = f.read()
        tree = etree.fromstring(raw, parser)
        for el in tree.iter():
            el.tag  # noqa: B018
            el.text  # noqa: B018
        objs: list = [Field("N", 1, 2, "read-write", None, None, None, [], "d", None) for _ in range(n_fields)]
        objs += [Register("N", 4, 32, "read-write", None, 0, 0xFFFFFFFF, None, [], None, None, None, None, None, "d")
                 for _ in range(n_regs)]
        objs += [EnumValue("N", 1, 1, False, "d") for _ in range(n_values)]
        hashlib.sha256(raw).hexdigest()

    bare = _timed(lambda: etree.parse(str(path)), repeat)
    return bare, {
        "floor of any import": _timed(floor, repeat),
        "import_svd (all of it)": _timed(lambda: import_svd(path, "bench"), repeat),
        "import's own parse": _timed(lambda: etree.fromstring(data, parser), repeat),
        "field child dicts": _timed(dicts, repeat),
        "XSLT field lines": _timed(lambda: str(xslt(root)), repeat),
        "XPath field texts": _timed(lambda: texts(root), repeat),
        "tostring + regex": _timed(regex, repeat),
        "target parser, no-op": _timed(target, repeat),
        "iterparse fields": _timed(iterparse, repeat),
    }


def bench_readers(files: list[Path], repeat: int) -> None:
    """Ways of reading the XML that were weighed for the importer, each timed (CPU, best of
    ``repeat``, cyclic GC off as in the import) against the bare parse, in one run. The rows after
    the import's own parse time only the reading of the <field>s (the bulk of an SVD) on the parsed
    tree, except the target and iterparse rows, which parse too. The import must stay within 3x
    the bare parse: what reading the fields costs here is spent before any model object is built."""
    rows = [
        ("import_svd (all of it)", "the whole import, for reference"),
        ("floor of any import", "read + parse + every element's tag/text once + the model's objects + sha256"),
        ("import's own parse", "fromstring, remove_blank_text"),
        ("field child dicts", "{tag: text} of each field's children via lxml proxies (the fast path)"),
        ("XSLT field lines", "libxslt writes one text line per field (5 columns); not yet split"),
        ("XPath field texts", "every field child's text, smart_strings=False, without the tags"),
        ("tostring + regex", "each <fields> serialized, its fields matched by a regex"),
        ("target parser, no-op", "the parse with SAX-like callbacks that do nothing"),
        ("iterparse fields", "the parse by iterparse(tag='field') + the child dicts"),
    ]
    print(f"\nways of reading the XML, x the bare parse of the same file (CPU, best of {repeat}):")
    print(f"{'reader':<24} " + " ".join(f"{p.name[:16]:>16}" for p in files))
    measured = [_reader_times(p, repeat) for p in files]
    print(f"{'bare parse (ms)':<24} " + " ".join(f"{bare * 1000:16.1f}" for bare, _ in measured))
    for key, what in rows:
        print(f"{key:<24} " + " ".join(f"{t[key] / bare:15.2f}x" for bare, t in measured) + f"   {what}")
    print(f"{'import - floor':<24} "
          + " ".join(f"{(t['import_svd (all of it)'] - t['floor of any import']) / bare:15.2f}x" for bare, t in measured)
          + "   the import's decisions: what each element means, checks, inheritance, memos")
    # What no other way of reading the fields can go below: the import with its field reading free.
    print(f"{'import - field dicts':<24} "
          + " ".join(f"{(t['import_svd (all of it)'] - t['field child dicts']) / bare:15.2f}x" for bare, t in measured)
          + "   the import if reading the fields cost nothing (target <= 3x)")


def phase_ratios(path: Path, rounds: int) -> dict[str, float]:
    """Where one import of ``path`` spends its time: each stage as a ratio to a bare lxml parse of
    the same file, measured side by side as "paired" is (each run after ``malloc_trim``, the median
    of ``rounds`` rounds' ratios). The stages are ``import_svd``'s own functions, run cumulatively
    (each row is the run up to that stage minus the run up to the one before); "plain fields" is
    the whole import minus the same import with ``_Importer.shared_fields`` answering "no fields"
    (the fast path's fields, the bulk of most files, not built)."""
    from lxml import etree

    from clawgen.chips import svd

    trim = malloc_trim() or (lambda _n: None)

    def upto(stage: int) -> None:
        data = svd.read_svd_bytes(path, path.name)
        root = svd.parse_svd(data, path.name)
        if stage == 0:
            return
        imp = svd._Importer(path.name, True)
        with svd._importing(imp):
            dev, nodes = svd._read_device(imp, root)
            if stage >= 2:
                svd._build_peripherals(imp, dev, nodes)

    def without_fields() -> None:
        real = svd._Importer.shared_fields
        svd._Importer.shared_fields = lambda self, containers, access, size: ([], True, access or "read-write")
        try:
            svd._import_svd(path, "bench")  # (svd.py's code, which the patch reaches)
        finally:
            svd._Importer.shared_fields = real

    runs = {
        "bare": lambda: etree.parse(str(path)),
        "parse": lambda: upto(0),
        "read": lambda: upto(1),
        "build": lambda: upto(2),
        "import": lambda: svd._import_svd(path, "bench"),  # (interpreted, as the stages above)
        "no fields": without_fields,
    }
    per_round: dict[str, list[float]] = {k: [] for k in runs if k != "bare"}
    for i in range(rounds):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        t: dict[str, float] = {}
        for key in order:
            trim(0)
            t[key] = best_of(runs[key], 1)
        for key in per_round:
            per_round[key].append(t[key] / t["bare"])
    med = {k: statistics.median(v) for k, v in per_round.items()}
    return {
        "the import's parse (read_svd_bytes, parse_svd)": med["parse"],
        "+ nodes (_read_device)": med["read"] - med["parse"],
        "+ peripherals (_build_peripherals)": med["build"] - med["read"],
        "  of which the plain fields": med["import"] - med["no fields"],
        "+ chip, sha256, diagnostics": med["import"] - med["build"],
        "whole import": med["import"],
    }


def bench_phases(files: list[Path], rounds: int) -> None:
    print(f"\nwhere the import's time goes, x the bare parse of the same file (CPU, side by side, median of "
          f"{rounds} rounds; stages cumulative, see phase_ratios):")
    measured = [(p.name, phase_ratios(p, rounds)) for p in files]
    print(f"{'stage':<48} " + " ".join(f"{n[:14]:>14}" for n, _ in measured))
    for key in measured[0][1]:
        print(f"{key:<48} " + " ".join(f"{r[key]:13.2f}x" for _, r in measured))


_INSTR_CHILD = r"""
import sys
from lxml import etree
from clawgen.chips.svd import import_svd
what, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = (lambda: etree.parse(path)) if what == "parse" else (lambda: import_svd(path, "bench"))
run()  # (a first run outside the count's difference: caches, lazy imports)
for _ in range(runs):
    run()
"""


def instructions(what: str, path: Path) -> float:
    """Instructions (callgrind's Ir) of one parse or import of ``path``: a process with three runs
    minus one with one run, halved (what the interpreter's start and the first run cost drops out)."""
    counts = []
    for runs in (0, 2):
        r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                            "-c", _INSTR_CHILD, what, str(path), str(runs)],
                           capture_output=True, text=True, cwd=REPO, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
        m = re.search(r"Collected : (\d+)", r.stderr)
        if r.returncode != 0 or m is None:
            raise RuntimeError(f"callgrind failed on {path.name}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / 2


def bench_instructions(files: list[Path]) -> None:
    """Import vs bare parse in instructions executed (not time: see the module's docstring, 6)."""
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (callgrind) on PATH")
        return
    print("\ninstructions of one import vs one bare lxml parse (callgrind; the same from run to run; not the "
          "issue's figure, which is time: use it to compare versions of the importer):")
    for p in files:
        parse, imp = instructions("parse", p), instructions("import", p)
        print(f"{p.name:<28} parse {parse / 1e6:8.1f}M  import {imp / 1e6:8.1f}M  ratio {imp / parse:.3f}x", flush=True)


def write_identity(out: Path, files: list[Path]) -> None:
    """For each file, with and without descriptions: a hash of the chip database JSON, the model's
    repr (every object of it), its totals and every diagnostic (or of the error), and how many
    diagnostics there are. The model's sharing of objects is left out: equal values may be built
    once or twice without any output changing."""
    import hashlib

    from clawgen.chips.db import chip_to_json
    from clawgen.chips.svd import import_svd
    from clawgen.diagnostics import DiagnosticError

    result: dict[str, list] = {}
    for p in files:
        for keep in (True, False):
            try:
                chip, diags = import_svd(p, "identity", keep_descriptions=keep, display_path=p.name)
            except DiagnosticError as e:
                result[f"{p.name}:{keep}"] = ["error", hashlib.sha256(str(e).encode()).hexdigest()]
                continue
            h = hashlib.sha256(json.dumps(chip_to_json(chip), sort_keys=True).encode())
            h.update(repr(chip).encode())
            h.update(repr(chip.totals()).encode())
            for d in diags:
                h.update(d.text().encode() + b"\n")
            result[f"{p.name}:{keep}"] = [h.hexdigest(), len(diags)]
    out.write_text(json.dumps(result, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{out}: {len(result)} imports ({len(files)} files, with and without descriptions)")


def run_child(path: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, cwd=REPO,
                       timeout=600)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout)


def default_corpus() -> Path | None:
    sys.path.insert(0, str(REPO / "tests" / "chips"))
    try:
        import conftest  # the tests' pinned, checksummed download

        return conftest.obtain_corpus()
    except Exception as e:
        print(f"corpus unavailable: {e}")
        return None


def pick_files(names: list[str], args: argparse.Namespace) -> list[Path]:
    """The files named (paths, or names in the corpus); none named: esp32s3 and the worst corpus files."""
    corpus = args.corpus or default_corpus()
    names = names or ([str(args.esp32s3)] if args.esp32s3.is_file() else []) + list(_READER_FILES)
    picked = []
    for n in names:
        p = Path(n) if Path(n).is_file() else (corpus / n if corpus is not None else Path(n))
        if p.is_file():
            picked.append(p)
        else:
            print(f"{n}: not found")
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--esp32s3", type=Path, default=REPO.parent / "shared" / "svd" / "esp32s3.svd")
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--skip-corpus", action="store_true", help="only the esp32s3 figures")
    ap.add_argument("--skip-memory", action="store_true", help="no per-file peak memory table")
    ap.add_argument("--repeat", type=int, default=5, help="runs per file for the ratios (best of)")
    ap.add_argument("--all", action="store_true", help="print the ratio of every corpus file")
    ap.add_argument("--readers", action="store_true",
                    help="only compare other ways of reading the XML (esp32s3 and the worst corpus files)")
    ap.add_argument("--instructions", nargs="*", metavar="NAME",
                    help="only count instructions of import and parse (corpus file names or paths; "
                         "default: esp32s3 and the worst corpus files)")
    ap.add_argument("--phases", nargs="*", metavar="NAME",
                    help="only show where an import's time goes, stage by stage (corpus file names or paths; "
                         "default: esp32s3 and the worst corpus files)")
    ap.add_argument("--identity", type=Path, metavar="OUT.json",
                    help="only write a hash of every import's outputs (to compare before and after a change)")
    args = ap.parse_args()
    from clawgen.chips.svd import implementation

    # (import_svd runs the compiled twin when there is a current one, setup.py; --phases and
    # --readers time svd.py's own functions, interpreted, stage by stage)
    print(f"SVD importer: {implementation()}")
    if args.identity is not None:
        corpus = args.corpus or default_corpus()
        files = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith(".")) if corpus else []
        for extra in (REPO / "tests" / "chips" / "svd", REPO.parent / "shared" / "svd"):
            files += sorted(extra.glob("*.svd")) if extra.is_dir() else []
        write_identity(args.identity, files)
        return
    if args.instructions is not None:
        bench_instructions(pick_files(args.instructions, args))
        return
    if args.phases is not None:
        bench_phases(pick_files(args.phases, args), 2 * args.repeat + 1)
        return
    if args.readers:
        corpus = args.corpus or default_corpus()
        picked = [args.esp32s3] if args.esp32s3.is_file() else []
        if corpus is not None:
            picked += [p for n in _READER_FILES if (p := corpus / n).is_file()]
        bench_readers(picked, args.repeat)
        return
    if args.esp32s3.is_file():
        bench_esp32s3(args.esp32s3)
    else:
        print(f"{args.esp32s3} not found: pass --esp32s3 PATH to measure the esp32s3 ratio")
    if args.skip_corpus:
        return
    corpus = args.corpus or default_corpus()
    if corpus is None:
        return
    files = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))
    bench_ratios(files + ([args.esp32s3] if args.esp32s3.is_file() else []), args.repeat, args.all)
    nrf = corpus / "nrf54lm20a.svd"
    if nrf.is_file():
        r = run_child(nrf)
        print(f"nrf54lm20a.svd ({nrf.stat().st_size / 1e6:.1f} MB): {r.get('cpu', 0):.2f} s CPU "
              f"({r.get('wall', 0):.2f} s wall), peak {r.get('peak_mb', 0):.0f} MB, {r.get('registers')} registers "
              f"(targets < 10 s, < 1 GB) {r.get('error', '')}")
    if args.skip_memory:
        return
    print(f"\n{'file':<28} {'MB':>6} {'cpu s':>7} {'peak MB':>8} {'periph':>6} {'registers':>9} {'warn':>5}")
    total_cpu = 0.0
    worst_peak = 0.0
    t0 = time.perf_counter()
    for p in files:
        r = run_child(p)
        if "error" in r:
            print(f"{p.name:<28} ERROR {r['error']}")
            continue
        total_cpu += r["cpu"]
        worst_peak = max(worst_peak, r["peak_mb"])
        print(f"{p.name:<28} {p.stat().st_size / 1e6:6.1f} {r['cpu']:7.2f} {r['peak_mb']:8.0f} "
              f"{r['peripherals']:6} {r['registers']:9} {r['warnings']:5}")
    print(f"corpus: {len(files)} files, import CPU total {total_cpu:.1f} s, worst peak {worst_peak:.0f} MB, "
          f"wall {time.perf_counter() - t0:.0f} s (incl. one interpreter start per file)")


if __name__ == "__main__":
    main()
