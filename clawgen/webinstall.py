"""Browser install: ESP Web Tools' manifest and an install page for a build with a merged image.

``write_web(build_dir)`` reads the flash plan the image stage wrote (``image/flash_args.json``,
the same file ``clawgen flash`` reads) and writes ``web/``:

- ``manifest.json`` in ESP Web Tools' manifest format: one build for the board's chip family whose
  parts are exactly the regions ``clawgen flash`` writes (the merged image at its offset), with
  paths relative to the manifest;
- ``index.html``, the install page (``templates/web/index.html.j2``);
- ``esp-web-tools/``, the browser bundle of the pinned ESP Web Tools release from npm, so the page
  works offline from the build directory (``clawgen web BUILD_DIR`` serves it on localhost; Web
  Serial needs a secure context, which localhost is).

A fleet build (``clawgen build --devices``, docs/fleets.md) has no shared NVS image: each device gets
``web/NAME/manifest.json`` and ``web/NAME/index.html``, whose parts are exactly what
``clawgen flash --device NAME`` writes (the shared merged image, then that device's ``nvs.bin`` at the
NVS offset), and ``web/index.html`` lists the devices, one link per device page. The bundle is
written once, in ``web/esp-web-tools/``.

The npm tarball is fetched once with ``npm pack`` into the clawgen cache and checked against the
pinned sha512 integrity before anything is extracted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from clawgen.diagnostics import UsageError, peer_text
from clawgen.records import record

EWT_PACKAGE = "esp-web-tools"
EWT_VERSION = "10.4.0"
EWT_INTEGRITY = "sha512-3pwkeFFm5Fj7UQo8SJNYK5RXrtNCpq6X9QoI6bMT4GBZWgrJqjn0YvM9ihG74BtMoSFYXfmDtkehuxe50PTMPQ=="
EWT_BUNDLE = "package/dist/web/"  # the self-contained browser bundle inside the tarball
EWT_ELEMENT = "esp-web-install-button"
WEB_DIR = "web"
MANIFEST = "manifest.json"
INDEX = "index.html"
EWT_SUBDIR = "esp-web-tools"

#: esptool chip name -> ESP Web Tools chipFamily
CHIP_FAMILY = {"esp32": "ESP32", "esp32s2": "ESP32-S2", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3",
               "esp32c6": "ESP32-C6", "esp32h2": "ESP32-H2"}


@record
class WebPart:
    path: str  # relative to the manifest
    offset: int


def _cache_dir() -> Path:
    from clawgen.cachedir import cache_root

    return cache_root() / EWT_PACKAGE / EWT_VERSION


def _check_integrity(data: bytes) -> bool:
    algo, _, want = EWT_INTEGRITY.partition("-")
    return base64.b64encode(hashlib.new(algo, data).digest()).decode() == want


def ensure_bundle() -> Path:
    """The directory holding ESP Web Tools' browser bundle (install-button.js and its chunks);
    fetched with ``npm pack`` on first use and checked against the pinned integrity."""
    d = _cache_dir() / "web"
    if (d / "install-button.js").is_file():
        return d
    npm = shutil.which("npm")
    if not npm:
        raise UsageError(f"the browser install page needs {EWT_PACKAGE}@{EWT_VERSION} from npm, and npm is "
                         "not installed; install Node.js and npm, or build with --no-web")
    import subprocess  # only on the first use: every build imports this module
    import tarfile
    import tempfile

    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ewt-", dir=d.parent))
    try:
        proc = subprocess.run([npm, "pack", f"{EWT_PACKAGE}@{EWT_VERSION}", "--silent", "--pack-destination",
                               str(tmp)], capture_output=True, text=True, timeout=300, cwd=tmp)
        tgz = tmp / f"{EWT_PACKAGE}-{EWT_VERSION}.tgz"
        if proc.returncode != 0 or not tgz.is_file():
            raise UsageError(f"`npm pack {EWT_PACKAGE}@{EWT_VERSION}` failed (exit {proc.returncode}): "
                             f"{proc.stderr.strip()[-500:]}")
        data = tgz.read_bytes()
        if not _check_integrity(data):
            raise UsageError(f"{EWT_PACKAGE}-{EWT_VERSION}.tgz does not match its pinned integrity; refusing it")
        out = tmp / "web"
        out.mkdir()
        with tarfile.open(tgz, "r:gz") as tf:
            for m in tf.getmembers():
                rel = m.name[len(EWT_BUNDLE):] if m.name.startswith(EWT_BUNDLE) else None
                if m.name == "package/LICENSE":
                    rel = "LICENSE"
                if not rel or not m.isfile() or "/" in rel or rel.startswith("."):
                    continue
                src = tf.extractfile(m)
                assert src is not None
                (out / rel).write_bytes(src.read())
        if not (out / "install-button.js").is_file():
            raise UsageError(f"{EWT_PACKAGE}@{EWT_VERSION} has no {EWT_BUNDLE}install-button.js")
        try:
            out.rename(d)
        except OSError:
            if not (d / "install-button.js").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return d


def manifest_for(build_dir: Path, name: str, version: str, staged: bool = False,
                 device: str | None = None) -> dict:
    """ESP Web Tools manifest for the merged image of a build: what `clawgen flash` writes (with
    ``device``, what `clawgen flash --device NAME` writes; the manifest then lives in web/NAME/)."""
    from clawgen.image.flash import load_flash_plan

    plan = load_flash_plan(build_dir, staged=staged, device=device)
    family = CHIP_FAMILY.get(plan.chip)
    if family is None:
        raise UsageError(f"ESP Web Tools has no chip family for {plan.chip}")
    where = build_dir / WEB_DIR / device if device else build_dir / WEB_DIR
    parts = []
    for r in plan.regions:  # in the order `clawgen flash` writes them: the device's NVS comes last
        rel = os.path.relpath(r.path, where).replace(os.sep, "/")
        parts.append({"path": rel, "offset": r.offset})
    return {"name": name, "version": version, "new_install_prompt_erase": True,
            "builds": [{"chipFamily": family, "parts": parts}]}


def fleet_devices(build_dir: Path) -> list[str]:
    """The device names of a fleet build (flash_args.json's "fleet" entry), [] for a single build."""
    from clawgen.image.regions import FLASH_ARGS

    try:
        doc = json.loads((Path(build_dir) / FLASH_ARGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    fleet = doc.get("fleet") if isinstance(doc, dict) else None
    devices = fleet.get("devices") if isinstance(fleet, dict) else None
    return sorted(devices) if isinstance(devices, dict) else []


def _write_page(path: Path, header: str, manifest: dict, script: str, flash_command: str) -> Path:
    from clawgen.render import environment

    build = manifest["builds"][0]
    html = environment().get_template("web/index.html.j2").render(
        header=header, name=manifest["name"], version=manifest["version"], manifest=MANIFEST, element=EWT_ELEMENT,
        script=script, ewt_version=EWT_VERSION, chip_family=build["chipFamily"], parts=build["parts"],
        flash_command=flash_command)
    path.write_text(html, encoding="utf-8")
    return path


def _write_manifest(path: Path, manifest: dict) -> Path:
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def _version(build_dir: Path, version: str, device: str | None) -> str:
    """A device's version covers its NVS image too, so its page changes when its secrets do."""
    if device is None:
        return version
    nvs = Path(build_dir) / "devices" / device / "nvs.bin"
    return hashlib.sha256(version.encode() + nvs.read_bytes()).hexdigest()[:12]


def write_web(build_dir: Path, name: str, version: str, header: str, staged: bool = False) -> list[Path]:
    """Write web/manifest.json, web/index.html and the ESP Web Tools bundle into build_dir (for a
    fleet: web/NAME/manifest.json and web/NAME/index.html per device, and web/index.html listing
    them). Returns the files written. The build must have a merged image (image/flash_args.json)."""
    from clawgen.render import environment

    build_dir = Path(build_dir)
    devices = fleet_devices(build_dir)
    # every manifest first: a build that cannot be flashed gets no page at all
    manifests = ({d: manifest_for(build_dir, f"{name} ({d})", _version(build_dir, version, d), staged, d)
                  for d in devices} if devices else {None: manifest_for(build_dir, name, version, staged)})
    web = build_dir / WEB_DIR
    web.mkdir(exist_ok=True)
    written = []
    for device, manifest in manifests.items():
        if device is None:
            written.append(_write_manifest(web / MANIFEST, manifest))
            written.append(_write_page(web / INDEX, header, manifest, f"{EWT_SUBDIR}/install-button.js",
                                       "clawgen flash"))
            continue
        d = web / device
        d.mkdir(exist_ok=True)
        written.append(_write_manifest(d / MANIFEST, manifest))
        written.append(_write_page(d / INDEX, header, manifest, f"../{EWT_SUBDIR}/install-button.js",
                                   f"clawgen flash --device {device}"))
    if devices:
        first = next(iter(manifests.values()))
        html = environment().get_template("web/fleet.html.j2").render(
            header=header, name=name, version=version, devices=devices, manifest=MANIFEST, index=INDEX,
            chip_family=first["builds"][0]["chipFamily"], ewt_version=EWT_VERSION)
        (web / INDEX).write_text(html, encoding="utf-8")
        written.append(web / INDEX)
    bundle = ensure_bundle()
    dst = web / EWT_SUBDIR
    dst.mkdir(exist_ok=True)
    for f in sorted(bundle.iterdir()):
        shutil.copyfile(f, dst / f.name)
        written.append(dst / f.name)
    return written


def check_servable(build_dir: Path) -> Path:
    """The web/ directory of a build, or a clear error saying how to get one."""
    from clawgen.diagnostics import InputError

    build_dir = Path(build_dir)
    web = build_dir / WEB_DIR
    if not build_dir.is_dir():
        raise InputError(f"{build_dir}: no such build directory (run `clawgen build` first)")
    devices = fleet_devices(build_dir)
    manifests = [web / d / MANIFEST for d in devices] if devices else [web / MANIFEST]
    if not (web / INDEX).is_file() or not all(m.is_file() for m in manifests):
        raise InputError(f"{build_dir}: no browser install page ({WEB_DIR}/{MANIFEST}); it is written by builds "
                         "that have a merged image: build with a base firmware (clawgen firmware fetch, or "
                         "--base-firmware FILE)")
    return web


def servable_files(build_dir: Path) -> set[str]:
    """What `clawgen web` serves of a build (paths relative to it, "/"-separated): the files under
    web/ and the image files its manifests list as parts. Not build.json, the sources or the other
    images: the page needs none of them. (The parts hold the NVS image with the device's secrets:
    the browser must flash them, and only a page on this computer gets them, see make_server.)"""
    import json
    import posixpath

    build_dir = Path(build_dir)
    web = build_dir / WEB_DIR
    out: set[str] = set()
    for f in web.rglob("*"):
        if f.is_file():
            rel = f.relative_to(build_dir).as_posix()
            out.add(rel)
            if f.name == MANIFEST:
                try:
                    doc = json.loads(f.read_text(encoding="utf-8"))
                    parts = [part["path"] for b in doc["builds"] for part in b["parts"]]
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                base = posixpath.dirname(rel)
                for path in parts:
                    if isinstance(path, str):
                        target = posixpath.normpath(posixpath.join(base, path))
                        if not target.startswith("../") and not posixpath.isabs(target):
                            out.add(target)
    return out


def make_server(build_dir: Path, port: int = 0, host: str = "127.0.0.1"):  # -> ThreadingHTTPServer
    """An HTTP server for the build's install page on localhost (Web Serial needs a secure
    context, and localhost is one). It serves ``servable_files`` only (404 for anything else) and
    answers only requests addressed to this computer by name (Host 127.0.0.1, localhost or [::1]
    with the port): a web page whose own name was pointed at 127.0.0.1 (DNS rebinding) gets 403,
    not the device's secrets."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import unquote, urlsplit

    root = Path(build_dir).resolve()

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def _allowed(self) -> bool:
            port = self.server.server_address[1]
            hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
            if (self.headers.get("Host") or "").lower() not in hosts:
                self.send_error(403, "this server answers only to 127.0.0.1 and localhost")
                return False
            try:
                rel = unquote(urlsplit(self.path).path).lstrip("/")
            except ValueError:  # ("http://[x/": not a target urlsplit takes)
                self.send_error(400, "malformed request target")
                return False
            if not rel:  # the bare address: the page
                self.send_response(302)
                self.send_header("Location", f"/{WEB_DIR}/{INDEX}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False
            if rel not in servable_files(root):
                self.send_error(404, "not part of the install page")
                return False
            return True

        def do_GET(self) -> None:
            if self._allowed():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._allowed():
                super().do_HEAD()

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
            """A request that failed is one line on the console, not socketserver's traceback (a
            client that hung up early is not even that)."""
            e = sys.exc_info()[1]
            if not isinstance(e, ConnectionError):
                print(f"clawgen web: a request from {client_address[0]} failed: {type(e).__name__}: "
                      f"{peer_text(str(e), 200)}", file=sys.stderr)

    Handler.extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                              ".json": "application/json", ".bin": "application/octet-stream"}
    return Server((host, port), functools.partial(Handler, directory=str(root)))


def write_web_if_merged(build_dir: Path, name: str, header: str, out_dir: Path | None = None) -> list[str]:
    """The build stage's entry: write web/ when the build has a merged image; returns report lines.
    The manifest's version is the merged image's content hash, so it changes exactly when the image
    does (and builds stay reproducible). ``build_dir`` may be the staging directory; ``out_dir`` is
    where the build will be published, for the report (else it says BUILD_DIR)."""
    from clawgen.image.regions import FLASH_ARGS

    args = Path(build_dir) / FLASH_ARGS
    try:
        merged = json.loads(args.read_text(encoding="utf-8")).get("merged")
    except (OSError, ValueError):
        return []
    if not merged:
        return []
    devices = fleet_devices(build_dir)
    shown = out_dir if out_dir is not None else "BUILD_DIR"
    image = Path(build_dir) / "image" / merged["file"]
    version = hashlib.sha256(image.read_bytes()).hexdigest()[:12]
    try:
        write_web(build_dir, name, version, header, staged=True)
    except UsageError as e:
        # The manifest and page are written; only the installer bundle is missing. Say so loudly.
        return [f"web/: browser install page written, but {e}"]
    if devices:
        return [f"web/: browser install pages for {len(devices)} device(s) (web/NAME/index.html, "
                f"ESP Web Tools {EWT_VERSION}): clawgen web {shown}"]
    return [f"web/: browser install page (ESP Web Tools {EWT_VERSION}): clawgen web {shown}"]
