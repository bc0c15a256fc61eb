"""The rendered clawreg.py / clawsheet.py on the real MicroPython VM (WebAssembly, via the
simulator's harness): same results and bus accesses as CPython and C on the shared policy
cases and a fuzz sample, and the public API's messages."""

from __future__ import annotations

import json
import random

import pytest

from clawgen.chips.policy import compile_policy
from clawgen.chips.render import RegisterPlan, render_app_module
from clawgen.chips.tables import reset_values
from tests.chips.policy_cases import harness as h

vm = pytest.importorskip("clawgen.sim.vm")

CHIP = h.load_toy_chip()
CASES = h.load_cases()

PROGRAM = """
import json
import clawhw
import clawreg

SEED = %(seed)s
OPS = %(ops)s
log = []
_r = clawhw.read32
_w = clawhw.write32


def r(a):
    log.append(("R", a))
    return _r(a)


def w(a, v):
    log.append(("W", a, v))
    _w(a, v)


clawhw.read32 = r
clawhw.write32 = w
fns = {"r": clawreg._read, "w": clawreg._write, "m": clawreg._modify}
for op in OPS:
    for a, v in SEED:
        _w(a, v)
    del log[:]
    c, v, d = fns[op[0]](*op[1:])
    print("RES " + json.dumps([c, v, d, log]))
%(extra)s
"""


def _run_on_vm(table, ops: list[tuple], extra: str = "", sheet: bool = False) -> tuple[list[tuple], list[str]]:
    memory = reset_values(table)
    seed = sorted(memory.items())
    plan = RegisterPlan(table.chip, table)
    modules = {"clawreg": render_app_module("clawreg", plan),
               "regtest": PROGRAM % {"seed": repr(seed), "ops": repr(ops), "extra": extra}}
    if sheet:
        modules["clawsheet"] = render_app_module("clawsheet", plan)
    res = vm.run(None, modules=modules, registers=memory, entry="import regtest", timeout=120)
    assert res.ok, res.stderr + res.stdout
    results = []
    other = []
    for line in res.stdout.splitlines():
        if line.startswith("RES "):
            c, v, d, log = json.loads(line[4:])
            results.append((c, v, d, [tuple(x) for x in log]))
        else:
            other.append(line)
    return results, other


@pytest.fixture(scope="module")
def main_table():
    table, diags = compile_policy(CHIP, CASES["policies"]["main"])
    assert diags == []
    return table


def test_cases_agree_on_micropython(main_table) -> None:
    ops = [h.parse_op(main_table, CHIP, c) for c in CASES["cases"]["main"]]
    rng = random.Random("mpvm")
    addrs = [ri.address for ri in CHIP.iter_registers()]
    for _ in range(150):
        a = rng.choice(addrs) + rng.choice([0, 0, 0, 1, 4, -4])
        ops.append(rng.choice([("r", a), ("w", a, rng.randrange(1 << 32))]))
    on_vm, _ = _run_on_vm(main_table, ops)
    on_cpython = h.PyDevice(main_table).run(ops, fresh=True)
    assert on_vm == on_cpython
    for case, (code, *_rest) in zip(CASES["cases"]["main"], on_vm, strict=False):
        assert h.CODE_NAMES[code] == case["expect"]


API = """
def show(fn, *args):
    try:
        print("API ok", fn(*args))
    except clawreg.RegError as e:
        print("API err", e)

show(clawreg.read, 0x40000004)
show(clawreg.read, 0x40000006)
show(clawreg.read, 0x50000000)
show(clawreg.read, 0x40000024)
show(clawreg.read, 0x40003000)
show(clawreg.write, 0x40000038, 1)
show(clawreg.write, 0x40000004, 0x100FF)
show(clawreg.write, 0x40001010, 0)
show(clawreg.write, 0x40000004, -1)
show(clawreg.write_field, "uart.conf.parity", 3)
show(clawreg.write_field, "UART.INT_RAW.TX", 1)
show(clawreg.write_field, "GPIO.OUT.NOPE", 1)
show(clawreg.resolve, "gpio.out")
show(clawreg.resolve, "0x40000004")
show(clawreg.resolve, "GPIO.OUTX")
show(clawreg.resolve, "TIMG0.T1.CONFIG")
show(clawreg.describe, 0x40000038)
show(clawreg.describe, 0x40003004)
import clawsheet
print("SHEET " + clawsheet.modules().replace(chr(10), "|"))
print("SHEET " + clawsheet.lookup("uart.conf").replace(chr(10), "|"))
print("SHEET " + clawsheet.lookup("UART.CONF.PARITY").replace(chr(10), "|"))
print("SHEET " + clawsheet.lookup("ledc").replace(chr(10), "|"))
print("SHEET " + clawsheet.lookup("SYS").replace(chr(10), "|"))
print("SHEET " + clawsheet.lookup("NOPE.X").replace(chr(10), "|"))
print("SHEET " + clawsheet.lookup("SYS.CTRL").replace(chr(10), "|"))
"""


def test_public_api_messages_on_micropython(main_table) -> None:
    _, lines = _run_on_vm(main_table, [], API, sheet=True)
    api = [x for x in lines if x.startswith("API ")]
    assert api == [
        "API ok 5",
        "API err misaligned: 0x40000006 is not a multiple of 4",
        "API err outside any address block: 0x50000000 is not in any peripheral of toy",
        "API err unknown: no register at 0x40000024 (GPIO+0x24)",
        "API err denied: SYS+0x0 (0x40003000) is not in this build's register allowlist",
        "API err denied: GPIO.STRAP is not writable by policy",
        "API err denied: bits 0x00010000 of GPIO.OUT are not writable by policy (write them unchanged, "
        "or use write_field)",
        "API err constraint violated: value not allowed for UART.CONF.BAUD",
        "API err constraint violated: value must be an integer 0..0xFFFFFFFF",
        "API ok 3",
        "API err denied: UART.INT_RAW cannot be written one field at a time (not safe to read-modify-write); "
        "write the whole register",
        "API err unknown: GPIO.OUT has no field NOPE",
        f"API ok {0x40000004}",
        f"API ok {0x40000004}",
        "API err unknown: no register named GPIO.OUTX in this build's register allowlist",
        f"API ok {0x40004020}",
        "API ok GPIO.STRAP",
        "API ok SYS+0x4",
    ]
    sheet = [x[6:].split("|") for x in lines if x.startswith("SHEET ")]
    modules, conf, parity, ledc, sys_, nope, sys_ctrl = sheet
    assert modules[0] == "GPIO 0x40000000 6 regs, 6 allowed"
    assert "SYS 0x40003000 1 regs" in modules
    assert conf[0].startswith("UART.CONF 0x40001010 rw reset=0x00000010 policy=rw")
    assert "  PARITY [17:16] rw reset=0x0 write:{NONE=0 EVEN=2 ODD=3}" in conf
    assert "  BAUD [15:0] rw reset=0x10 range=1..50000" in conf
    assert parity[0] == "UART.CONF.PARITY [17:16] rw reset=0x0 write:{NONE=0 EVEN=2 ODD=3}"
    assert ledc[0] == "LEDC 0x40002000 11 regs, 10 allowed"
    assert ledc[1].startswith("LEDC.CH0_CONF0 0x40002000 rw")
    assert sys_ == ["SYS 0x40003000 1 regs", "(none of its registers are in this build's register allowlist)"]
    assert nope[0].startswith("unknown: NOPE.X")
    assert sys_ctrl == ["SYS.CTRL is not in this build's register allowlist (SYS 0x40003000 1 regs)"]


BUILTIN_PROGRAM = """
import clawreg
import clawsheet


def show(fn, *args):
    try:
        print("API ok", fn(*args))
    except clawreg.RegError as e:
        print("API err", e)


out = clawreg.resolve("gpio.out")
show(clawreg.write, out, 0x5)
show(clawreg.read, out)
show(clawreg.write_field, "GPIO.OUT_W1TS.OUT_W1TS", 0x30)
show(clawreg.write, clawreg.resolve("GPIO.BT_SELECT"), 7)
show(clawreg.read, clawreg.resolve("GPIO.BT_SELECT"))
show(clawreg.read, clawreg.resolve("0x60004038"))
print("SHEET " + clawsheet.lookup("GPIO.OUT").replace(chr(10), "|"))
"""


def test_builtin_esp32s3_layer_on_micropython_with_the_simulated_register_file() -> None:
    from clawgen.chips import load_chip
    from clawgen.resources import chips_dir

    chip = load_chip("esp32s3", [chips_dir()])
    table, _ = compile_policy(chip, {"allow": [{"match": "GPIO.BT_SELECT", "access": "write"}]})
    plan = RegisterPlan("esp32s3", table)
    res = vm.run(None, modules={"clawreg": render_app_module("clawreg", plan),
                                "clawsheet": render_app_module("clawsheet", plan), "regtest": BUILTIN_PROGRAM},
                 registers=reset_values(table), entry="import regtest", timeout=120)
    assert res.ok, res.stderr + res.stdout
    lines = res.stdout.splitlines()
    assert [x for x in lines if x.startswith("API")] == [
        "API ok 5", "API ok 5", "API ok 48", "API ok 7",
        "API err denied: GPIO.BT_SELECT is not readable by policy",
        "API err denied: GPIO+0x38 (0x60004038) is not in this build's register allowlist",
    ]
    assert res.register_writes == [(0x60004004, 5), (0x60004008, 0x30), (0x60004000, 7)]
    sheet = next(x for x in lines if x.startswith("SHEET "))[6:].split("|")
    assert sheet[0] == ("GPIO.OUT 0x60004004 rw reset=0x00000000 policy=rw - Output level of GPIO0-31 "
                        "(bit n drives pin n when its output is enabled).")
    assert sheet[1] == "  DATA_ORIG [31:0] rw reset=0x0"
