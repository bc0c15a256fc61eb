"""Seeded random mutations of structured input, for the tests that feed hostile variants of good input
to the toolchain (tests/spec/test_mutated_specs.py) and to the device (tests/runtime/test_mutated_replies_unix.py).
The same seed gives the same inputs on every run: a failure names its case and reproduces."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

# Values a peer may send where another type is expected: nothing, numbers no C int holds, text the
# device prints or looks up (long, NUL, a line separator), containers, a deep array.
ODD_SCALARS: tuple[Any, ...] = (None, 0, -1, 2**70, 1.5e308, True, "", "x" * 3000, "\u0000\ud7ff\u2028é", "add",
                                '{"a":1,"b":2}', "tool_calls", "stop")
ODD_KEYS = ("id", "type", "function", "name", "arguments", "content", "role", "text", "x")


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.45:
        return rng.choice(ODD_SCALARS)
    if r < 0.6 and depth < 3:
        return [odd_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if r < 0.75 and depth < 3:
        return {rng.choice(ODD_KEYS): odd_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if r < 0.8:
        return json.loads("[" * 300 + "]" * 300)
    return rng.choice([{"a": 1, "b": 2}, [], {}, "null"])


def _paths(obj: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*path, i))


def mutate_json(obj: Any, rng: random.Random) -> Any:
    """A copy of ``obj`` with one to three of its values replaced by odd ones or (in a dict) removed."""
    out = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(out) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = out
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and rng.random() < 0.25:
            del parent[path[-1]]
        else:
            parent[path[-1]] = odd_value(rng)
    return out


# What a YAML value of a spec may be replaced by: wrong types, huge and odd numbers, tags that point
# nowhere or are not ours, anchors, a block where a scalar was.
ODD_YAML = ("0", "-1", "99999999999999999999", "1.5", "''", "null", "[]", "{}", "[1, 2]", "{a: b}", "true",
            '"\\x00"', "'${X}'", "!secret nope", "!include nope.yaml", "!!binary aGk=", "&a x", "*a", "1e309",
            "0x10", "'%s'", '"\\u2028"', "~", "!secret", "- x", "2026-01-01", ".inf", "!!python/object:os.system x")


def mutate_yaml_lines(text: str, rng: random.Random) -> str:
    """``text`` with one to three lines changed: a value replaced, a line deleted, duplicated,
    re-indented or swapped with another."""
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(lines))
        op = rng.random()
        line = lines[k]
        if op < 0.35 and ":" in line:
            lines[k] = line.partition(":")[0] + ": " + rng.choice(ODD_YAML)
        elif op < 0.5 and len(lines) > 1:
            del lines[k]
        elif op < 0.65:
            lines.insert(k, lines[rng.randrange(len(lines))])
        elif op < 0.8:
            lines[k] = " " * rng.randint(0, 8) + line.lstrip()
        else:
            j = rng.randrange(len(lines))
            lines[k], lines[j] = lines[j], lines[k]
    return "\n".join(lines) + "\n"
