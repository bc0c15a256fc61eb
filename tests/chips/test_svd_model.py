"""Chip model queries: lazy iteration in address order, counts, lookups by path and address."""

from __future__ import annotations

import itertools

from clawgen.chips.model import Chip, Cluster, Dim, Field, Peripheral, Register


def _reg(name: str, offset: int, dim: Dim | None = None, size: int = 32, **kw: object) -> Register:
    return Register(name, offset, size, "read-write", None, 0, (1 << size) - 1, dim, **kw)  # type: ignore[arg-type]


def _chip(*peripherals: Peripheral) -> Chip:
    return Chip("t", "T", None, 32, 8, list(peripherals), {"file": "t.svd", "sha256": "0" * 64})


def _interleaved() -> Chip:
    # A cluster array whose elements are wider than their stride interleaves with each other and
    # with a plain register: iteration must still come out in address order.
    ch = Cluster("CH%s", 0x10, Dim(3, 4, ["0", "1", "2"]), [_reg("A", 0x0), _reg("B", 0x20)], [])
    p = Peripheral("P", 0x1000, registers=[_reg("Z", 0x18), _reg("R%s", 0x0, Dim(2, 8, ["0", "1"]))],
                   clusters=[ch])
    return _chip(p)


def test_iteration_is_in_address_order_across_interleaved_arrays() -> None:
    chip = _interleaved()
    got = [(ri.path, ri.address) for ri in chip.iter_registers()]
    assert got == [
        ("P.R0", 0x1000), ("P.R1", 0x1008), ("P.CH0.A", 0x1010), ("P.CH1.A", 0x1014), ("P.Z", 0x1018),
        ("P.CH2.A", 0x1018), ("P.CH0.B", 0x1030), ("P.CH1.B", 0x1034), ("P.CH2.B", 0x1038),
    ]
    assert chip.register_count() == len(got)


def test_iteration_is_lazy_for_huge_arrays() -> None:
    big = _reg("RAM[%s]", 0, Dim(10_000_000, 4, _LazyIndices(10_000_000)))  # type: ignore[arg-type]
    chip = _chip(Peripheral("MEM", 0x2000_0000, registers=[big]))
    assert chip.register_count() == 10_000_000
    first = list(itertools.islice(chip.iter_registers(), 3))
    assert [(r.name, r.address) for r in first] == [("RAM0", 0x2000_0000), ("RAM1", 0x2000_0004), ("RAM2", 0x2000_0008)]
    assert chip.find_by_address(0x2000_0000 + 4 * 9_999_999).name == "RAM9999999"


class _LazyIndices:
    """Indices "0".."n-1" without materialising them (to prove nothing expands eagerly)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return str(i)


def test_find_register_paths_are_case_insensitive_and_accept_brackets() -> None:
    chip = _interleaved()
    assert chip.find_register("p.ch2.b").address == 0x1038
    assert chip.find_register("P.CH[2].B").path == "P.CH2.B"
    assert chip.find_register("P.R1").address == 0x1008
    assert chip.find_register("P.R2") is None
    assert chip.find_register("P") is None
    assert chip.find_register("Q.Z") is None
    assert chip.find_register("P.CH0.NOPE") is None


def test_find_by_address_covers_register_bytes() -> None:
    chip = _interleaved()
    assert chip.find_by_address(0x1008).path == "P.R1"
    assert chip.find_by_address(0x100A).path == "P.R1"  # inside the 4-byte register
    assert chip.find_by_address(0x1018).path in ("P.Z", "P.CH2.A")
    assert chip.find_by_address(0x1039).path == "P.CH2.B"
    assert chip.find_by_address(0x1040) is None
    assert chip.find_by_address(0x0FFF) is None


def test_peripheral_lookup_and_field_arrays() -> None:
    f = Field("EN%s", 0, 2, "read-write", dim=Dim(3, 2, ["A", "B", "C"]))
    chip = _chip(Peripheral("Gpio", 0x0, registers=[_reg("CTRL", 0x0, fields=[f])]))
    assert chip.peripheral("GPIO") is chip.peripherals[0]
    assert chip.peripheral("nope") is None
    ri = chip.find_register("gpio.ctrl")
    assert [(x.name, x.lsb, x.width, x.dim) for x in ri.fields] == [
        ("ENA", 0, 2, None), ("ENB", 2, 2, None), ("ENC", 4, 2, None)]
    assert ri.register.get_field("en%s") is f
    assert (f.msb, f.mask) == (1, 0b11)
