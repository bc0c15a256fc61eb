"""clawgen.records.record against dataclasses.dataclass(frozen=True): the same behaviour, class by class."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from clawgen import model, spec
from clawgen.records import record, slotted


def _pair(kw_only: bool) -> tuple[type, type, type, type]:
    """The same classes (a base, and a subclass that overrides a default) made both ways."""
    made = []
    for deco in (record(kw_only=kw_only), dataclasses.dataclass(frozen=True, kw_only=kw_only)):
        @deco
        class Base:
            name: str
            size: int = 3
            tags: list[str] = dataclasses.field(default_factory=list)
            raw: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

        @deco
        class Sub(Base):
            name: str = "sub"
            extra: tuple[int, ...] = ()

        made += [Base, Sub]
    return made[0], made[1], made[2], made[3]


def _outcome(fn: Callable[[], Any]) -> tuple[str, str]:
    """("value", its repr) or ("raises", the exception's type); messages are compared where it matters."""
    try:
        value = fn()
    except Exception as e:  # the exception's type is what is compared
        return ("raises", type(e).__name__)
    return ("value", repr(value))


def _message(fn: Callable[[], Any]) -> str:
    try:
        fn()
    except TypeError as e:
        return str(e).split(".", 1)[-1]  # without the class's qualified name
    raise AssertionError("no TypeError")


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {"name": "a"}), ((), {"name": "a", "size": 5, "tags": ["x"]}), ((), {}), ((), {"nme": "a"}),
    (("a",), {}), (("a", 4), {}), (("a", 4, [], {}, 1), {}), (("a",), {"name": "b"}),
]


@pytest.mark.parametrize("kw_only", [False, True])
def test_construction_equality_and_errors_match_dataclasses(kw_only: bool) -> None:
    rb, rs, db, ds = _pair(kw_only)
    for args, kwargs in CALLS:
        for r, d in ((rb, db), (rs, ds)):
            got = _outcome(lambda r=r, a=args, k=kwargs: r(*a, **k))
            assert got == _outcome(lambda d=d, a=args, k=kwargs: d(*a, **k)), (args, kwargs)
    # Python's own wording for the common mistakes
    assert _message(lambda: rb()) == _message(lambda: db())
    assert _message(lambda: rb(name="a", colour=1)) == _message(lambda: db(name="a", colour=1))
    if not kw_only:
        assert _message(lambda: rb("a", 1, [], {}, 5)) == _message(lambda: db("a", 1, [], {}, 5))
        assert _message(lambda: rb("a", name="b")) == _message(lambda: db("a", name="b"))
    a, b = rb(name="n", raw={"x": 1}), rb(name="n", raw={"y": 2})
    da, dbb = db(name="n", raw={"x": 1}), db(name="n", raw={"y": 2})
    assert (a == b, a != rb(name="m")) == (da == dbb, da != db(name="m"))
    assert _outcome(lambda: hash(a))[0] == _outcome(lambda: hash(da))[0] == "raises"  # a list field: unhashable
    h, dh = rb(name="n", tags=()), db(name="n", tags=())
    assert (hash(h) == hash(rb(name="n", tags=(), raw={"z": 1}))) is (hash(dh) == hash(db(name="n", tags=()))) is True
    assert (a == rs(name="n")) is (da == ds(name="n")) is False  # a subclass instance is never equal
    assert a.tags is not rb(name="n").tags  # a new list per instance, as default_factory promises
    assert repr(a).replace("Base", "X") == repr(da).replace("Base", "X")


def test_frozen_replace_asdict_pickle_and_fields() -> None:
    _, rs, _, ds = _pair(True)
    a = rs(name="q", tags=["t"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.size
    assert dataclasses.replace(a, size=9) == rs(name="q", tags=["t"], size=9)
    assert dataclasses.asdict(a) == dataclasses.asdict(ds(name="q", tags=["t"]))
    assert [f.name for f in dataclasses.fields(rs)] == [f.name for f in dataclasses.fields(ds)]
    weights = spec.RoutingWeights(code=0.5)  # a module-level record (the render cache pickles them)
    assert pickle.loads(pickle.dumps(weights)) == weights
    assert dataclasses.is_dataclass(a)


def test_a_record_refuses_what_it_does_not_support() -> None:
    with pytest.raises(TypeError, match="__post_init__"):
        @record
        class P:
            x: int

            def __post_init__(self) -> None:
                pass
    with pytest.raises(TypeError, match="init=False"):
        @record
        class Q:
            x: int = dataclasses.field(init=False, default=1)


def test_the_spec_and_plan_classes_are_records() -> None:
    """Every frozen class of the typed spec and the plan is a record, and each still rejects assignment."""
    for module in (spec, model):
        classes = [c for c in vars(module).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
                   and c.__module__ == module.__name__]
        assert len(classes) >= 15, module.__name__
        for c in classes:
            assert c.__init__.__module__ == "clawgen.records", c
    weights = spec.RoutingWeights()
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.code = 1  # type: ignore[misc]
    assert weights == spec.RoutingWeights() and hash(weights) == hash(spec.RoutingWeights())
    assert weights != spec.RoutingWeights(code=0.9)


def _slotted_pair() -> tuple[type, type]:
    """The same class made by ``slotted`` and by ``dataclass(slots=True)``."""
    made = []
    for deco in (slotted, dataclasses.dataclass(slots=True)):
        @deco
        class Reg:
            name: str
            size: int = 32
            fields: list[str] = dataclasses.field(default_factory=list)
            note: str | None = None

            @property
            def bits(self) -> int:
                return self.size

        made.append(Reg)
    return made[0], made[1]


SLOTTED_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("a",), {}), (("a", 8, ["f"], "n"), {}), ((), {"name": "a", "fields": ["x"]}), ((), {}),
    (("a", 8, [], None, 1), {}), (("a",), {"name": "b"}), ((), {"name": "a", "colour": 1}), (("a",), {"size": 16}),
]


def test_slotted_matches_dataclass_slots() -> None:
    s, d = _slotted_pair()
    for args, kwargs in SLOTTED_CALLS:
        got = _outcome(lambda a=args, k=kwargs: s(*a, **k))
        assert got == _outcome(lambda a=args, k=kwargs: d(*a, **k)), (args, kwargs)
    # Python's own wording for the common mistakes (the compiled __init__ is a real one)
    for args, kwargs in (((), {}), (("a", 8, [], None, 1), {}), (("a",), {"name": "b"}), ((), {"name": "a", "x": 1})):
        assert _message(lambda a=args, k=kwargs: s(*a, **k)) == _message(lambda a=args, k=kwargs: d(*a, **k))
    a, da = s("r", fields=["f"]), d("r", fields=["f"])
    assert (a == s("r", 32, ["f"]), a != s("r", 8)) == (da == d("r", 32, ["f"]), da != d("r", 8)) == (True, True)
    assert (a == d("r", fields=["f"])) is False and (a.__eq__(1) is NotImplemented)
    assert repr(a) == repr(da)  # same qualname: Reg
    assert a.fields is not s("r").fields  # a new list per instance
    assert a.bits == 32 and s.__match_args__ == d.__match_args__  # type: ignore[attr-defined]
    for obj in (a, da):
        assert not hasattr(obj, "__dict__")
        with pytest.raises(AttributeError):
            obj.colour = 1  # type: ignore[attr-defined]
        with pytest.raises(TypeError):
            hash(obj)
    a.size = 16  # mutable, as dataclass(slots=True)
    assert a == s("r", 16, ["f"])
    looped, dlooped = s("loop"), d("loop")
    looped.fields, dlooped.fields = [looped], [dlooped]
    assert repr(looped) == repr(dlooped) and repr(looped).endswith("(name='loop', size=32, fields=[...], note=None)")


def test_slotted_pickles_and_refuses_what_it_does_not_support() -> None:
    from clawgen.chips.model import Field, Register

    reg = Register("CTRL", 4, 32, "read-write", None, 0, 0xFFFFFFFF, fields=[Field("EN", 0, 1, "read-write")])
    back = pickle.loads(pickle.dumps(reg, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == reg and back.fields[0].mask == 1 and back is not reg
    assert type(reg).__init__.__qualname__ == "Register.__init__"  # a real, compiled one
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @slotted
        class A:
            a: int = 1
            b: int
    with pytest.raises(TypeError, match="defines __eq__"):
        @slotted
        class B:
            a: int

            def __eq__(self, other: object) -> bool:
                return True
    with pytest.raises(TypeError, match="has no init/repr/compare/hash/kw_only options"):
        @slotted
        class D:
            a: int = dataclasses.field(default=0, compare=False)
    with pytest.raises(TypeError, match="has only plain fields"):
        @slotted
        class E:
            a: ClassVar[int] = 1
    with pytest.raises(TypeError, match="does not inherit fields"):
        @slotted
        class C(Register):
            extra: int = 0
