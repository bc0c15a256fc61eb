"""Render traces: which values of the plan a template read, so that a rebuild renders again only
the files whose inputs changed.

While a template renders it sees the plan through a recording view (``Traced``): each value it
reads is logged with its path from the plan (``tools[2].name``, ``len(tools)``, all of
``models[0].headers`` when it is printed whole) and a fingerprint of the value. A trace is that log
plus the text rendered. On the next build the same paths are read from the new plan: when every
fingerprint matches, the template would read the same values in the same order and so render the
same text (a template is a pure function of what it reads, and clawgen's code and templates are in
the cache key), and the stored text is the output. One difference, a path that no longer resolves
or a value without a stable fingerprint, and the template renders again.

What the view records, by what the template does with a value:
- an attribute, item or ``.get`` of a record, list or dict: nothing yet, the value is viewed in turn
  (its class is recorded: a record of another class is another value); a plain value (str, int,
  float, bool, None, bytes, a set, a Path) is recorded whole;
- iteration, ``len``, truth: the length (dict keys: the keys); ``in``: the answer;
- anything else (printing, comparing, hashing, a filter or global function, a method call): the
  whole value, and the operation runs on the real value.
Filters and tests that look at a value's type get the real value (recorded whole): the view is
never mistaken for another type. ``none``/``defined``/``undefined`` tests and the iterating
filters work on the view.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any

Path_ = tuple[tuple[Any, ...], ...]  # a value's path from the plan: ops ("a", name), ("i", key)

_MISSING = object()  # a path that does not resolve (an attribute or item that is not there)
_LEAVES = (str, int, float, bool, type(None), bytes, set, frozenset, PurePath)
# Filters and tests that only iterate, count or read attributes: they get the view, not the value.
VIEW_FILTERS = frozenset({"length", "count", "list", "selectattr", "rejectattr", "first", "last", "map"})
VIEW_TESTS = frozenset({"none", "defined", "undefined"})


_NONE_FINGERPRINT = hashlib.sha256(b"NoneType\0").digest()


def fingerprint(value: Any) -> bytes | None:
    """sha256 of the value's pickle (sets sorted: their order varies between processes), or None
    when it has no stable one (unpicklable, cyclic). The plain values most reads are (a str, an
    int, a bool, None) are hashed as their type's name and text instead: no pickler to make, a
    quarter of the time, and never the same bytes as a pickle (which starts with its protocol's
    0x80)."""
    if value is _MISSING:
        return b"missing"
    kind = type(value)
    if kind is str:
        return hashlib.sha256(b"str\0" + value.encode("utf-8", "surrogatepass")).digest()
    if kind is int or kind is bool:
        return hashlib.sha256(kind.__name__.encode() + b"\0"
                              + value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)).digest()
    if value is None:
        return _NONE_FINGERPRINT
    if isinstance(value, (set, frozenset)):
        try:
            value = ("<set>", tuple(sorted(value)))
        except TypeError:
            return None
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: equal values give equal bytes however their objects are shared
    try:
        pickler.dump(value)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(buf.getbuffer()).digest()


class Recorder:
    """The reads of one render: path -> fingerprint, in the order first read."""

    def __init__(self) -> None:
        self.reads: dict[Path_, bytes | None] = {}

    def note(self, path: Path_, value: Any) -> None:
        if path not in self.reads:
            self.reads[path] = fingerprint(value)

    def view(self, value: Any, path: Path_) -> Any:
        """The value as a template sees it: plain values as they are (recorded), containers and
        records through a view."""
        if isinstance(value, _LEAVES) or callable(value):
            self.note(path, value)
            return value
        self.note((*path, ("cls",)), type(value).__qualname__)
        if isinstance(value, dict):
            return TracedDict(value, path, self)
        if isinstance(value, (list, tuple)):
            return TracedList(value, path, self)
        return Traced(value, path, self)

    def trace(self) -> list[tuple[Path_, bytes]] | None:
        """The reads, or None when one has no stable fingerprint (the render cannot be reused)."""
        if any(fp is None for fp in self.reads.values()):
            return None
        return list(self.reads.items())  # type: ignore[arg-type]


class Traced:
    """A record (or any object) of the plan, read through attribute access."""

    __slots__ = ("_t_path", "_t_rec", "_t_value")

    def __init__(self, value: Any, path: Path_, rec: Recorder) -> None:
        object.__setattr__(self, "_t_value", value)
        object.__setattr__(self, "_t_path", path)
        object.__setattr__(self, "_t_rec", rec)

    def _t_whole(self) -> Any:
        self._t_rec.note((*self._t_path, ("all",)), self._t_value)
        return self._t_value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        path = (*self._t_path, ("a", name))
        try:
            value = getattr(self._t_value, name)
        except AttributeError:
            self._t_rec.note(path, _MISSING)
            raise
        if callable(value) and not isinstance(value, type):  # a method: it reads the whole object
            self._t_whole()
            return value
        return self._t_rec.view(value, path)

    def __getitem__(self, key: Any) -> Any:
        path = (*self._t_path, ("i", key))
        try:
            value = self._t_value[key]
        except (KeyError, IndexError):
            self._t_rec.note(path, _MISSING)
            raise
        except TypeError:  # not subscriptable (Jinja tries obj[name] after getattr): as the type says
            raise
        return self._t_rec.view(value, path)

    def __bool__(self) -> bool:
        value = bool(self._t_value)
        self._t_rec.note((*self._t_path, ("bool",)), value)
        return value

    def __str__(self) -> str:
        return str(self._t_whole())

    def __repr__(self) -> str:
        return repr(self._t_whole())

    def __format__(self, spec: str) -> str:
        return format(self._t_whole(), spec)

    def __eq__(self, other: object) -> bool:
        return bool(self._t_whole() == unwrap(other))

    def __ne__(self, other: object) -> bool:
        return bool(self._t_whole() != unwrap(other))

    def __hash__(self) -> int:
        return hash(self._t_whole())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the plan is read-only ({name})")


class TracedList(Traced):
    """A list or tuple of the plan."""

    __slots__ = ()

    def _t_len(self) -> int:
        n = len(self._t_value)
        self._t_rec.note((*self._t_path, ("len",)), n)
        return n

    def __len__(self) -> int:
        return self._t_len()

    def __bool__(self) -> bool:
        return self._t_len() > 0

    def __iter__(self) -> Iterator[Any]:
        self._t_len()
        for i, item in enumerate(self._t_value):
            yield self._t_rec.view(item, (*self._t_path, ("i", i)))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return self._t_whole()[key]
        return super().__getitem__(key)

    def __contains__(self, item: object) -> bool:
        item = unwrap(item)
        value = item in self._t_value
        try:
            self._t_rec.note((*self._t_path, ("in", item)), value)
        except TypeError:  # an unhashable item: the answer depends on the whole value
            self._t_whole()
        return value

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self._t_whole())

    def __add__(self, other: Any) -> Any:
        return self._t_whole() + unwrap(other)

    def __radd__(self, other: Any) -> Any:
        return unwrap(other) + self._t_whole()


class TracedDict(TracedList):
    """A dict of the plan (a tool's JSON Schema parameters, a model's headers)."""

    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        keys = list(self._t_value)
        self._t_rec.note((*self._t_path, ("keys",)), keys)
        return iter(keys)

    def __contains__(self, key: object) -> bool:
        key = unwrap(key)
        value = key in self._t_value  # (a dict key is hashable, or this raised TypeError already)
        self._t_rec.note((*self._t_path, ("in", key)), value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self:  # (records the answer)
            return default
        return self[key]

    def __getitem__(self, key: Any) -> Any:
        path = (*self._t_path, ("i", key))
        try:
            value = self._t_value[key]
        except KeyError:
            self._t_rec.note(path, _MISSING)
            raise
        return self._t_rec.view(value, path)


def unwrap(value: Any) -> Any:
    """The real value behind a view (recorded whole), also inside a list, tuple or dict that a
    filter made of views; anything else as it is."""
    if isinstance(value, Traced):
        return value._t_whole()
    if type(value) in (list, tuple):
        if any(isinstance(v, (Traced, list, tuple, dict)) for v in value):
            return type(value)(unwrap(v) for v in value)
    elif type(value) is dict and any(isinstance(v, (Traced, list, tuple, dict)) for v in value.values()):
        return {k: unwrap(v) for k, v in value.items()}
    return value


def unwrapping(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter, test or global function that gets real values (each view recorded whole). Jinja's
    markers on the function (``pass_context`` and the like) are kept."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*(unwrap(a) for a in args), **{k: unwrap(v) for k, v in kwargs.items()})

    return call


def resolve(root: Any, path: Path_, memo: dict[Path_, Any]) -> Any:
    """The value at ``path`` of ``root`` as the view would have read it (``_MISSING`` if not there)."""
    if not path:
        return root
    if path in memo:
        return memo[path]
    parent = resolve(root, path[:-1], memo)
    op = path[-1]
    if parent is _MISSING:
        value: Any = _MISSING
    else:
        kind = op[0]
        try:
            if kind == "a":
                value = getattr(parent, op[1])
            elif kind == "i":
                value = parent[op[1]]
            elif kind == "len":
                value = len(parent)
            elif kind == "bool":
                value = bool(parent)
            elif kind == "in":
                value = op[1] in parent
            elif kind == "keys":
                value = list(parent)
            elif kind == "cls":
                value = type(parent).__qualname__
            elif kind == "all":
                value = parent
            else:
                value = _MISSING
        except (AttributeError, KeyError, IndexError, TypeError):
            value = _MISSING
    memo[path] = value
    return value


def still_valid(root: Any, trace: list[tuple[Path_, bytes]]) -> bool:
    """Every read of the trace gives the same fingerprint on ``root`` (the new plan)."""
    memo: dict[Path_, Any] = {}
    fps: dict[Path_, bytes | None] = {}
    for path, fp in trace:
        if path not in fps:
            fps[path] = fingerprint(resolve(root, path, memo))
        if fps[path] != fp:
            return False
    return True
