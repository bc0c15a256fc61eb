"""Fuzz: random addresses, values and field writes against a policy, on the Python device
module and the C core. No bus access may fall outside the policy, protected bits never change,
and the two implementations agree on every operation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from clawgen.chips.policy import F_NO_RMW, F_READ, F_WRITE, compile_policy
from tests.chips.policy_cases import harness as h

CHIP = h.load_toy_chip()
N_OPS = 4000


def _ops(table, rng: random.Random) -> list[tuple]:
    chip_addrs = [ri.address for ri in CHIP.iter_registers()]
    fields = [(ri.address, f.lsb, f.width) for ri in CHIP.iter_registers() for f in ri.fields]
    ops: list[tuple] = []
    for _ in range(N_OPS):
        pick = rng.random()
        if pick < 0.4:
            addr = rng.choice(chip_addrs)
        elif pick < 0.7:
            addr = rng.choice(chip_addrs) + rng.choice([-8, -4, -2, -1, 1, 2, 3, 4, 8, 0x40])
        else:
            addr = rng.choice([rng.randrange(0x40000000, 0x40005000), rng.randrange(0, 1 << 32)])
        addr &= 0xFFFFFFFF
        value = rng.choice([0, 0xFFFFFFFF, 1, rng.randrange(1 << 32), rng.randrange(1 << 8)])
        kind = rng.choice("rwm")
        if kind == "r":
            ops.append(("r", addr))
        elif kind == "w":
            ops.append(("w", addr, value))
        else:
            fa, lsb, width = rng.choice(fields)
            if rng.random() < 0.2:
                fa = addr
            ops.append(("m", fa, lsb, width, value & ((1 << width) - 1) if rng.random() < 0.9 else value))
    return ops


POLICIES = {
    "main": h.load_cases()["policies"]["main"],
    "everything": {"defaults": False, "allow": ["*.*"]},
    "fields": {"defaults": False, "allow": [{"match": "*.*.*", "access": "write"}],
               "deny": [{"match": "*.*.MODE", "access": "write"}]},
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_fuzz_never_escapes_the_policy(policy: str, tmp_path: Path) -> None:
    table, _ = compile_policy(CHIP, POLICIES[policy])
    entries = {e.address: e for e in table.entries}
    rng = random.Random(f"clawreg-fuzz-{policy}")
    ops = _ops(table, rng)
    py = h.PyDevice(table)
    memory = dict(py.bus.memory)
    results = py.run(ops)
    for op, (code, _value, _detail, bus) in zip(ops, results, strict=True):
        for access in bus:
            e = entries.get(access[1])
            assert e is not None, f"{op}: bus access outside the policy: {access}"
            if access[0] == "R":
                # Reads: allowed reads, or the read of a read-modify-write / protected-bit check.
                assert e.flags & F_READ or (e.flags & F_WRITE and not e.flags & F_NO_RMW), (op, access)
            else:
                assert code == 0 and e.flags & F_WRITE, (op, access)
                old = memory.get(access[1], 0)
                protected = e.hwmask & ~e.wmask
                assert (access[2] ^ old) & protected == 0, f"{op}: changed protected bits"
                memory[access[1]] = access[2]
        if code != 0:
            assert all(a[0] == "R" for a in bus)
    # Every outcome class shows up, so the fuzz exercises the checks rather than one path.
    seen = {r[0] for r in results}
    assert {0, 1, 2, 4} <= seen
    c = h.CDevice(table, tmp_path / "c").run(ops)
    assert c == results
