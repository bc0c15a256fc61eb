"""OTA push of a build's app bundle to a running device (protocol: docs/ota.md; device side:
templates/app/claw_ota.py.j2).

``push(build_dir, host, port, key, progress)`` is the one entry point (``clawgen ota``, ``clawgen run
--host``): it reads the bundle from build.json's ``device_files``, signs its manifest with
HMAC-SHA256(key, device nonce || manifest) and streams the files. The key is bytes handed in by the
caller (``key_from_file`` / ``key_from_spec``); it is never printed, logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawgen.diagnostics import InputError, peer_text
from clawgen.files import read_input_file
from clawgen.package import read_build_json
from clawgen.records import record
from clawgen.secretcheck import OTA_KEY_MIN_BYTES

if TYPE_CHECKING:
    import socket

# The wire protocol's constants (one source of truth: rendered into claw_ota.py.j2 from here).
MAGIC = "CLAWOTA"
VERSION = 1
NONCE_BYTES = 32
MANIFEST_MAX_BYTES = 8192  # the device refuses a bigger manifest before reading it (64 files fit)
MAX_FILES = 64  # files per bundle
BUILD_ID_MAX_CHARS = 64  # a build id: build.json's build_id, the hex sha256 of the bundle (package.bundle_id)
# A file of a bundle, read from the build directory (the device checks the whole bundle against
# its free space; this only bounds what is read here: no board's filesystem takes more).
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 1024  # the device's fixed receive buffer
KEY_MIN_BYTES = OTA_KEY_MIN_BYTES
KEY_FILE_MAX_BYTES = 4096  # an OTA key file: a line of text (the key is at least KEY_MIN_BYTES)
KEY_SPEC_PATH = ("ota", "key")
KEY_NVS_SLOT = "ota_key"
DEFAULT_PORT = 8266
CONNECT_TIMEOUT = 10.0
REPLY_TIMEOUT = 60.0  # the device checks sha256 and switches the bundle before its final reply
STAGING_DIR = "/ota.new"
OLD_DIR = "/ota.old"
RECORD_PATH = "/ota.rec"

Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


class OtaError(Exception):
    """The push failed; ``str(e)`` is one line for the user. ``refused``: the device said why."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@record
class BundleFile:
    device_path: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@record
class OtaResult:
    build_id: str
    files: int
    bytes_sent: int  # file bytes (without the manifest)
    seconds: float
    reply: str  # the device's last line


def build_id(build: dict[str, object]) -> str:
    """The bundle's id: build.json ``build_id`` (the content hash of its device files)."""
    bid = build.get("build_id")
    if not isinstance(bid, str) or not bid:
        raise InputError("build.json has no build_id: rebuild with this clawgen (`clawgen build SPEC`)")
    if len(bid) > BUILD_ID_MAX_CHARS or bid.strip("0123456789abcdef"):
        raise InputError(f"build.json's build_id is not {BUILD_ID_MAX_CHARS} hex digits at most, which the device "
                         "takes: rebuild with this clawgen (`clawgen build SPEC`)")
    return bid


def build_info(build_dir: Path) -> dict[str, Any]:
    """The build's build.json; InputError (exit 2) when ``build_dir`` is not a build directory."""
    if not build_dir.is_dir():
        what = "a file, not a build directory" if build_dir.exists() else "no such build directory"
        raise InputError(f"{build_dir}: {what}: give the directory `clawgen build` wrote, e.g. generated/NAME/BOARD")
    try:
        info = read_build_json(build_dir)
    except (OSError, ValueError) as e:
        reason = "it has no build.json" if isinstance(e, FileNotFoundError) else f"its build.json is unreadable: {e}"
        raise InputError(f"{build_dir}: not a clawgen build directory ({reason}): give the directory "
                         "`clawgen build` wrote, e.g. generated/NAME/BOARD") from None
    if not isinstance(info, dict):
        raise InputError(f"{build_dir}: not a clawgen build directory (its build.json is not an object)")
    return info


def bundle(build_dir: Path, exclude: Iterable[str] = ()) -> tuple[dict[str, object], list[BundleFile]]:
    """(build.json, the files to send in device-path order); ``exclude``: device paths left out."""
    info = build_info(build_dir)
    skip = set(exclude)
    files = []
    for dev, rel in sorted(dict(info.get("device_files") or {}).items()):
        if dev in skip:
            continue
        if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
            # (as flash_args.json's files: a build directory from elsewhere must not send this
            # computer's files to a device)
            raise InputError(f"{build_dir}/build.json: device_files[{dev!r}] must be a path inside the build, "
                             f"not {rel!r}: build again")
        p = build_dir / rel
        if not p.exists():
            raise InputError(f"{p}: missing from the build (listed in build.json device_files); build again")
        files.append(BundleFile(str(dev), read_input_file(p, "the build's file", MAX_BUNDLE_BYTES, InputError)))
    if not files:
        raise InputError(f"{build_dir}/build.json lists no device files")
    if len(files) > MAX_FILES:
        raise InputError(f"the bundle has {len(files)} files; OTA takes at most {MAX_FILES}")
    return info, files


def manifest(info: dict[str, object], files: list[BundleFile]) -> bytes:
    doc = {"v": VERSION, "board": info.get("board"), "chip": info.get("chip"), "build": build_id(info),
           "total": sum(len(f.data) for f in files),
           "files": [[f.device_path, len(f.data), f.sha256] for f in files]}
    data = json.dumps(doc, separators=(",", ":")).encode()
    if len(data) > MANIFEST_MAX_BYTES:
        raise InputError(f"the OTA manifest is {len(data)} bytes; the device takes at most {MANIFEST_MAX_BYTES}")
    return data


def sign(key: bytes, nonce: bytes, data: bytes) -> str:
    return hmac.new(key, nonce + data, hashlib.sha256).hexdigest()


def key_from_file(path: Path) -> bytes:
    key = read_input_file(path, "OTA key file", KEY_FILE_MAX_BYTES, InputError).strip()
    if len(key) < KEY_MIN_BYTES:
        raise InputError(f"{path}: the OTA key is {len(key)} bytes; it must be at least {KEY_MIN_BYTES}")
    return key


def key_from_spec(build_dir: Path) -> bytes:
    """The spec's ``ota.key`` secret (from its secrets.yaml), found via build.json ``spec``."""
    from clawgen.loader import load_spec

    info = build_info(build_dir)
    if not any(s.get("nvs_key") == KEY_NVS_SLOT for s in info.get("secrets", [])):
        raise InputError(f"{build_dir}: this build has no ota: section, so its device takes no update over the "
                         "network: add `ota: {key: !secret ota_key}` to the spec (and ota_key, at least 16 "
                         "bytes, to its secrets.yaml), build, and put it on the board once by cable")
    spec = _spec_file(build_dir, str(info.get("spec", "")))
    doc = load_spec(spec)
    secret = doc.secrets.get(KEY_SPEC_PATH)
    if secret is None:
        raise InputError(f"{spec}: ota.key is not a !secret; pass the key with --key-file")
    return secret.value.encode()


def _spec_file(build_dir: Path, shown: str) -> Path:
    """The build's spec: build.json names it relative to its checkout, the build stamp (the inputs of
    the build) has it in full; else relative to here."""
    from clawgen.publish import STAMP_FILE

    try:
        inputs = [Path(p) for p in json.loads((build_dir / STAMP_FILE).read_text()).get("inputs", [])]
    except (OSError, ValueError, AttributeError):
        inputs = []
    for cand in [p for p in inputs if p.as_posix().endswith("/" + shown)] + [Path(shown)]:
        if shown and cand.is_file():
            return cand
    raise InputError(f"{shown or build_dir}: the build's spec file is not found; pass the key with --key-file")


def _line(sock: socket.socket, limit: int = 512) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        try:
            b = sock.recv(1)
        except TimeoutError:
            raise OtaError("the device stopped answering (timed out waiting for its reply)") from None
        except OSError as e:
            raise OtaError(f"the connection to the device broke: {e.strerror or e}") from None
        if not b:
            break
        buf += b
        if len(buf) > limit:
            break
    return peer_text(buf, limit)  # (shown on the user's terminal: a refusal's reason)


def _refusal(line: str) -> OtaError | None:
    if line.startswith("ERR "):
        return OtaError(f"the device refused the update: {line[4:]}", refused=True)
    return None


def push(build_dir: Path | str, host: str, port: int, key: bytes, progress: Progress | None = None,
         exclude: Iterable[str] = ()) -> OtaResult:
    """Send the build's app bundle to the device at host:port; OtaError when it does not take it."""
    build_dir = Path(build_dir)
    info, files = bundle(build_dir, exclude)
    data = manifest(info, files)
    total = sum(len(f.data) for f in files)
    t0 = time.monotonic()
    import socket  # here, not at the top: plan.py reads this module's constants in every build

    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as e:
        hint = ("; .local names need mDNS on this computer: give the device's IP address" if
                isinstance(e, socket.gaierror) and host.endswith(".local") else "")
        raise OtaError(f"cannot reach {host}:{port}: {e.strerror or e} (is the device on and is ota: "
                       f"in its spec?{hint})") from None
    with sock:
        sock.settimeout(REPLY_TIMEOUT)
        hello = _line(sock)
        err = _refusal(hello)
        if err is not None:
            raise err
        parts = hello.split()
        if len(parts) != 3 or parts[0] != MAGIC or parts[1] != str(VERSION):
            shown = hello[:60].encode("ascii", "backslashreplace").decode()
            raise OtaError(f"{host}:{port} is not a clawgen OTA server (it said {shown!r}); "
                           "check the port (ota.port in the spec)")
        try:
            nonce = bytes.fromhex(parts[2])
        except ValueError:
            raise OtaError(f"{host}:{port} sent a malformed nonce; not a clawgen OTA server?") from None
        try:
            sock.sendall(b"%d %s\n" % (len(data), sign(key, nonce, data).encode()) + data)
            ans = _line(sock)
            err = _refusal(ans)
            if err is not None:
                raise err
            if ans != "OK send":
                raise OtaError(f"unexpected answer from the device: {ans[:60]!r}")
            sent = 0
            if progress is not None:
                progress(0, total)
            for f in files:
                mv = memoryview(f.data)
                for off in range(0, len(mv), CHUNK_BYTES):
                    piece = mv[off:off + CHUNK_BYTES]
                    sock.sendall(piece)
                    sent += len(piece)
                    if progress is not None:
                        progress(sent, total)
        except OtaError:
            raise
        except OSError as e:
            # The device closes early when it refuses mid-stream: its reason comes first.
            ans = _line(sock) if not isinstance(e, TimeoutError) else ""
            err = _refusal(ans)
            raise err if err is not None else OtaError(f"the upload broke off: {e.strerror or e}") from None
        ans = _line(sock)
        err = _refusal(ans)
        if err is not None:
            raise err
        if not ans.startswith("OK installed"):
            raise OtaError(f"the device did not confirm the update (it said {ans[:60]!r})")
    return OtaResult(build_id(info), len(files), total, time.monotonic() - t0, ans)


def default_port(build_dir: Path) -> int:
    """The build's ota.port (build.json), else DEFAULT_PORT."""
    try:
        return int(read_build_json(build_dir).get("ota", {}).get("port", DEFAULT_PORT))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_PORT
