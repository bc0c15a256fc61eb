"""`clawgen build`: the orchestrator of load -> validate -> resolve -> plan -> render -> compile
-> package -> image -> publish.

Each stage is its own module (render.py, compile.py, package.py, image/stage.py, publish.py);
this one only runs them in order and decides what can be skipped. A build is staged in a
sibling directory and renamed into place (publish.py), so a failed build leaves the previous
output untouched and only a directory clawgen made is ever replaced. A stamp (an HMAC over
every input, keyed by a local random key so it reveals nothing about secrets) lets an
unchanged rebuild stop before any work.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawgen import MICROPYTHON_VERSION, __version__
from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark, UsageError
from clawgen.publish import STAMP_FILE
from clawgen.records import record

if TYPE_CHECKING:
    from clawgen.fleet import Fleet
    from clawgen.loader import Document
    from clawgen.model import Plan
    from clawgen.plan import Planned
    from clawgen.render import Rendered

PACKAGE_DIR = Path(__file__).resolve().parent


@record(frozen=False)
class BuildOptions:
    board: str | None = None
    out_dir: Path | None = None
    substitutions: Mapping[str, str] = field(default_factory=dict)
    model_override: str | None = None  # the simulator points the primary model elsewhere
    telegram_api: str | None = None  # the simulator points transports.telegram.api at a local Bot API
    base_firmware: Path | None = None
    micropython_dir: Path | None = None
    nvs_key: Path | None = None
    images: bool = True
    force: bool = False
    placeholder_secrets: bool = False  # the simulator: missing secrets become "" (with a warning)
    devices: Path | None = None  # --devices: a fleet, one NVS image per device (clawgen/fleet.py)


@record(frozen=False)
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
    from clawgen.diskcache import cache_root

    p = cache_root() / "stamp.key"
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
    from clawgen.diskcache import code_files

    return code_files()


def _digest(inputs: list[str], args: dict[str, Any]) -> str:
    mac = hmac.new(_stamp_key(), digestmod=hashlib.sha256)
    mac.update(json.dumps({"v": __version__, "args": args}, sort_keys=True, default=str).encode())
    for name in inputs:
        mac.update(name.encode() + b"\0")
        try:
            mac.update(Path(name).read_bytes())
        except OSError:
            mac.update(b"<missing>")
    mac.update(_tool_digest())
    return mac.hexdigest()


def _tool_digest() -> bytes:
    from clawgen.diskcache import code_digest

    return code_digest()


def _stamp_args(spec: Path, opts: BuildOptions) -> dict[str, Any]:
    return {"spec": str(spec.resolve()), "board": opts.board, "subst": dict(opts.substitutions),
            "model": opts.model_override, **({"telegram_api": opts.telegram_api} if opts.telegram_api else {}),
            "base": str(opts.base_firmware), "mp": str(opts.micropython_dir),
            "nvs_key": str(opts.nvs_key), "images": opts.images, "cwd": str(Path.cwd()),
            "placeholder_secrets": opts.placeholder_secrets,
            **({"devices": str(opts.devices.resolve())} if opts.devices is not None else {})}


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

def default_out_dir(name: str, board: str) -> Path:
    return Path("generated") / name / board


def load_and_plan(spec: Path, opts: BuildOptions) -> Planned:
    """load -> validate -> resolve -> plan (+ the handler checks). Raises DiagnosticError."""
    from clawgen.handlers import check_handlers
    from clawgen.leakcheck import check_pasted
    from clawgen.loader import load_spec
    from clawgen.plan import Planned, make_plan
    from clawgen.render import display_spec_path
    from clawgen.resolve import choose_board, resolve

    # A fleet's secret values come from its devices file, not the spec's secrets.yaml.
    doc = load_spec(spec, opts.substitutions, placeholder_secrets=opts.placeholder_secrets or bool(opts.devices))
    if opts.devices is not None:
        from clawgen.fleet import without_placeholder_warnings

        doc.warnings = without_placeholder_warnings(doc)
    diags = [*doc.warnings, *_validate(doc)]
    if any(d.severity == "error" for d in diags):
        raise DiagnosticError(diags)
    board = choose_board(doc, opts.board)
    if opts.model_override:
        doc.data = dict(doc.data)
        model = dict(doc.data["model"])
        model["base_url"] = opts.model_override
        model.pop("fallbacks", None)
        model.pop("light", None)
        doc.data["model"] = model
    tg = doc.data.get("transports", {}).get("telegram") if isinstance(doc.data.get("transports"), dict) else None
    if opts.telegram_api and isinstance(tg, dict):
        doc.data = dict(doc.data)
        doc.data["transports"] = {**doc.data["transports"], "telegram": {**tg, "api": opts.telegram_api}}
    res = resolve(doc, board)
    plan, nvs_values, pdiags = make_plan(res, display_spec_path(spec))
    plan, hdiags = check_handlers(plan)
    hdiags += check_pasted(doc, _secret_values(plan, nvs_values), _secret_names(plan))
    hwarnings = [d for d in hdiags if d.severity != "error"]
    if len(hwarnings) < len(hdiags):
        raise DiagnosticError([*hdiags, *(d for d in pdiags if d.severity != "error")])
    warnings = [*diags, *res.warnings, *[d for d in pdiags if d.severity != "error"], *hwarnings]
    return Planned(res, plan, nvs_values, warnings)


def _validate(doc: Document) -> list[Diagnostic]:
    """The schema stage's diagnostics. A valid spec is checked without jsonschema (schemacheck:
    about 0.1 ms), so there is nothing worth caching here."""
    from clawgen.schema import validate_schema

    return validate_schema(doc)


def _registers_where(res: Any) -> tuple[Mark | None, str]:
    """Where a problem of the register policy points: the spec's registers block, else its top."""
    if res.locator.written(("registers",)):
        return res.locator.mark(("registers",)), "registers"
    return res.locator.mark(()), ""


def _secret_values(plan: Plan, nvs_values: dict[str, bytes]) -> dict[str, bytes]:
    """The NVS values that came from `!secret` (a plain network.ssid also lives in NVS, but the
    user wrote it in clear on purpose: finding it in the spec is no leak)."""
    secret_keys = {s.key for s in plan.secrets if s.name}
    return {k: v for k, v in nvs_values.items() if k in secret_keys}


def _secret_names(plan: Plan) -> dict[str, str]:
    """NVS key -> how messages name that secret (never its value)."""
    return {s.key: f"secret '{s.name}' ({s.spec_path})" if s.name else f"{s.spec_path}" for s in plan.secrets}


def _render(planned: Planned) -> Rendered:
    from clawgen import diskcache, leakcheck
    from clawgen import plan as plan_stage
    from clawgen.render import Rendered, render_bundle

    # No secret value in the generated code, proved by where values flow (clawgen/leakcheck.py).
    leakcheck.check_flow(planned.resolved, planned.plan.spec_file, plan_stage.make_plan)
    leakcheck.check_handler_files(planned.plan, _secret_values(planned.plan, planned.nvs_values),
                                  _secret_names(planned.plan))

    def usermod(plan: Plan) -> dict[str, str | bytes]:
        """The chip stage's C user module, when the register layer is part of the build."""
        if plan.registers is None:
            return {}
        from clawgen.chips.render import render_usermod

        return {f"usermod/{rel}": text for rel, text in render_usermod(plan).items()}

    key = _render_key(planned.plan)
    hit = diskcache.get("render", key) if key is not None else None
    if isinstance(hit, Rendered):
        return hit
    try:
        rendered = render_bundle(planned.plan, usermod, reuse=True)
    except ValueError as e:
        from clawgen.chips.tables import TableTooLarge  # only register builds import the chips library

        if not isinstance(e, TableTooLarge) or planned.plan.registers is None:
            raise
        mark, path = _registers_where(planned.resolved)
        raise DiagnosticError(Diagnostic.at(
            mark, path, f"the register policy allows {len(planned.plan.registers.entries)} registers, too many "
            f"for the device tables ({e}): narrow registers.allow")) from None
    # Output served whole from the render traces takes about a millisecond more to make again than
    # to read back, and each edit of a description would store another copy of every source here:
    # only output that was rendered is kept.
    if key is not None and not rendered.from_traces:
        diskcache.put("render", key, rendered)
    return rendered


def _render_key(plan: Plan) -> str | None:
    """The render stage is a pure function of the plan, the templates (in diskcache's code digest)
    and the user's handler files: its output is kept in the user's cache under a hash of them.
    The plan holds no secret value (leakcheck.check_flow has just proved it), nor does the output."""
    import io
    import pickle

    from clawgen import diskcache

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: equal plans give equal bytes however their objects are shared
    try:
        pickler.dump(plan)
        h = hashlib.sha256(diskcache.module_id("jinja2").encode() + b"\0")
        h.update(buf.getbuffer())
        for cm in plan.custom_modules:
            h.update(b"\0" + str(cm.source).encode() + b"\0" + cm.source.read_bytes())
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError, OSError):
        return None
    return h.hexdigest()


def _compile(plan: Plan, rendered: Rendered, previous: Path) -> dict[str, bytes]:
    """.mpy of every compiled module (from the compile cache when the source was compiled before)."""
    from clawgen.compile import compile_all

    names = {m.name for m in rendered.modules if m.compile}
    displays = {m.name: str(previous / "app" / f"{m.name}.py") for m in rendered.modules}
    for cm in plan.custom_modules:
        displays[cm.module] = str(cm.source)
    # The user's handlers as written (line numbers, asserts); a debug build keeps line numbers everywhere.
    as_written = names if plan.debug_trace else {cm.module for cm in plan.custom_modules}
    return compile_all({n: rendered.sources[n] for n in names}, plan.board.mpy_arch, displays, as_written)


def _images(plan: Plan, rendered: Rendered, files: dict[str, bytes], nvs_values: dict[str, bytes],
            staging: Path, previous: Path, opts: BuildOptions, fleet: Fleet | None = None
            ) -> tuple[dict[str, Any], list[str]]:
    """The image stage into ``staging``/image: -> (build.json entries, report lines)."""
    if not opts.images:
        return {}, []
    from clawgen.image.stage import ImageInputs, build_images

    device_files = {m.device_path: files[m.artifact] for m in rendered.modules}
    result = build_images(ImageInputs(
        out_dir=staging, board=plan.board.data, flash_size=plan.flash_size, files=device_files,
        secrets={} if fleet else nvs_values, nvs_encryption_key=opts.nvs_key, base_firmware=opts.base_firmware,
        micropython_dir=opts.micropython_dir, spec_name=plan.name, spec_file=plan.spec_file,
        previous=previous, fleet=fleet))
    regions = [{"name": r.name, "offset": r.offset, "size": r.size, "used": r.used} for r in result.regions]
    web_report: list[str] = []
    if result.merged is not None:  # a flashable image: the browser install page goes beside it
        from clawgen.render import provenance_header
        from clawgen.webinstall import write_web_if_merged

        # `previous` is where the build is published: the report names it, not the staging directory.
        web_report = write_web_if_merged(staging, plan.name, provenance_header(plan), out_dir=previous)
    return {"image": regions}, [*result.report_lines, *web_report]


def build_spec(spec_path: str | Path, opts: BuildOptions | None = None, **kwargs: Any) -> BuildResult:
    """The whole pipeline: plan -> render -> compile -> package -> images -> publish."""
    from clawgen import publish

    opts = opts or BuildOptions(**kwargs)
    spec = Path(spec_path)
    t0 = time.perf_counter()
    if not spec.is_file():  # (`clawgen build` checks it first: commands.require_spec_file, exit 2)
        raise UsageError(f"spec file not found: {spec}")
    if opts.devices is not None and not opts.images:
        raise UsageError("--devices makes one NVS image per device: leave out --no-images")

    # Fast path: the output already matches these exact inputs (nothing else is imported).
    known_out = opts.out_dir or _indexed_out_dir(spec, opts)
    if known_out is not None and not opts.force and _up_to_date(known_out, spec, opts):
        return BuildResult(known_out, True, _read_info(known_out), "up to date", [], time.perf_counter() - t0)

    from clawgen import heapplan, package

    checked_out = None
    if opts.out_dir is not None:  # refuse a bad --out before any work
        checked_out = publish.check_out_dir(opts.out_dir, spec)
    planned = load_and_plan(spec, opts)
    plan = planned.plan
    fleet = None
    if opts.devices is not None:  # checked before anything is written
        from clawgen.fleet import load_fleet

        fleet = load_fleet(opts.devices, plan, planned.nvs_values)
    out_dir = opts.out_dir or default_out_dir(plan.name, plan.board.name)
    if opts.out_dir is None and not opts.force and _up_to_date(out_dir, spec, opts):
        return BuildResult(out_dir, True, _read_info(out_dir), "up to date", planned.warnings,
                           time.perf_counter() - t0, planned.nvs_values)
    out_dir = checked_out or publish.check_out_dir(out_dir, spec)  # (publish checks it once more)
    publish.clean_stale(out_dir)
    from clawgen import diskcache

    cache_limit = diskcache.max_bytes()  # (a bad $CLAWGEN_CACHE_MAX_MB is refused before anything is built)

    rendered = _render(planned)
    mpys = _compile(plan, rendered, out_dir)
    bundle = package.bundle_files(rendered.modules, rendered.sources, mpys, rendered.files)
    package.check_budget(plan, mpys, bundle.mpy_bytes, *_registers_where(planned.resolved))

    with publish.staging(out_dir) as stage:
        package.write_tree(stage, bundle.files)
        image_info, image_report = _images(plan, rendered, bundle.files, planned.nvs_values, stage, out_dir,
                                           opts, fleet)
        extra = {"usermod": sorted(r.removeprefix("usermod/") for r in rendered.files)} if rendered.files else {}
        heap = heapplan.estimate(plan, bundle.mpy_bytes)
        extra["heap"] = heap.as_json()
        tree = package.read_tree(stage, skip=(publish.MARKER,), written=bundle.files)
        info = package.build_info(plan, rendered.modules, bundle, _mpy_cross_version(), {**extra, **image_info},
                                  tree)
        new = {**tree, package.BUILD_JSON: package.write_build_json(stage, info)}
        new[publish.MARKER] = publish.seal(stage, sorted(new))
        if opts.force or not package.same_tree(out_dir, new, skip=(STAMP_FILE,)):
            publish.publish(stage, out_dir, spec)
        inputs = sorted({str(p.resolve()) for p in planned.resolved.locator.files}
                        | {str(cm.source.resolve()) for cm in plan.custom_modules}
                        | _chip_inputs(plan) | _image_inputs(plan, opts)
                        | {str(p.resolve()) for p in (fleet.files if fleet else ())})
        (out_dir / STAMP_FILE).write_text(json.dumps({"inputs": inputs,
                                                      "digest": _digest(inputs, _stamp_args(spec, opts))}) + "\n")
    if opts.out_dir is None:
        _remember_out_dir(spec, opts, out_dir)

    report = package.summary_table(bundle.rows, plan.board.bundle_budget) + "\n" + heap.report()
    if image_report:
        report += "\n" + "\n".join(image_report)
    trimmed = diskcache.maybe_trim(cache_limit)  # (at most once an hour: one stat otherwise)
    if trimmed and trimmed[0]:
        report += (f"\ncache: removed {trimmed[0]} least recently used file(s) ({trimmed[1] >> 20} MB) to stay under "
                   f"{cache_limit >> 20} MB (${diskcache.MAX_MB_ENV})")
    return BuildResult(out_dir, False, info, report, planned.warnings, time.perf_counter() - t0,
                       planned.nvs_values)


def _read_info(out_dir: Path) -> dict[str, Any]:
    """build.json of an up-to-date output (package.py writes it)."""
    return json.loads((out_dir / "build.json").read_text(encoding="utf-8"))


def _mpy_cross_version() -> str:
    from clawgen.compile import mpy_cross_version

    return mpy_cross_version()


def _chip_inputs(plan: Plan) -> set[str]:
    src = getattr(plan.registers, "source_path", None)
    return {str(Path(src).resolve())} if src else set()


def _image_inputs(plan: Plan, opts: BuildOptions) -> set[str]:
    """Base firmware (given or cached) and NVS key: their content changes the images."""
    if not opts.images:
        return set()
    from clawgen.image.stage import input_files

    return input_files(plan.board.data, opts.base_firmware, opts.nvs_key)


def micropython_version() -> str:
    return MICROPYTHON_VERSION
