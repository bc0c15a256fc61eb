"""Shared harness for the policy cases: builds the synthetic chip, renders the device module
and the C table, and runs operations on (a) the rendered clawreg.py under CPython, (b) the C
core compiled with the host gcc, each against a logging fake bus (the hardware edge).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import yaml

from clawgen.chips.model import (
    AddressBlock,
    Chip,
    Cluster,
    Dim,
    EnumSet,
    EnumValue,
    Field,
    Peripheral,
    Register,
    WriteConstraint,
)
from clawgen.chips.policy import PolicyTable
from clawgen.chips.render import RegisterPlan, render_app_module, render_usermod
from clawgen.chips.tables import reset_values

HERE = Path(__file__).resolve().parent
CODES = {"OK": 0, "MISALIGNED": 1, "OUT_OF_BLOCK": 2, "UNKNOWN": 3, "DENIED": 4, "CONSTRAINT": 5,
         "PROTECTED": 6, "NOT_RMW_SAFE": 7}
CODE_NAMES = {v: k for k, v in CODES.items()}


def _dim(spec: list | None) -> Dim | None:
    if not spec:
        return None
    return Dim(spec[0], spec[1], [str(i) for i in range(spec[0])])


def _field(spec: list) -> Field:
    name, lsb, width = spec[:3]
    opt = spec[3] if len(spec) > 3 else {}
    wc = None
    if "range" in opt:
        wc = WriteConstraint(range=tuple(opt["range"]))
    if opt.get("write_as_read"):
        wc = WriteConstraint(write_as_read=True)
    enums = []
    if "write_enums" in opt:
        vals = []
        for v in opt["write_enums"]:
            default = len(v) > 3 and v[3] == "default"
            vals.append(EnumValue(v[0], 0 if default else v[1], 0 if default else (1 << width) - 1, default))
        enums.append(EnumSet(None, "write", vals))
    return Field(name, lsb, width, opt.get("access"), opt.get("mwv"), opt.get("read_action"), wc, enums)


def _register(spec: dict) -> Register:
    return Register(spec["name"], spec["offset"], spec.get("size", 32), spec.get("access", "read-write"), None,
                    spec.get("reset", 0), 0xFFFFFFFF, _dim(spec.get("dim")),
                    [_field(f) for f in spec.get("fields", [])], spec.get("mwv"), spec.get("read_action"))


def _cluster(spec: dict) -> Cluster:
    return Cluster(spec["name"], spec["offset"], _dim(spec.get("dim")),
                   [_register(r) for r in spec.get("registers", [])],
                   [_cluster(c) for c in spec.get("clusters", [])])


def build_chip(data: dict) -> Chip:
    periphs = []
    for p in data["peripherals"]:
        periphs.append(Peripheral(
            p["name"], p["base"], address_blocks=[AddressBlock(o, s) for o, s in p.get("blocks", [])],
            registers=[_register(r) for r in p.get("registers", [])],
            clusters=[_cluster(c) for c in p.get("clusters", [])]))
    return Chip(data["name"], data["name"].upper(), None, 32, 8, periphs, {"file": "toy.svd"})


def load_toy_chip() -> Chip:
    return build_chip(yaml.safe_load((HERE / "toy_chip.yaml").read_text()))


def load_cases() -> dict:
    return yaml.safe_load((HERE / "cases.yaml").read_text())


# ---------------------------------------------------------------------------------------------
# Devices: each runs ops [("r", addr), ("w", addr, v), ("m", addr, lsb, width, v)] and returns
# [(code, value, detail, [bus ops])].


class FakeBus:
    def __init__(self, memory: dict[int, int]):
        self.memory = dict(memory)
        self.log: list[tuple] = []

    def read32(self, addr: int) -> int:
        self.log.append(("R", addr))
        return self.memory.get(addr, 0)

    def write32(self, addr: int, value: int) -> None:
        self.log.append(("W", addr, value))
        self.memory[addr] = value


class PyDevice:
    """The rendered clawreg.py, executed by CPython with a fake clawhw."""

    def __init__(self, table: PolicyTable, memory: dict[int, int] | None = None):
        self.source = render_app_module("clawreg", RegisterPlan(table.chip, table))
        self.bus = FakeBus(memory if memory is not None else reset_values(table))
        hw = types.ModuleType("clawhw")
        hw.read32 = self.bus.read32  # type: ignore[attr-defined]
        hw.write32 = self.bus.write32  # type: ignore[attr-defined]
        saved = sys.modules.get("clawhw")
        sys.modules["clawhw"] = hw
        try:
            self.mod = types.ModuleType("clawreg")
            exec(compile(self.source, "clawreg.py", "exec"), self.mod.__dict__)
        finally:
            if saved is None:
                del sys.modules["clawhw"]
            else:
                sys.modules["clawhw"] = saved

    def run(self, ops: list[tuple], fresh: bool = False) -> list[tuple]:
        """Run ops in sequence (``fresh``: each on the initial memory)."""
        initial = dict(self.bus.memory)
        out = []
        for op in ops:
            if fresh:
                self.bus.memory = dict(initial)
            self.bus.log = []
            fn = {"r": self.mod._read, "w": self.mod._write, "m": self.mod._modify}[op[0]]
            c, v, d = fn(*op[1:])
            out.append((c, v, d, self.bus.log))
        return out


C_DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "clawreg_policy.h"

extern const clawreg_policy_t clawreg_policy;

#define MEM 4096
static uint32_t mem_addr[MEM], mem_val[MEM];
static size_t mem_n;

static uint32_t *slot(uint32_t addr) {
    size_t i;
    for (i = 0; i < mem_n; i++) {
        if (mem_addr[i] == addr) {
            return &mem_val[i];
        }
    }
    if (mem_n == MEM) {
        return NULL;
    }
    mem_addr[mem_n] = addr;
    mem_val[mem_n] = 0;
    return &mem_val[mem_n++];
}

static uint32_t rd(void *ctx, uint32_t addr) {
    uint32_t *s = slot(addr);
    (void)ctx;
    printf("R %lu\n", (unsigned long)addr);
    return s ? *s : 0;
}

static void wr(void *ctx, uint32_t addr, uint32_t value) {
    uint32_t *s = slot(addr);
    (void)ctx;
    printf("W %lu %lu\n", (unsigned long)addr, (unsigned long)value);
    if (s) {
        *s = value;
    }
}

int main(void) {
    clawreg_bus_t bus = {rd, wr, NULL};
    char op[8];
    unsigned long a, b, c, d;
    while (scanf("%7s", op) == 1) {
        clawreg_result_t r;
        if (strcmp(op, "s") == 0 && scanf("%lu %lu", &a, &b) == 2) {
            uint32_t *s = slot((uint32_t)a);
            if (s) {
                *s = (uint32_t)b;
            }
            continue;
        } else if (strcmp(op, "r") == 0 && scanf("%lu", &a) == 1) {
            r = clawreg_read(&clawreg_policy, &bus, (uint32_t)a);
        } else if (strcmp(op, "w") == 0 && scanf("%lu %lu", &a, &b) == 2) {
            r = clawreg_write(&clawreg_policy, &bus, (uint32_t)a, (uint32_t)b);
        } else if (strcmp(op, "m") == 0 && scanf("%lu %lu %lu %lu", &a, &b, &c, &d) == 4) {
            r = clawreg_modify(&clawreg_policy, &bus, (uint32_t)a, (unsigned)b, (unsigned)c, (uint32_t)d);
        } else {
            return 3;
        }
        printf("= %d %lu %lu\n", r.code, (unsigned long)r.value, (unsigned long)r.detail);
    }
    return 0;
}
"""

CFLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def gcc() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


class CDevice:
    """The C policy core + the rendered table, compiled with the host compiler."""

    def __init__(self, table: PolicyTable, workdir: Path, memory: dict[int, int] | None = None):
        cc = gcc()
        if cc is None:
            raise RuntimeError("no C compiler (gcc) on PATH")
        self.memory = memory if memory is not None else reset_values(table)
        workdir.mkdir(parents=True, exist_ok=True)
        for rel, text in render_usermod(RegisterPlan(table.chip, table)).items():
            (workdir / Path(rel).name).write_text(text)
        (workdir / "driver.c").write_text(C_DRIVER)
        self.exe = workdir / "driver"
        proc = subprocess.run([cc, *CFLAGS, "-I", str(workdir), "-o", str(self.exe), str(workdir / "driver.c"),
                               str(workdir / "clawreg_policy.c"), str(workdir / "clawreg_table.c")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"C compile failed:\n{proc.stderr}")

    def run(self, ops: list[tuple], fresh: bool = False) -> list[tuple]:
        """Run ops in sequence (``fresh``: each on the initial memory)."""
        seed = [f"s {a} {v}" for a, v in self.memory.items()]
        lines = list(seed)
        for op in ops:
            if fresh:
                lines += seed
            lines.append(" ".join([op[0], *(str(x) for x in op[1:])]))
        proc = subprocess.run([str(self.exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                              check=True)
        out: list[tuple] = []
        log: list[tuple] = []
        for line in proc.stdout.splitlines():
            parts = line.split()
            if parts[0] == "=":
                out.append((int(parts[1]), int(parts[2]), int(parts[3]), log))
                log = []
            elif parts[0] == "R":
                log.append(("R", int(parts[1])))
            else:
                log.append(("W", int(parts[1]), int(parts[2])))
        return out


def parse_op(table: PolicyTable, chip: Chip, case: dict) -> tuple:
    """A case's operation as a device op tuple (names resolved through the chip model)."""
    def addr_of(x: Any) -> int:
        if isinstance(x, int):
            return x
        ri = chip.find_register(x)
        assert ri is not None, f"case names unknown register {x}"
        return ri.address

    op = case["op"]
    if op == "read":
        return ("r", addr_of(case["addr"]))
    if op == "write":
        return ("w", addr_of(case["addr"]), case["value"])
    if op == "field":
        reg, _, fname = case["field"].rpartition(".")
        ri = chip.find_register(reg)
        assert ri is not None
        f = next(f for f in ri.fields if f.name.upper() == fname.upper())
        return ("m", ri.address, f.lsb, f.width, case["value"])
    raise AssertionError(f"bad op {op}")


def parse_bus(chip: Chip, items: list[str]) -> list[tuple]:
    out: list[tuple] = []
    for item in items:
        parts = item.split()
        ri = chip.find_register(parts[1])
        assert ri is not None, parts[1]
        out.append(("R", ri.address) if parts[0] == "R" else ("W", ri.address, int(parts[2], 0)))
    return out
