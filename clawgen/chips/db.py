"""The chip database file: a versioned, compact JSON form of ``clawgen.chips.model.Chip``.

``NAME.json.gz`` (gzip, reproducible: no timestamp) or ``NAME.json``. The format is documented
in docs/chips.md; ``FORMAT_VERSION`` is its major version, and readers refuse any other.
Defaults are omitted (see ``_DEFAULTS`` below and docs/chips.md), integers stay integers.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from clawgen.chips.model import (
    ACCESS_TYPES,
    ENUM_USAGES,
    MAX_REGISTER_INSTANCES,
    MODIFIED_WRITE_VALUES,
    PROTECTIONS,
    READ_ACTIONS,
    AddressBlock,
    Chip,
    Cluster,
    Dim,
    EnumSet,
    EnumValue,
    Field,
    Interrupt,
    Peripheral,
    Register,
    WriteConstraint,
)
from clawgen.diagnostics import ERROR, Diagnostic, DiagnosticError
from clawgen.files import read_bounded

FORMAT_NAME = "clawgen-chip"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Chip -> JSON


def _put(d: dict, key: str, value: Any, default: Any = None) -> None:
    if value != default:
        d[key] = value


def _dim_json(dim: Dim | None) -> dict | None:
    if dim is None:
        return None
    d: dict = {"count": dim.count, "increment": dim.increment}
    if dim.indices != [str(i) for i in range(dim.count)]:
        d["indices"] = dim.indices
    return d


def _wc_json(wc: WriteConstraint | None) -> dict | None:
    if wc is None:
        return None
    d: dict = {}
    _put(d, "writeAsRead", wc.write_as_read, False)
    _put(d, "useEnumeratedValues", wc.use_enumerated_values, False)
    if wc.range is not None:
        d["range"] = list(wc.range)
    return d


def _enum_json(s: EnumSet, width: int) -> dict:
    full = (1 << width) - 1
    values = []
    for v in s.values:
        e: dict = {"name": v.name}
        if v.is_default:
            e["isDefault"] = True
        else:
            e["value"] = v.value
            _put(e, "mask", v.mask, full)
        _put(e, "description", v.description)
        values.append(e)
    d: dict = {}
    _put(d, "name", s.name)
    _put(d, "usage", s.usage, "read-write")
    d["values"] = values
    return d


def _field_json(f: Field, reg_access: str) -> dict:
    d: dict = {"name": f.name, "lsb": f.lsb}
    _put(d, "width", f.width, 1)
    _put(d, "access", f.access, reg_access)
    _put(d, "dim", _dim_json(f.dim))
    _put(d, "modifiedWriteValues", f.modified_write_values)
    _put(d, "readAction", f.read_action)
    _put(d, "writeConstraint", _wc_json(f.write_constraint))
    if f.enums:
        d["enums"] = [_enum_json(s, f.width) for s in f.enums]
    _put(d, "description", f.description)
    return d


def _register_json(r: Register) -> dict:
    d: dict = {"name": r.name, "offset": r.offset}
    _put(d, "size", r.size, 32)
    _put(d, "access", r.access, "read-write")
    _put(d, "protection", r.protection)
    _put(d, "resetValue", r.reset_value, 0)
    _put(d, "resetMask", r.reset_mask, (1 << r.size) - 1)
    _put(d, "dim", _dim_json(r.dim))
    _put(d, "modifiedWriteValues", r.modified_write_values)
    _put(d, "readAction", r.read_action)
    _put(d, "writeConstraint", _wc_json(r.write_constraint))
    _put(d, "alternateRegister", r.alternate_register)
    _put(d, "alternateGroup", r.alternate_group)
    _put(d, "description", r.description)
    if r.fields:
        d["fields"] = [_field_json(f, r.access) for f in r.fields]
    return d


def _cluster_json(c: Cluster) -> dict:
    d: dict = {"name": c.name, "offset": c.offset}
    _put(d, "dim", _dim_json(c.dim))
    _put(d, "description", c.description)
    _block_json(d, c.registers, c.clusters)
    return d


def _block_json(d: dict, registers: list[Register], clusters: list[Cluster]) -> None:
    if registers:
        d["registers"] = [_register_json(r) for r in registers]
    if clusters:
        d["clusters"] = [_cluster_json(c) for c in clusters]


def chip_to_json(chip: Chip) -> dict:
    """The database document for ``chip`` (plain JSON data)."""
    doc: dict = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": chip.name,
                 "device": chip.device_name}
    _put(doc, "vendor", chip.vendor)
    doc["width"] = chip.width
    doc["addressUnitBits"] = chip.address_unit_bits
    _put(doc, "description", chip.description)
    _put(doc, "cpu", chip.cpu)
    doc["source"] = chip.source
    periphs = []
    by_name = {p.name.upper(): p for p in chip.peripherals}
    for p in chip.peripherals:
        d: dict = {"name": p.name, "baseAddress": p.base_address}
        _put(d, "groupName", p.group_name)
        _put(d, "description", p.description)
        if p.address_blocks:
            d["addressBlocks"] = [_drop_none({"offset": b.offset, "size": b.size, "usage": b.usage})
                                  for b in p.address_blocks]
        if p.interrupts:
            d["interrupts"] = [_drop_none({"name": i.name, "value": i.value, "description": i.description})
                               for i in p.interrupts]
        src = by_name.get((p.derived_from or "").upper())
        if src is not None and src is not p and src.registers is p.registers and src.clusters is p.clusters \
                and src.derived_from is None:
            d["derivedFrom"] = src.name  # shares the source's registers: written once
        else:
            _block_json(d, p.registers, p.clusters)
        periphs.append(d)
    doc["peripherals"] = periphs
    return doc


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def write_chip(chip: Chip, path: str | os.PathLike[str]) -> Path:
    """Write ``chip`` to ``path`` (gzipped when it ends in ``.gz``), atomically."""
    path = Path(path)
    data = json.dumps(chip_to_json(chip), separators=(",", ":"), ensure_ascii=False).encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private (0600); a chip database is an ordinary file that others
        # on a shared CLAWGEN_CHIP_PATH must read: use the permissions any new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------------
# JSON -> Chip


class _Bad(Exception):
    pass


_MISSING = object()
_U64 = (1 << 64) - 1  # (addresses, offsets, sizes: the importer keeps what fits in 64 bits)
_MAX_BIT = 63  # a field's lowest bit (registers are at most 64 bits)


def _shown(value: object) -> str:
    """A value for a message, cut short (a hostile file's value is no help at full length)."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(d: dict, key: str, lo: int, hi: int, default: Any = _MISSING) -> int:
    v = d.get(key, default)
    if v is _MISSING:
        raise _Bad(f'"{key}" is missing')
    if type(v) is not int or not lo <= v <= hi:  # (bool is an int to Python: refused)
        raise _Bad(f'"{key}" is {_shown(v)}: expected an integer from {lo:,} to {hi:,}')
    return v


def _text(d: dict, key: str, default: Any = _MISSING, allowed: tuple[str, ...] | frozenset[str] = ()) -> Any:
    """A string value (None only where ``default`` is None and the key is absent or null)."""
    v = d.get(key, default)
    if v is _MISSING:
        raise _Bad(f'"{key}" is missing')
    if v is None and default is None:
        return None
    if type(v) is not str or (allowed and v not in allowed) or (not allowed and not v and default is _MISSING):
        expected = f"one of {', '.join(sorted(allowed))}" if allowed else "a string"
        raise _Bad(f'"{key}" is {_shown(v)}: expected {expected}')
    return v


def _flag(d: dict, key: str) -> bool:
    v = d.get(key, False)
    if type(v) is not bool:
        raise _Bad(f'"{key}" is {_shown(v)}: expected true or false')
    return v


def _items(d: dict, key: str) -> list:
    """A list of objects (absent: empty)."""
    v = d.get(key, ())
    if type(v) not in (list, tuple) or not all(type(x) is dict for x in v):
        raise _Bad(f'"{key}" is {_shown(v)}: expected a list of objects')
    return v  # type: ignore[return-value]


def _obj(d: dict, key: str) -> dict | None:
    v = d.get(key)
    if v is not None and type(v) is not dict:
        raise _Bad(f'"{key}" is {_shown(v)}: expected an object')
    return v


def _named(what: str, d: dict, fn: Any, *args: Any) -> Any:
    """``fn(d, name, *args)`` for an element with a name, a problem in it said with the element it
    is in (peripheral GPIO: register OUT: field DATA: ...)."""
    try:
        name = _text(d, "name")
    except _Bad as e:
        raise _Bad(f"a {what}: {e}") from None
    try:
        return fn(d, name, *args)
    except _Bad as e:
        raise _Bad(f"{what} {name}: {e}") from None


def _dim(d: dict | None) -> Dim | None:
    if d is None:
        return None
    count = _int(d, "count", 1, MAX_REGISTER_INSTANCES)
    increment = _int(d, "increment", 0, _U64)
    indices = d.get("indices")
    if indices is None:
        return Dim(count, increment, [str(i) for i in range(count)])
    if type(indices) is not list or not all(type(i) is str for i in indices):
        raise _Bad(f'"indices" is {_shown(indices)}: expected a list of strings')
    if len(indices) != count:
        raise _Bad(f"array of {count} elements lists {len(indices)} indices")
    return Dim(count, increment, indices)


def _wc(d: dict | None) -> WriteConstraint | None:
    if d is None:
        return None
    r = d.get("range")
    if r is not None and (type(r) is not list or len(r) != 2 or not all(type(x) is int and 0 <= x <= _U64 for x in r)):
        raise _Bad(f'"range" is {_shown(r)}: expected [minimum, maximum], two integers from 0 to {_U64:,}')
    return WriteConstraint(_flag(d, "writeAsRead"), _flag(d, "useEnumeratedValues"),
                           (r[0], r[1]) if r is not None else None)


def _enum(d: dict, width: int) -> EnumSet:
    full = (1 << width) - 1
    values = []
    for v in _items(d, "values"):
        name = _text(v, "name")
        if _flag(v, "isDefault"):
            values.append(EnumValue(name, 0, 0, True, _text(v, "description", None)))
        else:
            values.append(EnumValue(name, _int(v, "value", 0, _U64), _int(v, "mask", 0, _U64, full), False,
                                    _text(v, "description", None)))
    return EnumSet(_text(d, "name", None), _text(d, "usage", "read-write", ENUM_USAGES), values)


def _field(d: dict, reg_access: str) -> Field:
    return _named("field", d, _field_of, reg_access)


def _field_of(d: dict, name: str, reg_access: str) -> Field:
    lsb = _int(d, "lsb", 0, _MAX_BIT)
    width = _int(d, "width", 1, 64, 1)
    return Field(name, lsb, width, _text(d, "access", reg_access, ACCESS_TYPES),
                 _text(d, "modifiedWriteValues", None, MODIFIED_WRITE_VALUES),
                 _text(d, "readAction", None, READ_ACTIONS), _wc(_obj(d, "writeConstraint")),
                 [_enum(e, width) for e in _items(d, "enums")], _text(d, "description", None),
                 _dim(_obj(d, "dim")))


def _register(d: dict) -> Register:
    return _named("register", d, _register_of)


def _register_of(d: dict, name: str) -> Register:
    size = _int(d, "size", 1, 64, 32)
    full = (1 << size) - 1
    access = _text(d, "access", "read-write", ACCESS_TYPES)
    return Register(name, _int(d, "offset", 0, _U64), size, access,
                    _text(d, "protection", None, PROTECTIONS), _int(d, "resetValue", 0, full, 0),
                    _int(d, "resetMask", 0, full, full), _dim(_obj(d, "dim")),
                    [_field(f, access) for f in _items(d, "fields")],
                    _text(d, "modifiedWriteValues", None, MODIFIED_WRITE_VALUES),
                    _text(d, "readAction", None, READ_ACTIONS), _wc(_obj(d, "writeConstraint")),
                    _text(d, "alternateRegister", None), _text(d, "alternateGroup", None),
                    _text(d, "description", None))


def _cluster(d: dict) -> Cluster:
    return _named("cluster", d, _cluster_of)


def _cluster_of(d: dict, name: str) -> Cluster:
    regs, clusters = _block(d)
    return Cluster(name, _int(d, "offset", 0, _U64), _dim(_obj(d, "dim")), regs, clusters,
                   _text(d, "description", None))


def _block(d: dict) -> tuple[list[Register], list[Cluster]]:
    return [_register(r) for r in _items(d, "registers")], [_cluster(c) for c in _items(d, "clusters")]


def _peripheral(d: dict) -> Peripheral:
    return _named("peripheral", d, _peripheral_of)


def _peripheral_of(d: dict, name: str) -> Peripheral:
    ref = _text(d, "derivedFrom", None)
    regs, clusters = ([], []) if ref is not None else _block(d)
    blocks = [AddressBlock(_int(b, "offset", 0, _U64), _int(b, "size", 0, _U64), _text(b, "usage", None))
              for b in _items(d, "addressBlocks")]
    irqs = [Interrupt(_text(i, "name"), _int(i, "value", 0, _U64), _text(i, "description", None))
            for i in _items(d, "interrupts")]
    return Peripheral(name, _int(d, "baseAddress", 0, _U64), _text(d, "groupName", None),
                      _text(d, "description", None), blocks, irqs, regs, clusters, None, ref)


def _plain_object(d: dict, key: str) -> dict | None:
    """``cpu`` or ``source``: an object of plain values (strings, integers, true/false)."""
    v = _obj(d, key)
    if v is not None and not all(type(x) in (str, int, bool) and (type(x) is not int or 0 <= x <= _U64)
                                 for x in v.values()):
        raise _Bad(f'"{key}" is {_shown(v)}: expected an object of strings, integers and true/false')
    return v


def chip_from_json(doc: Any, where: str = "<chip>") -> Chip:
    """Build a ``Chip`` from a database document; ``DiagnosticError`` if it is not one we read."""
    def bad(msg: str) -> DiagnosticError:
        return DiagnosticError(Diagnostic(where, 1, 1, "", ERROR, msg))

    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise bad(f'not a clawgen chip database (no "format": "{FORMAT_NAME}")')
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise bad(f"chip database format version {version!r} is not supported (this clawgen reads version "
                  f"{FORMAT_VERSION}); re-import the SVD with this clawgen")
    try:
        if "peripherals" not in doc:
            raise _Bad('"peripherals" is missing')
        peripherals = [_peripheral(d) for d in _items(doc, "peripherals")]
        by_name: dict[str, Peripheral] = {}
        for p in peripherals:  # (with registers of their own)
            if p.derived_from is None:
                by_name.setdefault(p.name.upper(), p)
        for p in peripherals:  # share the source's lists (it may come later in the file)
            if p.derived_from is not None:
                src = by_name.get(p.derived_from.upper())
                if src is None:
                    raise _Bad(f'peripheral {p.name} derives from "{p.derived_from}", which is not a '
                               "peripheral with registers of its own")
                p.registers, p.clusters = src.registers, src.clusters
        source = _plain_object(doc, "source")
        if source is None:
            raise _Bad('"source" is missing')
        chip = Chip(_text(doc, "name"), _text(doc, "device"), _text(doc, "vendor", None),
                    _int(doc, "width", 1, _U64), _int(doc, "addressUnitBits", 1, _U64), peripherals, source,
                    _plain_object(doc, "cpu"), _text(doc, "description", None))
        count = chip.register_count()  # from the declared arrays: cheap, never expands them
        if count > MAX_REGISTER_INSTANCES:
            raise _Bad(f"its arrays expand to {count:,} register instances, more than the "
                       f"{MAX_REGISTER_INSTANCES:,} a chip may have")
        return chip
    except _Bad as e:
        raise bad(f"corrupt chip database: {e}") from None


# Chips decoded in this process, by file identity: validating 1,000 specs for one chip decodes
# it once. The model is read-only by contract (clawgen.chips.model), so sharing it is safe; a
# re-imported file (new size, mtime or inode) is a new key.
MAX_CACHED_CHIPS = 8
# A chip database file, and its JSON once decompressed, at most (the largest SVD of the vendor
# corpus, nrf54lm20a with 115,609 registers, makes 1.5 MB of JSON).
MAX_DB_BYTES = 64 * 1024 * 1024
_CHIPS: dict[tuple, Chip] = {}


def read_chip(path: str | os.PathLike[str]) -> Chip:
    """Load a chip database file (``.json`` or ``.json.gz``); cached per file version."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return _read_chip(path)  # reports the error
    key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    chip = _CHIPS.get(key)
    if chip is None:
        chip = _read_chip(path)
        while len(_CHIPS) >= MAX_CACHED_CHIPS:  # a long-lived process: drop the oldest
            del _CHIPS[next(iter(_CHIPS))]
        _CHIPS[key] = chip
    return chip


def _read_chip(path: Path) -> Chip:
    import zlib

    where = str(path)

    def bad(message: str) -> DiagnosticError:
        return DiagnosticError(Diagnostic(where, 1, 1, "", ERROR, message))

    try:
        raw = read_bounded(path, MAX_DB_BYTES)
    except (IsADirectoryError, ValueError):  # a FIFO would block, /dev/zero would not end
        raise bad("not a clawgen chip database: not a regular file") from None
    except OverflowError:
        raise bad(f"not a clawgen chip database: larger than {MAX_DB_BYTES:,} bytes") from None
    except OSError as e:
        raise bad(f"cannot read chip database: {e.strerror or e}") from None
    try:
        if raw[:2] == b"\x1f\x8b":
            # Bounded: a few MB of gzip can expand to gigabytes.
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = d.decompress(raw, MAX_DB_BYTES + 1)
            if len(raw) > MAX_DB_BYTES or d.unconsumed_tail:
                raise bad(f"not a clawgen chip database: it expands to more than {MAX_DB_BYTES:,} bytes")
            if not d.eof:
                raise EOFError("the gzip stream is truncated")
        doc = json.loads(raw)
    except (zlib.error, EOFError, ValueError) as e:
        raise bad(f"not a clawgen chip database: {e}") from None
    return chip_from_json(doc, where)
