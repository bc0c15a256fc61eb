"""`clawgen build`: the pipeline load -> validate -> resolve -> plan -> render -> compile -> package -> image.

A build is staged in a sibling directory and renamed into place, so a failed build
leaves the previous output untouched. A stamp (an HMAC over every input, keyed by a
local random key so it reveals nothing about secrets) lets an unchanged rebuild stop
before any work.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clawgen import MICROPYTHON_VERSION, __version__
from clawgen.diagnostics import Diagnostic, DiagnosticError, UsageError

STAMP_FILE = ".clawgen-stamp"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass
class BuildOptions:
    board: str | None = None
    out_dir: Path | None = None
    substitutions: Mapping[str, str] = field(default_factory=dict)
    model_override: str | None = None  # the simulator points the primary model elsewhere
    base_firmware: Path | None = None
    micropython_dir: Path | None = None
    nvs_key: Path | None = None
    images: bool = True
    force: bool = False
    placeholder_secrets: bool = False  # the simulator: missing secrets become "" (with a warning)


@dataclass
class BuildResult:
    out_dir: Path
    up_to_date: bool
    info: dict[str, Any]
    report: str
    warnings: list[Diagnostic]
    seconds: float
    nvs_values: dict[str, bytes] = field(default_factory=dict, repr=False)


# -- stamp ------------------------------------------------------------------

def _stamp_key() -> bytes:
    base = Path(os.environ.get("CLAWGEN_CACHE") or Path.home() / ".cache" / "clawgen")
    p = base / "stamp.key"
    try:
        return p.read_bytes()
    except OSError:
        key = os.urandom(32)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(key)
            os.replace(tmp, p)
            return p.read_bytes()
        except OSError:
            return key  # no cache dir: the stamp will simply never match


def _tool_files() -> list[Path]:
    """clawgen's own code and data: a change to clawgen invalidates every stamp."""
    from clawgen.resources import templates_dir

    files = sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".j2", ".json")
                   and "__pycache__" not in p.parts and "node_modules" not in p.parts)
    files += sorted(p for p in templates_dir().rglob("*") if p.is_file())
    return files


def _digest(inputs: list[str], args: dict[str, Any]) -> str:
    mac = hmac.new(_stamp_key(), digestmod=hashlib.sha256)
    mac.update(json.dumps({"v": __version__, "args": args}, sort_keys=True, default=str).encode())
    for name in inputs:
        mac.update(name.encode() + b"\0")
        try:
            mac.update(Path(name).read_bytes())
        except OSError:
            mac.update(b"<missing>")
    for p in _tool_files():
        mac.update(str(p.relative_to(p.anchor)).encode())
        mac.update(p.read_bytes())
    return mac.hexdigest()


def _stamp_args(spec: Path, opts: BuildOptions) -> dict[str, Any]:
    return {"spec": str(spec.resolve()), "board": opts.board, "subst": dict(opts.substitutions),
            "model": opts.model_override, "base": str(opts.base_firmware), "mp": str(opts.micropython_dir),
            "nvs_key": str(opts.nvs_key), "images": opts.images, "cwd": str(Path.cwd()),
            "placeholder_secrets": opts.placeholder_secrets}


def _up_to_date(out_dir: Path, spec: Path, opts: BuildOptions) -> bool:
    try:
        stamp = json.loads((out_dir / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or not isinstance(stamp.get("inputs"), list):
        return False
    return hmac.compare_digest(str(stamp.get("digest", "")), _digest(stamp["inputs"], _stamp_args(spec, opts)))


def _index_file(spec: Path, opts: BuildOptions) -> Path:
    """Where the default output directory of (spec, options) is remembered."""
    key = hashlib.sha256(json.dumps(_stamp_args(spec, opts), sort_keys=True).encode()).hexdigest()[:24]
    return Path("generated") / ".index" / f"{key}.json"


def _indexed_out_dir(spec: Path, opts: BuildOptions) -> Path | None:
    try:
        return Path(json.loads(_index_file(spec, opts).read_text())["out_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember_out_dir(spec: Path, opts: BuildOptions, out_dir: Path) -> None:
    idx = _index_file(spec, opts)
    try:
        idx.parent.mkdir(parents=True, exist_ok=True)
        idx.write_text(json.dumps({"spec": str(spec), "out_dir": str(out_dir)}) + "\n")
    except OSError:
        pass  # only an optimisation


# -- pipeline ---------------------------------------------------------------

def check_out_dir(out_dir: Path, spec: Path) -> Path:
    """Refuse an output directory whose replacement would destroy the user's files.

    Publishing renames the whole directory away, so it must be new, empty, or an earlier
    clawgen output, and must not hold the spec.
    """
    if not out_dir.name:  # "." or "/": the rename needs a real name
        out_dir = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output {out_dir} is a file, not a directory; give --out a new directory "
                         "(clawgen replaces the whole directory)")
    if spec.resolve().is_relative_to(out_dir.resolve()):
        raise UsageError(f"output {out_dir} contains the spec {spec}; give --out a directory of its own "
                         "(clawgen replaces the whole directory)")
    if (out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "build.json").is_file()
            and not (out_dir / STAMP_FILE).is_file()):
        raise UsageError(f"output {out_dir} holds files that are not a clawgen build; give --out a new "
                         "or empty directory (clawgen replaces the whole directory)")
    return out_dir


def default_out_dir(name: str, board: str) -> Path:
    return Path("generated") / name / board


def load_and_plan(spec: Path, opts: BuildOptions) -> tuple[Any, Any, dict[str, bytes], list[Diagnostic]]:
    """load -> validate -> resolve -> plan. -> (resolved, plan, nvs values, warnings)."""
    from clawgen.loader import load_spec
    from clawgen.plan import make_plan
    from clawgen.render import display_spec_path
    from clawgen.resolve import choose_board, resolve
    from clawgen.schema import validate_schema

    doc = load_spec(spec, opts.substitutions, placeholder_secrets=opts.placeholder_secrets)
    diags = [*doc.warnings, *validate_schema(doc)]
    if any(d.severity == "error" for d in diags):
        raise DiagnosticError(diags)
    board = choose_board(doc, opts.board)
    if opts.model_override:
        doc.data = dict(doc.data)
        model = dict(doc.data["model"])
        model["base_url"] = opts.model_override
        model.pop("fallbacks", None)
        doc.data["model"] = model
    res = resolve(doc, board)
    plan, nvs_values, pdiags = make_plan(res, display_spec_path(spec))
    warnings = [*diags, *res.warnings, *[d for d in pdiags if d.severity != "error"]]
    return res, plan, nvs_values, warnings


def build_spec(spec_path: str | Path, opts: BuildOptions | None = None, **kwargs: Any) -> BuildResult:
    opts = opts or BuildOptions(**kwargs)
    spec = Path(spec_path)
    t0 = time.perf_counter()
    if not spec.is_file():
        raise UsageError(f"spec file not found: {spec}")

    # Fast path: the output already matches these exact inputs.
    known_out = opts.out_dir or _indexed_out_dir(spec, opts)
    if known_out is not None and not opts.force and _up_to_date(known_out, spec, opts):
        info = json.loads((known_out / "build.json").read_text())
        return BuildResult(known_out, True, info, "up to date", [], time.perf_counter() - t0)

    res, plan, nvs_values, warnings = load_and_plan(spec, opts)
    out_dir = opts.out_dir or default_out_dir(plan.name, plan.board.name)
    if opts.out_dir is None and not opts.force and _up_to_date(out_dir, spec, opts):
        info = json.loads((out_dir / "build.json").read_text())
        return BuildResult(out_dir, True, info, "up to date", warnings, time.perf_counter() - t0, nvs_values)

    out_dir = check_out_dir(out_dir, spec)
    from clawgen.compile import compile_all, mpy_cross_version
    from clawgen.package import build_json, read_tree, sha256, summary_table
    from clawgen.render import render_app

    try:
        modules, sources = render_app(plan)
    except ValueError as e:
        from clawgen.chips.tables import TableTooLarge

        if not isinstance(e, TableTooLarge):
            raise
        where = ("registers",) if "registers" in res.doc.data else ()
        raise DiagnosticError(Diagnostic.at(
            res.doc.mark(where), "registers" if where else "",
            f"the register policy allows {len(plan.registers.entries)} registers, too many for the device "
            f"tables ({e}): narrow registers.allow")) from None
    compiled_names = {m.name for m in modules if m.compile}
    # Reuse .mpy files of the previous output whose source did not change.
    cached: dict[str, bytes] = {}
    for name in compiled_names:
        old_py, old_mpy = out_dir / "app" / f"{name}.py", out_dir / "mpy" / f"{name}.mpy"
        try:
            if old_py.read_text(encoding="utf-8") == sources[name] and old_mpy.is_file():
                cached[name] = old_mpy.read_bytes()
        except (OSError, UnicodeDecodeError):
            pass
    displays = {m.name: str(out_dir / "app" / f"{m.name}.py") for m in modules}
    for cm in plan.custom_modules:
        displays[cm.module] = str(cm.source)
    mpys = compile_all({n: sources[n] for n in compiled_names}, plan.board.mpy_arch, displays, cached)

    files: dict[str, bytes] = {}
    rows = []
    for m in sorted(modules, key=lambda m: m.name):
        src = sources[m.name].encode()
        files[m.source_rel] = src
        if m.compile:
            files[f"mpy/{m.name}.mpy"] = mpys[m.name]
        rows.append((m.name, len(src), len(mpys[m.name]) if m.compile else 0))
    bundle_bytes = sum(len(b) for b in mpys.values())
    if bundle_bytes > plan.board.bundle_budget:
        biggest = max(mpys, key=lambda n: len(mpys[n]))
        where = ("registers",) if "registers" in res.doc.data else ()
        raise DiagnosticError(Diagnostic.at(
            res.doc.mark(where), "registers" if where else "",
            f"app bundle overflows its {plan.board.bundle_budget} bytes by "
            f"{bundle_bytes - plan.board.bundle_budget} bytes ({bundle_bytes} bytes of .mpy; the largest module "
            f"is {biggest} with {len(mpys[biggest])}): narrow registers.allow, or drop capabilities or tools"))

    extra = _extra_outputs(plan, files)

    staging = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        from clawgen.package import write_tree

        write_tree(staging, files)
        image_info = _images(plan, modules, files, nvs_values, staging, opts)
        info: dict[str, Any] = {
            "clawgen": __version__,
            "spec": plan.spec_file,
            "name": plan.name,
            "board": plan.board.name,
            "chip": plan.chip,
            "micropython": plan.board.micropython,
            "mpy": {"version": f"{plan.board.mpy_version[0]}.{plan.board.mpy_version[1]}",
                    "arch": plan.board.mpy_arch, "mpy_cross": mpy_cross_version()},
            "flash_size": plan.flash_size,
            "psram": plan.psram,
            "tools": [t.name for t in plan.tools],
            "buffers": {**plan.limits.buffers(), "history_messages": plan.limits.history_messages,
                        "history_message_bytes": plan.limits.history_message_bytes},
            "static_ram_bytes": plan.limits.static_ram(),
            "bundle": {"mpy_bytes": bundle_bytes, "budget_bytes": plan.board.bundle_budget},
            "secrets": [{"nvs_key": s.key, "spec_path": s.spec_path} for s in plan.secrets],
            "device_files": {m.device_path: m.artifact
                             for m in sorted(modules, key=lambda m: m.device_path)},
            **extra,
            **image_info,
        }
        tree = read_tree(staging)
        info["artifacts"] = [{"path": rel, "size": len(data), "sha256": sha256(data)}
                             for rel, data in sorted(tree.items())]
        # The printed image report names this machine's cache directory: keep it out of the record.
        (staging / "build.json").write_bytes(build_json({k: v for k, v in info.items() if k != "image_report"}))
        inputs = sorted({str(p.resolve()) for p in res.doc.files}
                        | {str(cm.source.resolve()) for cm in plan.custom_modules}
                        | _chip_inputs(plan) | _image_inputs(plan, opts))
        args = _stamp_args(spec, opts)
        old = {k: v for k, v in read_tree(out_dir).items() if k != STAMP_FILE}
        new = read_tree(staging)
        if old == new and not opts.force:
            shutil.rmtree(staging)
        else:
            if out_dir.exists():
                trash = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
                os.replace(out_dir, trash)
                os.replace(staging, out_dir)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                out_dir.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, out_dir)
        (out_dir / STAMP_FILE).write_text(json.dumps({"inputs": inputs, "digest": _digest(inputs, args)}) + "\n")
        if opts.out_dir is None:
            _remember_out_dir(spec, opts, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    report = summary_table(rows, plan.board.bundle_budget)
    if image_info.get("image_report"):
        report += "\n" + "\n".join(image_info["image_report"])
    return BuildResult(out_dir, False, info, report, warnings, time.perf_counter() - t0, nvs_values)


def _chip_inputs(plan: Any) -> set[str]:
    src = getattr(plan.registers, "source_path", None)
    return {str(Path(src).resolve())} if src else set()


def _image_inputs(plan: Any, opts: BuildOptions) -> set[str]:
    """Base firmware (given or cached) and NVS key: their content changes the images."""
    if not opts.images:
        return set()
    try:
        from clawgen.image.stage import input_files
    except ImportError:
        return set()
    return input_files(plan.board.data, opts.base_firmware, opts.nvs_key)


def _extra_outputs(plan: Any, files: dict[str, bytes]) -> dict[str, Any]:
    """Outputs of the chip stage (usermod) when the register layer is part of the build."""
    if plan.registers is None:
        return {}
    try:
        from clawgen.chips.render import render_usermod
    except ImportError:
        return {}
    usermod = render_usermod(plan)
    for rel, text in usermod.items():
        files[f"usermod/{rel}"] = text.encode() if isinstance(text, str) else text
    return {"usermod": sorted(usermod)}


def _images(plan: Any, modules: list[Any], files: dict[str, bytes], nvs_values: dict[str, bytes],
            staging: Path, opts: BuildOptions) -> dict[str, Any]:
    if not opts.images:
        return {}
    try:
        from clawgen.image.stage import ImageInputs, build_images
    except ImportError:
        return {}
    device_files: dict[str, bytes] = {}
    for m in modules:
        rel = m.artifact
        device_files[m.device_path] = files[rel]
    result = build_images(ImageInputs(
        out_dir=staging, board=plan.board.data, flash_size=plan.flash_size, files=device_files,
        secrets=nvs_values, nvs_encryption_key=opts.nvs_key, base_firmware=opts.base_firmware,
        micropython_dir=opts.micropython_dir, spec_name=plan.name, spec_file=plan.spec_file))
    return {"image": [{"name": r.name, "offset": r.offset, "size": r.size, "used": r.used}
                      for r in result.regions],
            "image_report": list(result.report_lines)}


def micropython_version() -> str:
    return MICROPYTHON_VERSION
