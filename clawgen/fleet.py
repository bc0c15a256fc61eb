"""Fleets: one spec, many devices (`clawgen build SPEC --devices devices.yaml`).

A devices file lists the devices built from one spec: each has a name (its directory under
``devices/``, and the name it reports in ``/status``), an optional hostname (default: the
name) and its own values for the secrets the spec uses through ``!secret NAME``; a top-level
``secrets:`` block gives values shared by every device that does not set its own. A value is
written inline or as ``!secret NAME``, a key of the ``secrets.yaml`` beside the devices file::

    secrets:                      # shared by every device (optional)
      api_key: !secret openai_key
    devices:
      - name: kitchen
        hostname: claw-kitchen    # optional; default: the name
        secrets:
          wifi_ssid: HomeNet
          wifi_password: !secret kitchen_wifi

The build makes the app bundle and images once (without any secret: the shared ``firmware.bin``
holds an NVS region with no values) and, per device, ``devices/NAME/nvs.bin`` (its secrets, and
its name and hostname under ``NAME_KEY``/``HOST_KEY``) plus ``devices/NAME/device.json`` (name,
hostname, the NVS keys; never a value). ``clawgen flash BUILD_DIR --device NAME`` writes the shared
image, then that device's NVS region over it (``flash_region``).

Stages: ``load_fleet`` (load + validate + resolve against the plan's secret slots; every problem
is a diagnostic at FILE:LINE:COL, found before anything is written), ``write_device_images``
(called by the image stage), ``flash_region`` (called by `clawgen flash`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clawgen import __version__
from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark, UsageError, did_you_mean, in_file_order
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.records import record

if TYPE_CHECKING:
    from clawgen.image.regions import FlashRegion
    from clawgen.model import Plan

# NVS keys (namespace "clawgen") of the device's own name and hostname; claw_boot.identity() reads
# them at boot (rendered into the template from here) and falls back to the spec's name/hostname.
NAME_KEY = "dev_name"
HOST_KEY = "dev_host"
DEVICES_DIR = "devices"
DEVICE_JSON = "device.json"
NAME_MAX = 32  # a name is also the default hostname, which is at most 32 characters
# Lower case only: names are directories (case-insensitive on some systems) and hostnames
# (case-insensitive everywhere), so two names that differ in case would collide.
_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_TOP_KEYS = ("devices", "secrets")
_DEVICE_KEYS = ("name", "hostname", "secrets")
_SHOWN_NAMES = 20  # device names listed in an error message


@record
class Device:
    name: str
    hostname: str
    mark: Mark  # where the device's entry starts in the devices file
    values: dict[str, bytes] = field(repr=False)  # NVS key -> value: its secrets, name and hostname


@record
class Fleet:
    path: Path  # the devices file
    devices: tuple[Device, ...]
    files: tuple[Path, ...]  # every file read (the devices file, its secrets.yaml): the build's inputs


# -- load, validate, resolve ---------------------------------------------------------------------

def without_placeholder_warnings(doc: Document) -> list[Diagnostic]:
    """The spec's warnings less "secret not found" for each !secret: in a fleet build the values
    come from the devices file, never from the spec's secrets.yaml."""
    stand_ins = {format_path(p) for p, s in doc.secrets.items() if s.placeholder}
    return [w for w in doc.warnings if not (w.severity == "warning" and w.path in stand_ins)]


def _hostname_re() -> re.Pattern[str]:
    """The spec's own rule for network.hostname (schemas/agent.schema.json): one source."""
    from clawgen.schema import agent_schema

    return re.compile(agent_schema()["properties"]["network"]["properties"]["hostname"]["pattern"])


def _parse_path(spec_path: str) -> PathT:
    """``model.fallbacks[0].api_key`` -> ("model", "fallbacks", 0, "api_key")."""
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", spec_path):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def _value_problems(value: str, spec_path: str) -> list[tuple[str, str]]:
    """(what the value is used as, problem) for a device's value at ``spec_path``."""
    from clawgen.secretcheck import SECRET_MAX_BYTES, _role, value_problems

    role = _role(_parse_path(spec_path))
    if role is not None:
        return [(role.what, p) for p in value_problems(value, role.kind)]
    size = len(value.encode("utf-8"))
    if size > SECRET_MAX_BYTES:
        return [("a secret", f"is {size} bytes long; the device reads secrets of at most "
                 f"{SECRET_MAX_BYTES} bytes back from NVS")]
    return []


class _Checker:
    def __init__(self, doc: Document, plan: Plan, spec_values: dict[str, bytes]):
        self.doc = doc
        self.plan = plan
        self.spec_values = spec_values
        self.errors: list[Diagnostic] = []
        self.reported: set[tuple[str, str, str]] = set()
        # secret name -> the NVS slots (key, spec path) it fills
        self.used: dict[str, list[tuple[str, str]]] = {}
        for slot in plan.secrets:
            if slot.name:
                self.used.setdefault(slot.name, []).append((slot.key, slot.spec_path))

    def error(self, path: PathT, message: str, key: bool = False, mark: Mark | None = None) -> None:
        where = mark or (self.doc.key_marks.get(tuple(path)) if key else None) or self.doc.mark(path)
        self.errors.append(Diagnostic.at(where, format_path(path), message))

    def keys(self, path: PathT, value: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
        for k in value:
            if k not in allowed:
                self.error((*path, k), f"unknown key '{k}' in {what}; allowed: {', '.join(allowed)}"
                           + did_you_mean(k, allowed), key=True)

    def secrets(self, path: PathT, value: Any, owner: str) -> dict[str, str | Secret]:
        """A ``secrets:`` mapping (shared or a device's), checked: name -> value."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"secrets of {owner} must be a mapping of NAME: value (a value or !secret NAME)")
            return {}
        out: dict[str, str | Secret] = {}
        for name, v in value.items():
            where = (*path, name)
            if name not in self.used:
                uses = ", ".join(sorted(self.used)) or "none"
                self.error(where, f"secret '{name}' of {owner} is not used by the spec (its !secret names: "
                           f"{uses})" + did_you_mean(name, self.used), key=True)
            elif isinstance(v, (dict, list)):
                self.error(where, f"secret '{name}' of {owner} must be a single value")
            elif v is None:
                self.error(where, f"secret '{name}' of {owner} has no value: write it after '{name}:' "
                           "or use !secret NAME")
            else:
                out[name] = v
        return out

    def values(self, device: str, dpath: PathT, own: dict[str, str | Secret],
               shared: dict[str, str | Secret], shared_path: PathT) -> dict[str, bytes]:
        """The device's NVS values for the spec's slots (its own, else the shared ones)."""
        out: dict[str, bytes] = {}
        for slot in self.plan.secrets:
            if not slot.name:  # a plain value in the spec (a Wi-Fi name written out): the same everywhere
                out[slot.key] = self.spec_values[slot.key]
                continue
            if slot.name in own:
                value, where = own[slot.name], (*dpath, "secrets", slot.name)
            elif slot.name in shared:
                value, where = shared[slot.name], (*shared_path, slot.name)
            else:
                self.error(dpath, f"device '{device}' has no value for secret '{slot.name}' (used at "
                           f"{slot.spec_path}): add '{slot.name}: ...' under its secrets:, or under the "
                           "top-level secrets: shared by every device")
                continue
            text = value.value if isinstance(value, Secret) else str(value)
            shown = f"secret '{slot.name}' (from !secret {value.name})" if isinstance(value, Secret) \
                and value.name != slot.name else f"secret '{slot.name}'"
            whose = f"device '{device}'" if slot.name in own else "the shared secrets"
            for role, problem in _value_problems(text, slot.spec_path):
                if (whose, slot.name, problem) in self.reported:
                    continue  # a shared value: once, not once per device
                self.reported.add((whose, slot.name, problem))
                mark = value.mark if isinstance(value, Secret) and value.mark else None
                self.error(where, f"{whose}: {shown}, used as {role} ({slot.spec_path}), {problem}", mark=mark)
            out[slot.key] = text.encode("utf-8")
        return out


def load_fleet(path: Path, plan: Plan, spec_values: dict[str, bytes]) -> Fleet:
    """Read and check a devices file against the plan's secret slots; DiagnosticError (every
    problem, each at FILE:LINE:COL) when anything is wrong. Writes nothing."""
    from clawgen.loader import SpecLoader

    path = Path(path)
    if not path.is_file():
        raise DiagnosticError(Diagnostic(str(path), 1, 1, "", "error", "devices file not found"
                                         if not path.exists() else "the devices file is not a regular file"))
    loader = SpecLoader(path, display_root=str(path))
    loader.raw_scalars = True  # values are text as written: a password "0123" or "yes" stays text
    try:
        doc = loader.load()
    except DiagnosticError as e:  # the loader speaks of specs; here its secrets.yaml is the devices file's
        raise DiagnosticError([dataclasses.replace(d, message=d.message.replace(
            "beside the spec", "beside the devices file")) for d in e.diagnostics]) from None
    c = _Checker(doc, plan, spec_values)
    data = doc.data
    if not isinstance(data, dict):
        raise DiagnosticError(Diagnostic(str(path), 1, 1, "", "error", "a devices file is a mapping with a "
                                         "'devices:' list (- name: kitchen ...)"))
    c.keys((), data, _TOP_KEYS, "the devices file")
    shared = c.secrets(("secrets",), data.get("secrets"), "all devices")
    entries = data.get("devices")
    if "devices" not in data:
        c.error((), "no 'devices:' list: list each device as '- name: NAME'")
        entries = []
    elif not isinstance(entries, list) or not entries:
        c.error(("devices",), "the devices list is empty: list each device as '- name: NAME'"
                if not entries else "'devices:' must be a list of devices ('- name: NAME')")
        entries = []
    host_re = _hostname_re()
    seen: dict[str, int] = {}
    devices: list[Device] = []
    for i, entry in enumerate(entries):
        dpath: PathT = ("devices", i)
        if not isinstance(entry, dict):
            c.error(dpath, "a device is a mapping with at least a name ('- name: kitchen')")
            continue
        c.keys(dpath, entry, _DEVICE_KEYS, "a device")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            c.error(dpath, "the device has no name: add 'name: NAME' (lower-case letters, digits and '-')")
            continue
        if not _NAME_RE.fullmatch(name) or len(name) > NAME_MAX:
            c.error((*dpath, "name"), f"device name '{name}' is not hostname-safe: use 1-{NAME_MAX} lower-case "
                    "letters, digits and '-', not starting or ending with '-' (e.g. kitchen-1)")
            continue
        if name in seen:
            first = doc.mark(("devices", seen[name], "name"))
            c.error((*dpath, "name"), f"device name '{name}' is used twice (first at line {first.line}); "
                    "each device needs its own name")
            continue
        seen[name] = i
        hostname = entry.get("hostname", name)
        if not isinstance(hostname, str) or not host_re.fullmatch(hostname):
            c.error((*dpath, "hostname"), f"hostname '{hostname}' of device '{name}' is not valid: a hostname "
                    "is letters, digits and '-', at most 32 characters")
            continue
        own = c.secrets((*dpath, "secrets"), entry.get("secrets"), f"device '{name}'")
        values = c.values(name, dpath, own, shared, ("secrets",))
        values[NAME_KEY] = name.encode()
        values[HOST_KEY] = hostname.encode()
        devices.append(Device(name, hostname, doc.mark(dpath), values))
    if c.errors:
        raise DiagnosticError(in_file_order(c.errors, str(path)))
    return Fleet(path, tuple(devices), tuple(doc.files))


# -- images (the image stage) --------------------------------------------------------------------

def write_device_images(fleet: Fleet, out_dir: Path, nvs_offset: int, nvs_size: int,
                        key: bytes | None, spec_name: str) -> tuple[dict[str, Any], list[str]]:
    """devices/NAME/nvs.bin and device.json for each device under ``out_dir`` (the staging build).

    -> (flash_args.json's "fleet" entry, report lines). DiagnosticError when a device's values
    do not fit the nvs partition.
    """
    from clawgen.image import nvs

    built: list[tuple[Device, bytes]] = []
    errors: list[Diagnostic] = []
    for dev in fleet.devices:
        try:
            built.append((dev, nvs.build_nvs_image(dev.values, nvs_size, key)))
        except nvs.NvsOverflowError as e:
            errors.append(Diagnostic.at(dev.mark, "", f"device '{dev.name}': its NVS values need {e.needed} "
                                        f"bytes, more than the {e.capacity}-byte nvs partition: shorten its "
                                        "secrets"))
    if errors:
        raise DiagnosticError(errors)
    most = 0
    table: dict[str, str] = {}
    for dev, image in built:
        d = out_dir / DEVICES_DIR / dev.name
        d.mkdir(parents=True, exist_ok=True)
        nvs.write_private(d / "nvs.bin", image)
        info = {"clawgen": __version__, "spec": spec_name, "name": dev.name, "hostname": dev.hostname,
                "nvs_keys": sorted(dev.values), "nvs": "nvs.bin"}
        (d / DEVICE_JSON).write_text(json.dumps(info, indent=2) + "\n")
        table[dev.name] = f"{DEVICES_DIR}/{dev.name}/nvs.bin"
        most = max(most, _pages_used(image))
    entry = {"nvs": {"offset": nvs_offset, "size": nvs_size, "name": "nvs"}, "devices": table}
    report = [f"fleet: {len(built)} device(s) from {fleet.path}: {DEVICES_DIR}/<name>/nvs.bin "
              f"(NVS up to {most} of {nvs_size} bytes used); flash one with --device NAME"]
    return entry, report


def _pages_used(image: bytes) -> int:
    from clawgen.image import nvs

    return sum(1 for p in range(0, len(image), nvs.PAGE_SIZE)
               if image[p:p + 4] in (b"\xfe\xff\xff\xff", b"\xfc\xff\xff\xff")) * nvs.PAGE_SIZE


# -- flashing --------------------------------------------------------------------------------------

def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NAMES])
    return shown + (f" ... and {len(names) - _SHOWN_NAMES} more (see {DEVICES_DIR}/)"
                    if len(names) > _SHOWN_NAMES else "")


def flash_region(doc: dict[str, Any], args_file: Path, device: str | None) -> FlashRegion | None:
    """The device's NVS region to write after the build's images, or None for a single build.

    UsageError: a fleet build without --device, --device on a single build, an unknown device.
    DiagnosticError: a "fleet" entry in flash_args.json that is not usable.
    """
    from clawgen.image.regions import FlashRegion

    fleet = doc.get("fleet")
    if fleet is None:
        if device is not None:
            raise UsageError(f"--device {device}: this build has no devices (it was built without --devices); "
                             "leave out --device")
        return None

    def bad(message: str, path: str = "fleet") -> DiagnosticError:
        return DiagnosticError(Diagnostic(str(args_file), 1, 1, path, "error", message))

    if not isinstance(fleet, dict) or not isinstance(fleet.get("devices"), dict) \
            or not isinstance(fleet.get("nvs"), dict):
        raise bad("expected {\"nvs\": {...}, \"devices\": {NAME: FILE}}")
    table: dict[str, Any] = fleet["devices"]
    names = sorted(table)
    if device is None:
        raise UsageError(f"{args_file.parent.parent} is a fleet build of {len(names)} device(s): choose one "
                         f"with --device NAME ({_names(names)})")
    if device not in table:
        raise UsageError(f"no device '{device}' in this fleet build{did_you_mean(device, names)}; "
                         f"its devices: {_names(names)}")
    offset, size = fleet["nvs"].get("offset"), fleet["nvs"].get("size")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, size)):
        raise bad("nvs offset and size must be non-negative integers", "fleet.nvs")
    rel = table[device]
    build_dir = args_file.parent.parent
    if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise bad(f"the NVS image of device '{device}' must be a path inside {build_dir}, not {rel!r}",
                  f"fleet.devices.{device}")
    file = build_dir / rel
    if not file.is_file():
        raise bad(f"{rel} is listed but missing from {build_dir}", f"fleet.devices.{device}")
    if file.stat().st_size != size:
        raise bad(f"{rel} has {file.stat().st_size} bytes; the nvs partition has {size}",
                  f"fleet.devices.{device}")
    return FlashRegion(str(fleet["nvs"].get("name") or "nvs"), offset, file)
