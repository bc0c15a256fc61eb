"""clawgen/schemacheck.py against jsonschema: the same verdict (valid or not) on every example, every
spec of the invalid corpus, and a few thousand mutations of the examples (each value replaced by
values of other types and at the schema's bounds, keys removed and added, list items doubled).
A build trusts its "valid" without asking jsonschema, so a disagreement here is a real bug."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawgen import schemacheck
from clawgen.diagnostics import DiagnosticError
from clawgen.loader import load_spec
from clawgen.schema import _plain, _validator, agent_schema

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples" / "agents").glob("*.yaml") if p.name != "secrets.yaml")
CORPUS = Path(__file__).parent / "invalid"


def _jsonschema_valid(instance: Any) -> bool:
    return not any(True for _ in _validator().iter_errors(instance))


def _plain_doc(path: Path) -> Any | None:
    try:
        return _plain(load_spec(path, placeholder_secrets=True).data)
    except DiagnosticError:
        return None  # a spec the loader refuses never reaches the schema


def _bounds(schema: Any) -> set[Any]:
    """Values at and around every bound the schema states (numbers and string lengths)."""
    out: set[Any] = set()
    if isinstance(schema, dict):
        for key, val in schema.items():
            if key in ("minimum", "maximum", "exclusiveMinimum") and isinstance(val, (int, float)):
                out |= {val - 1, val, val + 1, val + 0.5, float(val)}
            elif key in ("minLength", "maxLength") and isinstance(val, int) and val < 5000:
                out |= {"a" * max(val - 1, 0), "a" * val, "a" * (val + 1)}
            elif key == "enum":
                out |= {v for v in val if isinstance(v, (str, int, float, bool))}
            else:
                out |= _bounds(val)
    elif isinstance(schema, list):
        for val in schema:
            out |= _bounds(val)
    return out


PROBES: list[Any] = [None, True, False, 0, -1, 1, 1.0, 2.5, 10**12, "", "x", "a\nb", "ab$", " x", [], {}, ["x"],
                     [1, 1], {"k": 1}, {"model": "m"}, "http://127.0.0.1:8080/v1", "GPIO4", "X-Key", "a" * 300]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], fn: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return fn(doc)
    node = doc
    for p in path[:-1]:
        node = node[p]
    result = fn(node[path[-1]])
    if result is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = result
    return doc


_DELETE = object()


def _mutations(doc: Any, rng: random.Random, bounds: list[Any], n: int) -> Iterator[Any]:
    paths = list(_paths(doc))
    for _ in range(n):
        path = rng.choice(paths)
        kind = rng.random()
        if kind < 0.55:
            probe = rng.choice(PROBES + bounds)
            yield _set(doc, path, lambda _v, probe=probe: copy.deepcopy(probe))
        elif kind < 0.7 and path:
            yield _set(doc, path, lambda _v: _DELETE)
        elif kind < 0.85:
            def add(v: Any) -> Any:
                if isinstance(v, dict):
                    v[rng.choice(["extra", "modle", "description", "enabled", "max_tokens", "1", "A B"])] = \
                        rng.choice(PROBES)
                elif isinstance(v, list) and v:
                    v.append(copy.deepcopy(v[0]))
                return v
            yield _set(doc, path, add)
        else:  # a neighbour's value: valid shapes in the wrong place
            other = rng.choice(paths)
            src = doc
            for p in other:
                src = src[p]
            yield _set(doc, path, lambda _v, src=src: copy.deepcopy(src))


def test_examples_and_corpus_agree() -> None:
    files = EXAMPLES + sorted(CORPUS.glob("*.yaml")) + sorted(CORPUS.glob("*/spec.yaml"))
    checked = valid = 0
    for path in files:
        data = _plain_doc(path)
        if data is None:
            continue
        want = _jsonschema_valid(data)
        assert schemacheck.accepts(agent_schema(), data) is want, path
        checked += 1
        valid += want
    assert checked >= 100 and 0 < valid < checked, (checked, valid)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_mutations_agree(example: Path) -> None:
    doc = _plain_doc(example)
    assert doc is not None and _jsonschema_valid(doc)
    rng = random.Random(example.stem)
    bounds = sorted(_bounds(agent_schema()), key=repr)
    seen = {True: 0, False: 0}
    for mutant in _mutations(doc, rng, bounds, 400):
        want = _jsonschema_valid(mutant)
        got = schemacheck.accepts(agent_schema(), mutant)
        assert got is want, f"{example.name}: schemacheck says {got}, jsonschema {want} for {mutant!r}"[:2000]
        seen[want] += 1
    assert seen[True] > 20 and seen[False] > 100, seen


def test_semantics_of_the_subtle_keywords() -> None:
    """The JSON Schema rules Python's own comparisons get wrong, each against jsonschema (with the
    ECMA-262 patterns clawgen's validator class adds)."""
    validator_class = type(_validator())
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"type": "integer"}, 1.0), ({"type": "integer"}, True), ({"type": "number"}, False),
        ({"enum": [1]}, True), ({"enum": [True]}, 1), ({"enum": [1]}, 1.0), ({"const": "a"}, "a"),
        ({"uniqueItems": True}, [1, True]), ({"uniqueItems": True}, [1, 1.0]), ({"uniqueItems": True}, [{"a": 1}, {"a": 1}]),
        ({"pattern": "^[a-z]+$"}, "demo\n"), ({"pattern": "^[a-z]+$"}, "demo"), ({"pattern": "b"}, "abc"),
        ({"maximum": 3}, True), ({"maximum": 3}, float("nan")), ({"minLength": 2}, 5), ({"exclusiveMinimum": 0}, 0),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1, "Bad": 2}),
        ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"a": "x", "b": 1}),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 1.5),
        ({"items": {"type": "string"}, "maxItems": 1}, ["a", "b"]),
        ({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"}, 3),
    ]
    for schema, instance in cases:
        want = not any(True for _ in validator_class(schema).iter_errors(instance))
        assert schemacheck.accepts(schema, instance) is want, (schema, instance)


def test_an_unknown_keyword_gives_no_verdict() -> None:
    assert schemacheck.accepts({"format": "email"}, "x") is None
    assert schemacheck.accepts({"$ref": "other.json#/x"}, "x") is None


def test_a_valid_spec_is_checked_without_jsonschema(tmp_path: Path) -> None:
    """The point of the module: validating a good spec imports no jsonschema (a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys; from clawgen.loader import load_spec; from clawgen.schema import validate_schema; "
            f"d = validate_schema(load_spec({str(EXAMPLES[0])!r}, placeholder_secrets=True)); "
            "print(len(d), 'jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "False"]
