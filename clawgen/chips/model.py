"""The chip model: a resolved, self-contained view of a CMSIS-SVD register map.

Everything here is *effective*: inheritance (device -> peripheral -> cluster -> register ->
field) and every ``derivedFrom`` were applied by the importer (``clawgen.chips.svd``), so a
consumer never looks anything up elsewhere. Arrays stay compact (``Dim``: count, increment,
indices); ``Chip.iter_registers`` expands them lazily, one ``RegisterInstance`` at a time.

Names of array elements: ``%s`` in a name is replaced by the index; ``[%s]`` becomes the bare
index too (``CH[%s]`` -> ``CH0``), so every expanded name is a plain identifier. Lookups
(``find_register``) also accept the bracket form (``CH[0]``).

Derived peripherals share their source's ``registers``/``clusters`` lists (the same Python
objects); treat the model as read-only.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from clawgen.records import slotted

# The five access types of the SVD schema (other spellings are mapped by the importer).
ACCESS_TYPES = ("read-only", "write-only", "read-write", "writeOnce", "read-writeOnce")
# The other closed vocabularies of the SVD schema the model keeps (the importer maps other
# spellings, the chip database reader refuses them).
MODIFIED_WRITE_VALUES = frozenset({"oneToClear", "oneToSet", "oneToToggle", "zeroToClear", "zeroToSet",
                                   "zeroToToggle", "clear", "set", "modify"})
READ_ACTIONS = frozenset({"clear", "set", "modify", "modifyExternal"})
PROTECTIONS = frozenset({"s", "n", "p"})  # secure, non-secure, privileged
ENUM_USAGES = frozenset({"read", "write", "read-write"})

# Register instances of one chip with every array expanded (peripheral, cluster and register
# arrays, all nesting levels multiplied). The largest vendor file of the test corpus
# (nrf54lm20a.svd) has 115,609; the cap keeps every pass that expands arrays (policy, summaries,
# lookups) bounded. The importer and the database reader refuse a chip above it.
MAX_REGISTER_INSTANCES = 1 << 20


@slotted
class EnumValue:
    name: str
    value: int
    # Bits the value cares about: '#1xx0' -> value 0b1000, mask 0b1001. For isDefault
    # entries value and mask are 0 (the entry matches whatever no other entry names).
    mask: int
    is_default: bool = False
    description: str | None = None


@slotted
class EnumSet:
    name: str | None
    usage: str  # "read" | "write" | "read-write"
    values: list[EnumValue]


@slotted
class WriteConstraint:
    write_as_read: bool = False
    use_enumerated_values: bool = False
    range: tuple[int, int] | None = None  # inclusive (minimum, maximum)


@slotted
class Dim:
    count: int
    increment: int  # bytes for registers/clusters/peripherals, bits for fields
    indices: list[str]  # len == count

    def index(self, i: int) -> str:
        return self.indices[i]


@slotted
class Field:
    name: str
    lsb: int
    width: int
    access: str | None
    modified_write_values: str | None = None
    read_action: str | None = None
    write_constraint: WriteConstraint | None = None
    enums: list[EnumSet] = field(default_factory=list)
    description: str | None = None
    dim: Dim | None = None

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """Bits of the (first element of the) field within its register."""
        return ((1 << self.width) - 1) << self.lsb


@slotted
class Register:
    name: str
    offset: int  # bytes from the enclosing cluster (or peripheral)
    size: int  # bits
    access: str
    protection: str | None
    reset_value: int
    reset_mask: int
    dim: Dim | None = None
    fields: list[Field] = field(default_factory=list)
    modified_write_values: str | None = None
    read_action: str | None = None
    write_constraint: WriteConstraint | None = None
    alternate_register: str | None = None
    alternate_group: str | None = None
    description: str | None = None

    def get_field(self, name: str) -> Field | None:
        """The field called ``name`` (its declared name, case-insensitive)."""
        key = name.upper()
        for f in self.fields:
            if f.name.upper() == key:
                return f
        return None


@slotted
class Cluster:
    name: str
    offset: int
    dim: Dim | None = None
    registers: list[Register] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    description: str | None = None


@slotted
class AddressBlock:
    offset: int
    size: int
    usage: str | None = None


@slotted
class Interrupt:
    name: str
    value: int
    description: str | None = None


@slotted
class Peripheral:
    name: str
    base_address: int
    group_name: str | None = None
    description: str | None = None
    address_blocks: list[AddressBlock] = field(default_factory=list)
    interrupts: list[Interrupt] = field(default_factory=list)
    registers: list[Register] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    # Peripheral arrays are expanded by the importer, so this is always None after import.
    dim: Dim | None = None
    # Name of the peripheral whose registers/clusters this one shares (derivedFrom), if any.
    derived_from: str | None = None


@slotted
class RegisterInstance:
    """One concrete register: arrays expanded, absolute address."""

    peripheral: str
    path: str  # "LEDC.CH0_CONF0", "TIMG0.T0.CONFIG": peripheral, cluster levels, register
    address: int
    register: Register
    name: str  # expanded register name
    fields: list[Field]  # field arrays expanded (names expanded, dim None)

    @property
    def size(self) -> int:
        return self.register.size

    @property
    def access(self) -> str:
        return self.register.access

    @property
    def reset_value(self) -> int:
        return self.register.reset_value


# ---------------------------------------------------------------------------------------------
# Array helpers


def expand_name(name: str, index: str) -> str:
    """The name of one array element: ``%s`` / ``[%s]`` replaced by ``index``."""
    if "[%s]" in name:
        return name.replace("[%s]", index)
    return name.replace("%s", index)


def dim_count(dim: Dim | None) -> int:
    return dim.count if dim is not None else 1


def expand_fields(fields: list[Field]) -> list[Field]:
    """Fields with field arrays expanded (returns ``fields`` itself when there are none)."""
    if not any(f.dim is not None for f in fields):
        return fields
    out: list[Field] = []
    for f in fields:
        if f.dim is None:
            out.append(f)
            continue
        for i in range(f.dim.count):
            out.append(Field(expand_name(f.name, f.dim.indices[i]), f.lsb + i * f.dim.increment, f.width,
                             f.access, f.modified_write_values, f.read_action, f.write_constraint,
                             f.enums, f.description, None))
    return out


def _norm_path(path: str) -> str:
    # "CH[0]" and "CH0" name the same element; compare case-insensitively.
    return re.sub(r"\[(\w+)\]", r"\1", path).upper()


def _register_instances(periph: str, prefix: str, base: int, reg: Register) -> Iterator[RegisterInstance]:
    fields = expand_fields(reg.fields)
    if reg.dim is None:
        yield RegisterInstance(periph, f"{prefix}.{reg.name}", base + reg.offset, reg, reg.name, fields)
        return
    d = reg.dim
    for i in range(d.count):
        name = expand_name(reg.name, d.indices[i])
        yield RegisterInstance(periph, f"{prefix}.{name}", base + reg.offset + i * d.increment, reg, name,
                               fields)


def _address_key(ri: RegisterInstance) -> int:
    return ri.address


def _contents(periph: str, prefix: str, base: int, registers: list[Register],
              clusters: list[Cluster]) -> Iterator[RegisterInstance]:
    """Registers of one block in address order, merging the (each sorted) element streams."""
    streams: list[Iterator[RegisterInstance]] = []
    for r in sorted(registers, key=lambda r: r.offset):
        streams.append(_register_instances(periph, prefix, base, r))
    for c in clusters:
        if c.dim is None:
            streams.append(_contents(periph, f"{prefix}.{c.name}", base + c.offset, c.registers, c.clusters))
            continue
        for i in range(c.dim.count):
            streams.append(_contents(periph, f"{prefix}.{expand_name(c.name, c.dim.indices[i])}",
                                     base + c.offset + i * c.dim.increment, c.registers, c.clusters))
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_address_key)


def _block_addresses(base: int, registers: list[Register], clusters: list[Cluster], out: list[int]) -> None:
    for r in registers:
        a = base + r.offset
        if r.dim is None:
            out.append(a)
        else:
            out.extend(range(a, a + r.dim.count * r.dim.increment, r.dim.increment) if r.dim.increment > 0
                       else [a] * r.dim.count)
    for c in clusters:
        for i in range(dim_count(c.dim)):
            _block_addresses(base + c.offset + (i * c.dim.increment if c.dim else 0), c.registers, c.clusters, out)


def _block_count(registers: list[Register], clusters: list[Cluster]) -> int:
    n = sum(dim_count(r.dim) for r in registers)
    n += sum(dim_count(c.dim) * _block_count(c.registers, c.clusters) for c in clusters)
    return n


@dataclass(frozen=True, slots=True)
class Totals:
    """Counts over every expanded register instance, computed from the declared elements."""

    registers: int = 0
    fields: int = 0  # field arrays expanded
    enum_sets: int = 0  # enumeratedValues sets of those fields

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.registers + other.registers, self.fields + other.fields,
                      self.enum_sets + other.enum_sets)

    def times(self, k: int) -> Totals:
        return Totals(self.registers * k, self.fields * k, self.enum_sets * k)


def _register_totals(r: Register) -> Totals:
    fields = enums = 0
    for f in r.fields:
        k = dim_count(f.dim)
        fields += k
        enums += k * len(f.enums)
    return Totals(1, fields, enums).times(dim_count(r.dim))


def _block_totals(registers: list[Register], clusters: list[Cluster]) -> Totals:
    t = Totals()
    for r in registers:
        t = t + _register_totals(r)
    for c in clusters:
        t = t + _block_totals(c.registers, c.clusters).times(dim_count(c.dim))
    return t


@dataclass
class Chip:
    name: str
    device_name: str
    vendor: str | None
    width: int  # bus width in bits
    address_unit_bits: int
    peripherals: list[Peripheral]
    source: dict  # {"file": basename, "sha256": ...}
    cpu: dict | None = None
    description: str | None = None
    _by_name: dict[str, Peripheral] | None = field(default=None, init=False, repr=False, compare=False)

    def peripheral(self, name: str) -> Peripheral | None:
        """The peripheral called ``name`` (case-insensitive)."""
        if self._by_name is None:
            self._by_name = {p.name.upper(): p for p in self.peripherals}
        return self._by_name.get(name.upper())

    def iter_peripheral_registers(self, p: Peripheral) -> Iterator[RegisterInstance]:
        """Registers of one peripheral, arrays expanded lazily, in address order."""
        return _contents(p.name, p.name, p.base_address, p.registers, p.clusters)

    def iter_registers(self) -> Iterator[RegisterInstance]:
        """Every register instance, peripheral by peripheral (in declaration order), each in
        address order. Lazy: memory stays bounded by the nesting depth and array counts."""
        for p in self.peripherals:
            yield from self.iter_peripheral_registers(p)

    def register_addresses(self, p: Peripheral) -> list[int]:
        """The address of every register instance of ``p`` (unordered; one per instance), without
        building the instances: for passes over a whole chip that need only where registers are."""
        out: list[int] = []
        _block_addresses(p.base_address, p.registers, p.clusters, out)
        return out

    def register_count(self) -> int:
        """Number of expanded register instances, computed without expanding."""
        return sum(_block_count(p.registers, p.clusters) for p in self.peripherals)

    def peripheral_register_count(self, p: Peripheral) -> int:
        """Number of expanded register instances of ``p``, computed without expanding."""
        return _block_count(p.registers, p.clusters)

    def totals(self) -> Totals:
        """Register instances, fields and enumerated value sets with every array expanded, in
        time proportional to the declared elements (not to the instances)."""
        t = Totals()
        for p in self.peripherals:
            t = t + _block_totals(p.registers, p.clusters)
        return t

    def find_register(self, path: str) -> RegisterInstance | None:
        """``"GPIO.OUT"``, ``"TIMG0.T0.CONFIG"``, ``"UART0.FIFO"`` (case-insensitive; array
        elements by expanded name, ``CH0`` or ``CH[0]``)."""
        parts = path.split(".")
        p = self.peripheral(parts[0])
        if p is None or len(parts) < 2:
            return None
        return _find_in_block(p.name, p.name, p.base_address, p.registers, p.clusters,
                              [_norm_path(x) for x in parts[1:]])

    def find_by_address(self, addr: int) -> RegisterInstance | None:
        """The register at (or covering) byte address ``addr``; an exact start address wins,
        and a primary register wins over its alternates."""
        best: RegisterInstance | None = None
        for p in self.peripherals:
            if addr < p.base_address:
                continue  # register offsets are not negative
            for ri in _at_address(p.name, p.name, p.base_address, p.registers, p.clusters, addr):
                rank = (ri.address != addr, ri.register.alternate_register is not None
                        or ri.register.alternate_group is not None)
                if best is None or rank < (best.address != addr, best.register.alternate_register is not None
                                           or best.register.alternate_group is not None):
                    best = ri
                if rank == (False, False):
                    return best
        return best


def _match_element(name: str, dim: Dim | None, want: str) -> int | None:
    """-1 when a non-array ``name`` matches ``want``, the array index when an element does."""
    if dim is None:
        return -1 if _norm_path(name) == want else None
    for i in range(dim.count):
        if _norm_path(expand_name(name, dim.indices[i])) == want:
            return i
    return None


def _find_in_block(periph: str, prefix: str, base: int, registers: list[Register], clusters: list[Cluster],
                   parts: list[str]) -> RegisterInstance | None:
    want = parts[0]
    if len(parts) == 1:
        for r in registers:
            i = _match_element(r.name, r.dim, want)
            if i is None:
                continue
            name = r.name if i < 0 else expand_name(r.name, r.dim.indices[i])  # type: ignore[union-attr]
            addr = base + r.offset + (i * r.dim.increment if i >= 0 else 0)  # type: ignore[union-attr]
            return RegisterInstance(periph, f"{prefix}.{name}", addr, r, name, expand_fields(r.fields))
        return None
    for c in clusters:
        i = _match_element(c.name, c.dim, want)
        if i is None:
            continue
        name = c.name if i < 0 else expand_name(c.name, c.dim.indices[i])  # type: ignore[union-attr]
        addr = base + c.offset + (i * c.dim.increment if i >= 0 else 0)  # type: ignore[union-attr]
        found = _find_in_block(periph, f"{prefix}.{name}", addr, c.registers, c.clusters, parts[1:])
        if found is not None:
            return found
    return None


def _at_address(periph: str, prefix: str, base: int, registers: list[Register], clusters: list[Cluster],
                addr: int) -> Iterator[RegisterInstance]:
    """Register instances covering ``addr``, found arithmetically (no expansion)."""
    for r in registers:
        nbytes = max(1, r.size // 8)
        rel = addr - base - r.offset
        if rel < 0:
            continue
        if r.dim is None:
            if rel < nbytes:
                yield RegisterInstance(periph, f"{prefix}.{r.name}", base + r.offset, r, r.name,
                                       expand_fields(r.fields))
            continue
        inc = r.dim.increment
        i = rel // inc if inc > 0 else 0
        if i < r.dim.count and rel - i * inc < nbytes:
            name = expand_name(r.name, r.dim.indices[i])
            yield RegisterInstance(periph, f"{prefix}.{name}", base + r.offset + i * inc, r, name,
                                   expand_fields(r.fields))
    for c in clusters:
        rel = addr - base - c.offset
        if rel < 0:
            continue
        if c.dim is None:
            yield from _at_address(periph, f"{prefix}.{c.name}", base + c.offset, c.registers, c.clusters, addr)
            continue
        inc = c.dim.increment
        if inc <= 0:
            candidates: range = range(c.dim.count)
        else:
            # Elements may be larger than their stride: try each whose extent can reach addr.
            extent = _block_extent(c.registers, c.clusters)
            lo = max(0, (rel - extent) // inc)
            candidates = range(min(c.dim.count - 1, rel // inc), lo - 1, -1)
        for i in candidates:
            name = expand_name(c.name, c.dim.indices[i])
            yield from _at_address(periph, f"{prefix}.{name}", base + c.offset + i * inc, c.registers,
                                   c.clusters, addr)


def _block_extent(registers: list[Register], clusters: list[Cluster]) -> int:
    """Bytes from a block's start to the end of its last register."""
    end = 0
    for r in registers:
        n = r.offset + max(1, r.size // 8)
        if r.dim is not None:
            n += (r.dim.count - 1) * r.dim.increment
        end = max(end, n)
    for c in clusters:
        n = c.offset + _block_extent(c.registers, c.clusters)
        if c.dim is not None:
            n += (c.dim.count - 1) * c.dim.increment
        end = max(end, n)
    return end
