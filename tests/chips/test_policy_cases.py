"""The shared policy cases (policy_cases/cases.yaml) on the Python device module (CPython) and
the C core (host gcc): both must give the expected result and exactly the expected bus accesses."""

from __future__ import annotations

import pytest

from clawgen.chips.policy import compile_policy
from tests.chips.policy_cases import harness as h

CASES = h.load_cases()
CHIP = h.load_toy_chip()
PARAMS = [(policy, i) for policy, items in CASES["cases"].items() for i in range(len(items))]


def _case_id(p: tuple[str, int]) -> str:
    c = CASES["cases"][p[0]][p[1]]
    what = c.get("addr", c.get("field"))
    what = f"0x{what:08X}" if isinstance(what, int) else what
    return f"{p[0]}-{p[1]:02d}-{c['op']}-{what}-{c['expect']}"


@pytest.fixture(scope="module")
def tables() -> dict:
    out = {}
    for name, policy in CASES["policies"].items():
        table, diags = compile_policy(CHIP, policy)
        assert diags == []
        out[name] = table
    return out


@pytest.fixture(scope="module")
def results(tables: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every case run on both implementations, each case on fresh memory."""
    if h.gcc() is None:
        pytest.fail("the C policy tests need gcc on PATH")
    out = {}
    for name, table in tables.items():
        ops = [h.parse_op(table, CHIP, c) for c in CASES["cases"][name]]
        py = h.PyDevice(table).run(ops, fresh=True)
        c = h.CDevice(table, tmp_path_factory.mktemp(f"c_{name}")).run(ops, fresh=True)
        out[name] = (py, c)
    return out


@pytest.mark.parametrize("param", PARAMS, ids=[_case_id(p) for p in PARAMS])
@pytest.mark.parametrize("impl", ["python", "c"])
def test_case(param: tuple[str, int], impl: str, results: dict) -> None:
    policy, i = param
    case = CASES["cases"][policy][i]
    code, value, detail, bus = results[policy][0 if impl == "python" else 1][i]
    assert h.CODE_NAMES[code] == case["expect"]
    if "result" in case:
        assert value == case["result"]
    if "detail" in case:
        assert detail == case["detail"]
    if "bus" in case:
        assert bus == h.parse_bus(CHIP, case["bus"])
    if code != 0:
        # A refused access never touches a register it was refused for.
        assert all(b[0] == "R" for b in bus)


def test_python_and_c_agree_on_every_case(results: dict) -> None:
    for policy, (py, c) in results.items():
        assert py == c, policy
