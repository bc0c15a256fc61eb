"""``record``: a frozen dataclass that is cheaper to define.

``dataclasses.dataclass(frozen=True)`` compiles six methods per class from source at import time
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``); the typed spec
and the plan have ~50 classes, and that was ~20 ms of every build's imports. A record is a
dataclass (``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work on it) whose
methods are written once here and shared, with dataclasses' semantics:
- ``__init__``: the fields in order, positionally unless ``kw_only``, then by keyword; a field's
  default or ``default_factory`` when it is not given; the same TypeErrors for a missing, an
  unexpected or a repeated argument;
- frozen (unless ``frozen=False``): assigning or deleting an attribute raises
  ``dataclasses.FrozenInstanceError``; a mutable record is unhashable, as a mutable dataclass;
- the fields with ``compare=True``, in order, for equality and hashing (equality only between
  instances of one class); the fields with ``repr=True`` for the representation.
(No ``__post_init__`` and no ``init=False`` fields: ``record`` refuses a class that has them.)
tests/spec/test_records.py holds it to ``dataclass(frozen=True)``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

# For type checkers, mypyc among them (it compiles clawgen/chips/svd.py, see setup.py): record and
# slotted make dataclass-like classes. (typing_extensions only where a type checker reads it.)
if sys.version_info >= (3, 11):
    from typing import dataclass_transform
elif TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_kwargs: Any) -> Any:
        return lambda f: f

T = TypeVar("T")


class _ClassPlan:
    """What the shared methods need to know of a record class, worked out on its first use."""

    __slots__ = ("compared", "defaults", "factories", "names", "order", "positional", "qualname", "shown")

    def __init__(self, cls: type) -> None:
        fields = dataclasses.fields(cls)
        self.positional = tuple(f.name for f in fields if not f.kw_only)
        self.order = tuple(f.name for f in fields)
        self.names = frozenset(self.order)
        self.defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        self.factories = {f.name: f.default_factory for f in fields if f.default_factory is not dataclasses.MISSING}
        self.qualname = cls.__qualname__
        self.compared = tuple(f.name for f in fields if f.compare)  # equality and hash
        self.shown = tuple(f.name for f in fields if f.repr)


def _plan(cls: type) -> _ClassPlan:
    plan = cls.__dict__.get("__record_plan__")
    if plan is None:
        plan = _ClassPlan(cls)
        type.__setattr__(cls, "__record_plan__", plan)
    return plan


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, n) for n in _plan(type(obj)).compared)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


_repr_running: set[int] = set()


def _repr_of(obj: Any, names: tuple[str, ...]) -> str:
    """``Class(a=1, b='x')`` of the fields ``names``, as dataclasses writes it."""
    if id(obj) in _repr_running:  # an object that holds itself (as dataclasses' reprlib guard)
        return "..."
    _repr_running.add(id(obj))
    try:
        body = ", ".join(f"{n}={getattr(obj, n)!r}" for n in names)
    finally:
        _repr_running.discard(id(obj))
    return f"{type(obj).__qualname__}({body})"


def _repr(self: Any) -> str:
    return _repr_of(self, _plan(type(self)).shown)


def _names_text(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _missing(p: _ClassPlan, values: dict[str, Any]) -> TypeError:
    """Python's own message for missing arguments (positional ones first)."""
    positional = [n for n in p.positional if n not in values]
    kind = "positional"
    if not positional:
        positional = sorted((n for n in p.names - values.keys()), key=p.order.index)
        kind = "keyword-only"
    s = "s" if len(positional) > 1 else ""
    return TypeError(f"{p.qualname}.__init__() missing {len(positional)} required {kind} argument{s}: "
                     f"{_names_text(positional)}")


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    p = _plan(type(self))
    if len(args) > len(p.positional):
        most = len(p.positional) + 1
        least = 1 + sum(1 for n in p.positional if n not in p.defaults and n not in p.factories)
        takes = f"{most} positional argument{'s' if most > 1 else ''}" if least == most else \
            f"from {least} to {most} positional arguments"
        raise TypeError(f"{p.qualname}.__init__() takes {takes} but {len(args) + 1} were given")
    values = dict(zip(p.positional, args, strict=False))  # fewer args than fields: the rest by keyword
    for name, value in kwargs.items():
        if name not in p.names:
            raise TypeError(f"{p.qualname}.__init__() got an unexpected keyword argument '{name}'")
        if name in values:
            raise TypeError(f"{p.qualname}.__init__() got multiple values for argument '{name}'")
        values[name] = value
    if len(values) < len(p.names):
        for name in p.order:
            if name in values:
                continue
            if name in p.defaults:
                values[name] = p.defaults[name]
            elif name in p.factories:
                values[name] = p.factories[name]()
        if len(values) < len(p.names):
            raise _missing(p, values)
    set_attr = object.__setattr__
    for name, value in values.items():
        set_attr(self, name, value)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field '{name}'")


@dataclass_transform()
def record(cls: type[T] | None = None, /, *, kw_only: bool = False, frozen: bool = True) -> Any:
    """``@record`` / ``@record(kw_only=True)``: like ``@dataclass(frozen=True[, kw_only=True])``;
    ``@record(frozen=False)``: like ``@dataclass`` (mutable, so unhashable as dataclasses makes it)."""

    def wrap(c: type[T]) -> type[T]:
        if "__post_init__" in c.__dict__:
            raise TypeError(f"{c.__qualname__}: a record has no __post_init__ (use @dataclass)")
        if not c.__doc__:  # else dataclasses works one out from inspect.signature, which parses source
            c.__doc__ = f"{c.__name__}: a record (clawgen.records)."
        c = dataclasses.dataclass(init=False, repr=False, eq=False, kw_only=kw_only)(c)
        if any(not f.init for f in dataclasses.fields(c)):  # type: ignore[arg-type]
            raise TypeError(f"{c.__qualname__}: a record has no init=False field (use @dataclass)")
        methods: tuple[tuple[str, Any], ...] = (("__init__", _init), ("__eq__", _eq), ("__repr__", _repr))
        if frozen:
            methods += (("__hash__", _hash), ("__setattr__", _frozen_setattr), ("__delattr__", _frozen_delattr))
        else:
            methods += (("__hash__", None),)
        for name, fn in methods:
            type.__setattr__(c, name, fn)
        return c

    return wrap if cls is None else wrap(cls)


# -- slotted: the chip model's small mutable objects ------------------------------------------------

_FACTORY = object()  # "use the field's default_factory" (a default no caller passes)


@dataclass_transform()
def slotted(cls: type[T]) -> type[T]:
    """``@slotted``: like ``@dataclass(slots=True)`` (mutable, ``__slots__``, unhashable, the
    fields in order for ``__init__``, equality and the representation), for classes that define
    no methods of those names and no ``init=False``/``compare``/``repr`` options on fields. It is
    not a dataclass: ``dataclasses.fields`` does not see it.

    The chip model (clawgen/chips/model.py) has 11 such classes, and every register build imports
    it (a cached policy table holds its objects): ``dataclass(slots=True)`` spent ~0.7 ms per
    class there (about 10 ms of a 140 ms build), working out each field's kind from its annotation,
    compiling ``__init__``, ``__repr__`` and ``__eq__`` from source and making the class twice.
    Here the fields are the annotations, ``__repr__`` and ``__eq__`` are shared, and only the
    ``__init__`` is compiled: the same code dataclasses writes (positional parameters, defaults,
    ``default_factory`` called per instance), so building the objects (the SVD importer makes
    millions) is as fast. tests/spec/test_records.py holds it to ``dataclass(slots=True)``."""
    own = cls.__dict__
    if any("__slotted__" in c.__dict__ or dataclasses.is_dataclass(c) for c in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a slotted class does not inherit fields (use @dataclass)")
    annotations = own.get("__annotations__", {})
    for name, kind in annotations.items():
        if "ClassVar" in str(kind) or "InitVar" in str(kind) or "KW_ONLY" in str(kind):
            raise TypeError(f"{cls.__qualname__}.{name}: a slotted class has only plain fields (use @dataclass)")
    names = tuple(annotations)
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name in names:
        if name not in own:
            if defaults or factories:
                raise TypeError(f"non-default argument '{name}' follows default argument")
            continue
        value = own[name]
        if isinstance(value, dataclasses.Field):
            if not (value.init and value.repr and value.compare) or value.hash is not None or value.kw_only is True:
                raise TypeError(f"{cls.__qualname__}.{name}: a slotted field has no init/repr/compare/hash/kw_only "
                                "options (use @dataclass)")
            if value.default_factory is not dataclasses.MISSING:
                factories[name] = value.default_factory
            elif value.default is not dataclasses.MISSING:
                defaults[name] = value.default
            else:
                raise TypeError(f"{cls.__qualname__}.{name}: a slotted field takes a default or a default_factory")
        else:
            defaults[name] = value
    for name in ("__init__", "__repr__", "__eq__"):
        if name in own:
            raise TypeError(f"{cls.__qualname__} defines {name}: use @dataclass")
    body = {k: v for k, v in own.items() if k not in names and k not in ("__dict__", "__weakref__")}
    body.update(__slots__=names, __match_args__=names, __repr__=_slotted_repr, __eq__=_slotted_eq,
                __hash__=None, __slotted__=(names, defaults, factories),
                __init__=_compiled_init(cls.__qualname__, names, defaults, factories))
    meta: Any = type(cls)
    new = meta(cls.__name__, cls.__bases__, body)
    new.__qualname__ = cls.__qualname__
    return new  # type: ignore[return-value]


def _compiled_init(qualname: str, names: tuple[str, ...], defaults: dict[str, Any],
                   factories: dict[str, Callable[[], Any]]) -> Callable[..., None]:
    """The ``__init__`` dataclasses would write: one small function compiled (it compiles three)."""
    params, lines = [], []
    scope: dict[str, Any] = {"_FACTORY": _FACTORY}
    for name in names:
        if name in factories:
            scope[f"_factory_{name}"] = factories[name]
            params.append(f"{name}=_FACTORY")
            lines.append(f" self.{name} = _factory_{name}() if {name} is _FACTORY else {name}")
        else:
            if name in defaults:
                scope[f"_default_{name}"] = defaults[name]
                params.append(f"{name}=_default_{name}")
            else:
                params.append(name)
            lines.append(f" self.{name} = {name}")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(lines) or " pass") + "\n"
    exec(source, scope)  # (the source is made of the class's own field names)
    init = scope["__init__"]
    init.__qualname__ = f"{qualname}.__init__"
    return init  # type: ignore[no-any-return]


def _slotted_values(obj: Any) -> tuple[Any, ...]:
    return tuple([getattr(obj, n) for n in type(obj).__slotted__[0]])


def _slotted_eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _slotted_values(self) == _slotted_values(other)


def _slotted_repr(self: Any) -> str:
    return _repr_of(self, type(self).__slotted__[0])
