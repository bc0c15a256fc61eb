"""Validate stage, part 1: the spec against schemas/agent.schema.json.

clawgen/schemacheck.py answers whether the spec is valid; only when it is not does jsonschema
find the problems, and this module turns each into one diagnostic at the right line and column,
in words a user can act on ("unknown key 'modle' (did you mean "model"?)"), instead of
jsonschema's generic messages. A valid spec never imports jsonschema.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from clawgen.diagnostics import Diagnostic, did_you_mean, in_file_order
from clawgen.loader import Document, PathT, Secret, format_path
from clawgen.resources import schemas_dir
from clawgen.schemacheck import accepts, ecma_regex

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = "agent.schema.json"
SCHEMA_ID = "https://clawgen.dev/schemas/agent.schema.json"

_TYPE_WORDS = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "nothing",
}


@functools.lru_cache(maxsize=1)
def agent_schema() -> dict[str, Any]:
    return json.loads((schemas_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    """jsonschema's Draft 2020-12 validator with ECMA-262 patterns (imported only for a spec with errors)."""
    import jsonschema

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})(agent_schema())


def schema_errors(instance: Any) -> list[ValidationError]:
    """jsonschema's errors for a JSON-like instance; none, without importing it, when it is valid."""
    if accepts(agent_schema(), instance):
        return []
    return list(_validator().iter_errors(instance))


@functools.lru_cache(maxsize=1)
def _key_homes() -> dict[str, tuple[str, ...]]:
    """Every key the schema knows -> the spec paths of the mappings that accept it."""
    root = agent_schema()
    homes: dict[str, list[str]] = {}

    def walk(node: Any, where: str, depth: int) -> None:
        if not isinstance(node, dict) or depth > 6:
            return
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            walk(root.get("$defs", {}).get(ref[len("#/$defs/"):]), where, depth + 1)
        for key, sub in (node.get("properties") or {}).items():
            path = f"{where}.{key}" if where else key
            homes.setdefault(key, []).append(where)
            walk(sub, path, depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[N]", depth + 1)
        for alt in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(alt) or []:
                walk(sub, where, depth + 1)

    walk(root, "", 0)
    return {k: tuple(dict.fromkeys(v)) for k, v in homes.items()}


def _belongs_under(key: str, here: PathT) -> str:
    """' (it belongs under 'model')' when the key is valid at another level of the spec."""
    here_text = format_path(here)
    homes = [h for h in _key_homes().get(key, ()) if h != here_text and not h.startswith("tools[N].parameters")]
    # 'model' rather than also 'model.fallbacks[N]': the outermost home is the likely one.
    homes = [h for h in homes if not any(o and h.startswith(o + ".") for o in homes)]
    if not homes or len(homes) > 2:
        return ""
    where = " or ".join(f"'{h}'" if h else "the top level" for h in homes)
    return f" (it belongs under {where})" if all(homes) else f" (it belongs at {where})"


def _plain(value: Any) -> Any:
    """The spec as JSON-like data for the schema (a secret is a string to it)."""
    if isinstance(value, Secret):
        return "<secret>"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return "a string"


def _expected(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    return " or ".join(_TYPE_WORDS.get(t, t) for t in types)


def _got(value: Any) -> str:
    """'a string' plus the text itself, which may come from a ${NAME} substitution the user cannot see."""
    if isinstance(value, str) and value != "<secret>":
        return f"the string {_show(value)}"
    return _type_name(value)


def _show(value: Any) -> str:
    """A short quotation of a value; control characters shown escaped (a CR must not reach the terminal)."""
    if isinstance(value, str):
        value = "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in value)
    text = json.dumps(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 40 else text[:37] + "..."


def _branch_errors(error: ValidationError) -> list[ValidationError]:
    """For oneOf/anyOf: the errors of the branch that best fits the value's type."""
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else 0, []).append(sub)
    best: list[ValidationError] | None = None
    for errs in by_branch.values():
        type_mismatch = any(e.validator == "type" and not e.relative_path for e in errs) or any(
            e.validator == "enum" and not e.relative_path and not isinstance(e.instance, str) for e in errs)
        if not type_mismatch and (best is None or len(errs) < len(best)):
            best = errs
    return best or []


def _alternatives(error: ValidationError) -> str:
    words: list[str] = []
    for sub in error.schema.get("oneOf", error.schema.get("anyOf", [])):
        if "enum" in sub:
            words.append("one of " + ", ".join(str(v) for v in sub["enum"]))
        elif "type" in sub:
            words.append(_expected(sub["type"]))
    return " or ".join(words) if words else "a different value"


def _diagnose(doc: Document, error: ValidationError, out: list[Diagnostic]) -> None:
    path: PathT = tuple(error.absolute_path)
    v = error.validator
    inst = error.instance
    if "propertyNames" in error.absolute_schema_path and v != "propertyNames" and isinstance(inst, str):
        # a bad key: point at the key itself, not at the mapping that holds it
        path = (*path, inst)
        out.append(Diagnostic.at(doc.mark(path, key=True), format_path(path), _key_message(error, inst)))
        return
    where = format_path(path)
    if v in ("oneOf", "anyOf"):
        subs = _branch_errors(error)
        if subs:
            for sub in subs:
                _diagnose(doc, sub, out)
            return
        out.append(Diagnostic.at(doc.mark(path), where,
                                 f"expected {_alternatives(error)}, got {_got(inst)}"))
        return
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        for key in extra:
            kp = (*path, key)
            hint = _belongs_under(key, path) or did_you_mean(key, allowed)
            if not hint:
                hint = f" (expected one of: {', '.join(allowed)})" if len(allowed) <= 12 else ""
            out.append(Diagnostic.at(doc.mark(kp, key=True), format_path(kp), f"unknown key '{key}'{hint}"))
        return
    if v == "required":
        missing = [r for r in error.validator_value if isinstance(inst, dict) and r not in inst]
        for key in missing:
            out.append(Diagnostic.at(doc.mark(path), where, f"missing required key '{key}'"))
        return
    if v == "type":
        needs = error.schema.get("required") if "object" in str(error.validator_value) else None
        # `model: gpt-4o` instead of a block: say what the block holds.
        keys = (", ".join(needs[:-1]) + " and " + needs[-1]) if needs and len(needs) > 1 else "".join(needs or ())
        shape = f" (with key{'s' if len(needs) > 1 else ''} {keys})" if needs and not isinstance(inst, dict) else ""
        out.append(Diagnostic.at(doc.mark(path), where,
                                 f"expected {_expected(error.validator_value)}{shape}, got {_got(inst)}"))
        return
    if v == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = did_you_mean(str(inst), choices) if isinstance(inst, str) else ""
        out.append(Diagnostic.at(doc.mark(path), where,
                                 f"{_show(inst)} is not one of: {', '.join(choices)}{hint}"))
        return
    if v == "pattern":
        rule = error.schema.get("patternErrorMessage") or f"expected the form {error.validator_value}"
        out.append(Diagnostic.at(doc.mark(path), where, f"{_show(inst)} is not valid: {rule}"))
        return
    if v == "propertyNames":
        for sub in error.context or []:
            _diagnose(doc, sub, out)
        if not error.context:
            out.append(Diagnostic.at(doc.mark(path), where, f"invalid key: {error.message}"))
        return
    messages = {
        "minimum": lambda: f"{_show(inst)} is too small: the minimum is {error.validator_value}",
        "maximum": lambda: f"{_show(inst)} is too large: the maximum is {error.validator_value}",
        "exclusiveMinimum": lambda: f"{_show(inst)} must be greater than {error.validator_value}",
        "minLength": lambda: "must not be empty" if error.validator_value == 1
        else f"must be at least {error.validator_value} characters",
        "maxLength": lambda: f"is {len(inst)} characters long; at most {error.validator_value} are allowed",
        "maxItems": lambda: f"has {len(inst)} items; at most {error.validator_value} are allowed",
        "minItems": lambda: "must not be empty" if error.validator_value == 1
        else f"has {len(inst)} items; at least {error.validator_value} are needed",
        "minProperties": lambda: "must not be empty",
        "uniqueItems": lambda: "lists the same item twice",
    }
    msg = messages.get(str(v), lambda: error.message)()
    out.append(Diagnostic.at(doc.mark(path), where, msg))


def _key_message(error: ValidationError, key: str) -> str:
    if error.validator == "pattern":
        rule = error.schema.get("patternErrorMessage") or f"expected the form {error.validator_value}"
        return f"invalid key {_show(key)}: {rule}"
    return f"invalid key {_show(key)}: {error.message}"


def limit_maximum(name: str) -> int | None:
    """The schema's maximum for ``limits.NAME`` (one source of truth for messages that need it)."""
    prop = agent_schema().get("properties", {}).get("limits", {}).get("properties", {}).get(name, {})
    most = prop.get("maximum")
    return most if isinstance(most, int) else None


# Headers the device writes itself or that carry credentials: a spec may not add them.
# (lower-case name -> why; names are case-insensitive in HTTP)
_FRAMING = "controls how the request is framed and sent; the device sets it itself"
_CREDENTIAL = ("would put a credential in the spec: give the key as api_key: !secret NAME "
               "(sent as a Bearer token)")
_DEVICE_SET = "is sent by the device itself (a second one would conflict)"
FORBIDDEN_HEADERS: dict[str, str] = {
    **dict.fromkeys(("content-length", "host", "transfer-encoding", "connection", "upgrade", "te",
                     "trailer", "expect", "keep-alive", "content-encoding", "accept-encoding"), _FRAMING),
    **dict.fromkeys(("authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"), _CREDENTIAL),
    **dict.fromkeys(("content-type", "accept", "user-agent", "anthropic-version"), _DEVICE_SET),
}


def header_maps(data: dict[str, Any]) -> list[tuple[PathT, dict[str, Any]]]:
    """Every user-given HTTP header mapping in the spec, with its path."""
    model = data.get("model")
    if not isinstance(model, dict):
        return []
    out: list[tuple[PathT, dict[str, Any]]] = []
    if isinstance(model.get("headers"), dict):
        out.append((("model", "headers"), model["headers"]))
    fallbacks = model.get("fallbacks")
    for i, fb in enumerate(fallbacks if isinstance(fallbacks, list) else []):
        if isinstance(fb, dict) and isinstance(fb.get("headers"), dict):
            out.append((("model", "fallbacks", i, "headers"), fb["headers"]))
    light = model.get("light")
    if isinstance(light, dict) and isinstance(light.get("headers"), dict):
        out.append((("model", "light", "headers"), light["headers"]))
    return out


def check_headers(doc: Document) -> list[Diagnostic]:
    """Framing and credential headers are refused, and a name is given once (the schema checks
    that names are RFC 7230 tokens and values hold no control characters)."""
    out: list[Diagnostic] = []
    for path, headers in header_maps(doc.data):
        seen: dict[str, str] = {}
        for name in headers:
            kp = (*path, name)
            low = str(name).lower()
            if low in FORBIDDEN_HEADERS:
                out.append(Diagnostic.at(doc.mark(kp, key=True), format_path(kp),
                                         f"header {name} {FORBIDDEN_HEADERS[low]}; remove it"))
            elif low in seen:
                out.append(Diagnostic.at(doc.mark(kp, key=True), format_path(kp),
                                         f"header {name} is given twice (as {seen[low]} too; header names "
                                         "are case-insensitive)"))
            seen.setdefault(low, str(name))
    return out


def _secret_allowed(path: PathT) -> bool:
    """!secret belongs only where a secret is expected: keys, passwords, the Wi-Fi name."""
    if path in (("model", "api_key"), ("network", "ssid"), ("network", "password"), ("web", "brave_api_key"),
                ("ota", "key"), ("transports", "telegram", "token"), ("transports", "telnet", "password"),
                ("mcp_server", "token")):
        return True
    return (len(path) == 4 and path[:2] == ("model", "fallbacks") and path[3] == "api_key") or \
        path == ("model", "light", "api_key")


def validate_schema(doc: Document) -> list[Diagnostic]:
    """Schema diagnostics for a loaded document, in file order."""
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else _type_name(doc.data)
        return [Diagnostic.at(doc.mark(()), "", f"the spec is {what}; it must be a mapping with at least "
                              "'name' and 'model' (see `clawgen schema` or docs/spec.md)")]
    out: list[Diagnostic] = []
    for path in doc.secrets:
        if not _secret_allowed(path):
            out.append(Diagnostic.at(doc.mark(path), format_path(path),
                                     "!secret is not allowed here; secrets go in model.api_key, "
                                     "model.fallbacks[N].api_key, model.light.api_key, network.ssid, "
                                     "network.password, web.brave_api_key, ota.key, transports.telegram.token, "
                                     "transports.telnet.password and mcp_server.token"))
    for error in schema_errors(_plain(doc.data)):
        _diagnose(doc, error, out)
    out += check_headers(doc)
    from clawgen.secretcheck import check_secret_values

    out += check_secret_values(doc)
    unique: dict[tuple[str, int, int, str], Diagnostic] = {}
    for d in out:
        unique.setdefault((d.file, d.line, d.column, d.message), d)
    return in_file_order(unique.values(), str(doc.path))
