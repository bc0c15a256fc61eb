"""No secret value in the generated code: found by where secrets flow, never by searching the output.

Secrets enter clawgen only as ``loader.Secret`` objects at the places the schema allows them, and
leave only through the plan's NVS slots (the NVS image, the simulator). Three checks prove the
generated sources hold none of them, and none of them can fire on the code's own words:

- **flow**: the spec is planned a second time with every secret value replaced by a random
  canary. Everything the templates can read in that plan is searched for the canaries: one found
  there means a secret value flows into the generated code (a clawgen bug, reported as such). A
  canary is random, so nothing else can match it.
- **pasted**: a secret value of at least ``PASTED_MIN`` bytes written in clear in the spec itself
  (a key pasted into a system prompt or a tool description) is refused at that FILE:LINE:COL.
- **handler files**: the same for the user's handler modules, which ship as written.

Shorter values are not searched for in user-written text: a Wi-Fi password "password" or
"connected" must not make every text that says so a leak.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.model import Plan

PASTED_MIN = 12
CANARY_PREFIX = "clawgen-canary-"


def _text_values(values: Mapping[str, bytes]) -> dict[str, str]:
    out = {}
    for key, raw in values.items():
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            continue  # not text: no spec or template text can hold it as such
        if len(text.encode()) >= PASTED_MIN:
            out[key] = text
    return out


# -- pasted into the spec ------------------------------------------------------------------

def _strings(value: Any, path: PathT) -> Iterator[tuple[PathT, str, bool]]:
    """(path, text, is_key) for every string the user wrote in the spec (secrets excluded)."""
    if isinstance(value, Secret):
        return
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield (*path, k), k, True
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def check_pasted(doc: Document, nvs_values: Mapping[str, bytes], slot_names: Mapping[str, str]) -> list[Diagnostic]:
    """Secret values written in clear in the spec: one diagnostic per place, naming the secret only."""
    values = _text_values(nvs_values)
    out = []
    for path, text, is_key in _strings(doc.data, ()):
        for key, value in values.items():
            if value in text:
                out.append(Diagnostic.at(doc.mark(path, key=is_key), format_path(path),
                                         f"this text holds the value of {slot_names.get(key, key)} in clear, and "
                                         "would be written into the generated code; remove it (the device reads "
                                         "secrets from NVS)"))
    return out


# -- handler files ---------------------------------------------------------------------------

def check_handler_files(plan: Plan, nvs_values: Mapping[str, bytes], slot_names: Mapping[str, str]) -> None:
    values = _text_values(nvs_values)
    errors = []
    for cm in plan.custom_modules:
        text = cm.source.read_text(encoding="utf-8")
        for key, value in values.items():
            i = text.find(value)
            if i >= 0:
                line = text.count("\n", 0, i) + 1
                col = i - (text.rfind("\n", 0, i) + 1) + 1
                errors.append(Diagnostic(str(cm.source), line, col, "", "error",
                                         f"this file holds the value of {slot_names.get(key, key)}, and would "
                                         "ship in clear to the device; read it on the device from NVS instead"))
    if errors:
        raise DiagnosticError(errors)


# -- flow ----------------------------------------------------------------------------------

def _swap(value: Any, canaries: dict[int, Secret], memo: dict[int, Any]) -> Any:
    """``value`` with every Secret replaced by a canary Secret (same name, random value)."""
    if isinstance(value, (str, bytes, int, float, bool, type(None), Path, enum.Enum, Mark, Diagnostic)):
        return value  # (positions and messages: many, and never a secret)
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, Secret):
        new = canaries.get(id(value))
        if new is None:
            new = Secret(value.name, CANARY_PREFIX + os.urandom(12).hex(), value.source, value.mark,
                         value.placeholder)
            canaries[id(value)] = new
        return new
    memo[id(value)] = value  # (a cycle leads back to the original; none is expected)
    new_value: Any = value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if f.init:
                old = getattr(value, f.name)
                swapped = _swap(old, canaries, memo)
                if swapped is not old:
                    changes[f.name] = swapped
        new_value = dataclasses.replace(value, **changes) if changes else value
    elif isinstance(value, dict):
        items = {k: _swap(v, canaries, memo) for k, v in value.items()}
        new_value = items if any(items[k] is not value[k] for k in value) else value
    elif isinstance(value, (list, tuple)):
        seq = [_swap(v, canaries, memo) for v in value]
        if any(a is not b for a, b in zip(seq, value, strict=True)):
            new_value = type(value)(seq) if isinstance(value, list) else tuple(seq)
    memo[id(value)] = new_value
    return new_value


def _leaves(value: Any, where: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    """(place, str or Secret) for every string the templates can reach in the plan."""
    if isinstance(value, (str, Secret)):
        yield where, value
    elif isinstance(value, bytes):
        yield where, value.decode("utf-8", "replace")
    elif isinstance(value, (int, float, bool, type(None), Path)):
        return
    elif isinstance(value, enum.Enum):
        yield from _leaves(value.value, where, seen)
    elif id(value) in seen:
        return
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        seen.add(id(value))
        for f in dataclasses.fields(value):
            if where == "plan" and f.name in ("registers", "custom_modules"):
                continue  # chip tables (no spec value reaches them) and the user's files (checked apart)
            yield from _leaves(getattr(value, f.name), f"{where}.{f.name}", seen)
    elif isinstance(value, Mapping):
        seen.add(id(value))
        for k, v in value.items():
            yield from _leaves(k, f"{where}[{k!r}]", seen)
            yield from _leaves(v, f"{where}[{k!r}]", seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        seen.add(id(value))
        for i, v in enumerate(value):
            yield from _leaves(v, f"{where}[{i}]", seen)
    else:
        # An object the walk does not know could hide a value: refuse rather than skip it.
        raise TypeError(f"{where}: the plan holds a {type(value).__name__}, which the secret check cannot read")


def check_flow(resolved: Any, spec_file: str,
               make_plan: Callable[[Any, str], tuple[Plan, dict[str, bytes], list[Diagnostic]]]) -> None:
    """Plan again with canary secret values; DiagnosticError if a canary reaches the template context."""
    canaries: dict[int, Secret] = {}
    canary_res = _swap(resolved, canaries, {})
    if not canaries:
        return
    plan, _values, _diags = make_plan(canary_res, spec_file)
    uses = {s.name: format_path(p) for p, s in getattr(resolved, "secret_values", {}).items()}
    errors = []
    for place, text in _leaves(plan, "plan", set()):
        for c in canaries.values():
            if isinstance(text, Secret):
                found = text.name == c.name
            else:
                found = c.value in text
            if found:
                what = "the secret" if isinstance(text, Secret) else "the value of the secret"
                errors.append(Diagnostic(spec_file, 1, 1, uses.get(c.name, ""), "error",
                                         f"{what} '{c.name}' would be written in clear into the generated code "
                                         f"({place}): a clawgen bug, please report it; secrets go to NVS only"))
    if errors:
        raise DiagnosticError(errors)
