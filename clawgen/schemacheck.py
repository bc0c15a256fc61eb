"""Validate stage, the quick answer: does a spec satisfy the schema, yes or no, without jsonschema.

``accepts(schema, instance)`` interprets the part of JSON Schema 2020-12 that
schemas/agent.schema.json uses, with jsonschema's semantics (integer means a number with no
fraction, ``true`` is not ``1``, a pattern's final ``$`` is the end of the string as in ECMA-262,
a bound fails only when the comparison with it fails, so NaN passes them as in jsonschema: the
plan stage refuses it).
It answers only "valid" or "not valid": clawgen/schema.py runs jsonschema, and builds its
diagnostics, only when the answer is "not valid". A valid spec, the common case of every build,
then never imports jsonschema (about 35 ms of a build's imports).

A keyword it does not know makes it answer ``None`` (no opinion), and the caller asks jsonschema:
a schema change can make it slower, never wrong. tests/spec/test_schemacheck.py holds it to
jsonschema's verdict on every example, every spec in the tests, and many mutations of them.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# Keywords that never affect validity (annotations, and the ones our messages read).
_ANNOTATIONS = frozenset({"description", "default", "examples", "title", "patternErrorMessage", "$schema",
                          "$id", "$comment", "deprecated", "readOnly", "writeOnly", "markdownDescription"})


class _Unknown(Exception):
    """The schema uses a keyword this module does not interpret."""


@functools.cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern with JSON Schema's (ECMA-262) meaning of a final '$': the very end of the
    string. Python's '$' also matches before a final newline, so "demo\n" would pass "^[a-z]+$"."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, (int, float))
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise _Unknown(f"type {name!r}")


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0, containers compare member by member."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return bool(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Checker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def ok(self, schema: Any, value: Any) -> bool:
        if schema is True:
            return True
        if schema is False:
            return False
        if not isinstance(schema, dict):
            raise _Unknown("a schema that is not an object")
        for key, arg in schema.items():
            if key in _ANNOTATIONS:
                continue
            check = _KEYWORDS.get(key)
            if check is None:
                raise _Unknown(key)
            if not check(self, arg, value, schema):
                return False
        return True

    def ref(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise _Unknown(f"$ref {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise _Unknown(f"$ref {ref!r}")
            node = node[part]
        return node


def _k_type(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    return any(_is_type(v, t) for t in arg) if isinstance(arg, list) else _is_type(v, arg)


def _k_properties(c: _Checker, arg: dict[str, Any], v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, dict) or all(c.ok(sub, v[k]) for k, sub in arg.items() if k in v)


def _k_pattern_properties(c: _Checker, arg: dict[str, Any], v: Any, s: dict[str, Any]) -> bool:
    if not isinstance(v, dict):
        return True
    return all(c.ok(sub, x) for p, sub in arg.items() for k, x in v.items()
               if isinstance(k, str) and ecma_regex(p).search(k))


def _k_additional(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    if not isinstance(v, dict):
        return True
    known = s.get("properties", {})
    patterns = [ecma_regex(p) for p in s.get("patternProperties", {})]
    return all(c.ok(arg, x) for k, x in v.items()
               if k not in known and not (isinstance(k, str) and any(p.search(k) for p in patterns)))


def _k_required(c: _Checker, arg: list[str], v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, dict) or all(k in v for k in arg)


def _k_property_names(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, dict) or all(c.ok(arg, k) for k in v)


def _k_min_properties(c: _Checker, arg: int, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, dict) or len(v) >= arg


def _k_max_properties(c: _Checker, arg: int, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, dict) or len(v) <= arg


def _k_items(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    if "prefixItems" in s:
        raise _Unknown("items after prefixItems")
    return not isinstance(v, list) or all(c.ok(arg, x) for x in v)


def _k_min_items(c: _Checker, arg: int, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, list) or len(v) >= arg


def _k_max_items(c: _Checker, arg: int, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, list) or len(v) <= arg


def _k_unique(c: _Checker, arg: bool, v: Any, s: dict[str, Any]) -> bool:
    if not arg or not isinstance(v, list):
        return True
    return not any(_equal(v[i], v[j]) for i in range(len(v)) for j in range(i + 1, len(v)))


def _k_enum(c: _Checker, arg: list[Any], v: Any, s: dict[str, Any]) -> bool:
    return any(_equal(v, e) for e in arg)


def _k_const(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    return _equal(v, arg)


def _k_pattern(c: _Checker, arg: str, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, str) or ecma_regex(arg).search(v) is not None


def _k_min_length(c: _Checker, arg: int, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, str) or len(v) >= arg


def _k_max_length(c: _Checker, arg: int, v: Any, s: dict[str, Any]) -> bool:
    return not isinstance(v, str) or len(v) <= arg


def _k_minimum(c: _Checker, arg: float, v: Any, s: dict[str, Any]) -> bool:
    return not _is_number(v) or not v < arg


def _k_maximum(c: _Checker, arg: float, v: Any, s: dict[str, Any]) -> bool:
    return not _is_number(v) or not v > arg


def _k_exclusive_minimum(c: _Checker, arg: float, v: Any, s: dict[str, Any]) -> bool:
    return not _is_number(v) or not v <= arg


def _k_exclusive_maximum(c: _Checker, arg: float, v: Any, s: dict[str, Any]) -> bool:
    return not _is_number(v) or not v >= arg


def _k_one_of(c: _Checker, arg: list[Any], v: Any, s: dict[str, Any]) -> bool:
    return sum(1 for sub in arg if c.ok(sub, v)) == 1


def _k_any_of(c: _Checker, arg: list[Any], v: Any, s: dict[str, Any]) -> bool:
    return any(c.ok(sub, v) for sub in arg)


def _k_all_of(c: _Checker, arg: list[Any], v: Any, s: dict[str, Any]) -> bool:
    return all(c.ok(sub, v) for sub in arg)


def _k_not(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    return not c.ok(arg, v)


def _k_ref(c: _Checker, arg: str, v: Any, s: dict[str, Any]) -> bool:
    return c.ok(c.ref(arg), v)


def _k_defs(c: _Checker, arg: Any, v: Any, s: dict[str, Any]) -> bool:
    return True  # definitions are read through $ref


_KEYWORDS = {
    "type": _k_type, "properties": _k_properties, "patternProperties": _k_pattern_properties,
    "additionalProperties": _k_additional, "required": _k_required, "propertyNames": _k_property_names,
    "minProperties": _k_min_properties, "maxProperties": _k_max_properties,
    "items": _k_items, "minItems": _k_min_items, "maxItems": _k_max_items, "uniqueItems": _k_unique,
    "enum": _k_enum, "const": _k_const, "pattern": _k_pattern, "minLength": _k_min_length,
    "maxLength": _k_max_length, "minimum": _k_minimum, "maximum": _k_maximum,
    "exclusiveMinimum": _k_exclusive_minimum, "exclusiveMaximum": _k_exclusive_maximum,
    "oneOf": _k_one_of, "anyOf": _k_any_of, "allOf": _k_all_of, "not": _k_not, "$ref": _k_ref,
    "$defs": _k_defs,
}


def accepts(schema: dict[str, Any], instance: Any) -> bool | None:
    """True: the instance is valid; False: it is not; None: the schema uses a keyword not interpreted here."""
    try:
        return _Checker(schema).ok(schema, instance)
    except _Unknown:
        return None
    except RecursionError:
        return None
