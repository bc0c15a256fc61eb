"""`clawgen svd import` and `clawgen svd info`: a thin layer over clawgen.chips."""

from __future__ import annotations

from pathlib import Path

import click

from clawgen.diagnostics import InputError, UsageError, peer_text, terminal_safe
from clawgen.guard import PathArg


def _guarded(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    from clawgen.guard import run_guarded

    return run_guarded(fn, *args, **kwargs)


def _size_text(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def _check_dest(dest: Path, target: Path, given: bool) -> None:
    """InputError (exit 2) when the database cannot go where asked: a file where the directory
    (or one above it) should be, or a directory where the database file should be."""
    how = "pass --out DIR" if not given else "choose another --out"
    if target.is_dir():
        raise InputError(f"cannot write {target}: a directory of that name is in the way; move it, or {how}")
    for d in (dest, *dest.parents):
        if d.exists():
            if not d.is_dir():
                raise InputError(f"cannot write {target}: {d} is a file, not a directory; move it, or {how}")
            return


def do_import(svd: str, chip: str, out: Path | str | None, descriptions: bool, quiet: bool) -> None:
    from clawgen.chips import CHIP_NAME_RE
    from clawgen.chips.db import write_chip
    from clawgen.chips.svd import import_svd

    if not CHIP_NAME_RE.fullmatch(chip) or not chip[0].isalnum():  # (a new chip's name starts with a letter or digit)
        raise InputError(f'chip name "{peer_text(chip, 80)}" must be 1 to 64 letters, digits, "_", "-" or "." '
                         "(it names a file), starting with a letter or a digit")
    dest = Path(out) if out is not None else Path("chips")
    _check_dest(dest, dest / f"{chip}.json.gz", out is not None)  # before the import's work
    model, warnings = import_svd(svd, chip, keep_descriptions=descriptions)
    if not quiet:
        for w in warnings:
            click.echo(w.text(), err=True)
    try:
        path = write_chip(model, dest / f"{chip}.json.gz")
    except OSError as e:
        raise UsageError(f"cannot write {dest / (chip + '.json.gz')}: {e.strerror or e}") from None
    t = model.totals()  # from the declared elements: never walks the expanded arrays
    click.echo(f"imported {terminal_safe(model.device_name)} as chip {chip}: {len(model.peripherals)} peripherals, "
               f"{t.registers} registers (arrays expanded), {t.fields} fields, {t.enum_sets} enumerated "
               f"value sets, {len(warnings)} warning(s)")
    click.echo(f"wrote {path} ({_size_text(path.stat().st_size)})")


def _hex(v: int, bits: int = 32) -> str:
    return f"0x{v:0{max(1, (bits + 3) // 4)}X}"


def do_info(chip_name: str, peripheral: str | None, register: str | None) -> None:
    from clawgen.chips import default_search_dirs, load_chip
    from clawgen.diagnostics import did_you_mean

    def echo(line: str) -> None:  # (names and descriptions are the vendor file's: C1 controls are legal XML)
        click.echo(terminal_safe(line))

    try:
        chip = load_chip(chip_name, default_search_dirs())
    except UsageError as e:  # a name that names no chip: invalid input, as a wrong peripheral is
        raise InputError(str(e)) from None
    if peripheral is None:
        echo(f"chip {chip.name}: device {chip.device_name}" + (f" ({chip.vendor})" if chip.vendor else ""))
        echo(f"source: {chip.source.get('file')} sha256 {str(chip.source.get('sha256', ''))[:16]}...")
        echo(f"width {chip.width} bits, {len(chip.peripherals)} peripherals, "
                   f"{chip.register_count()} registers")
        for p in chip.peripherals:
            n = chip.peripheral_register_count(p)
            extra = f" (= {p.derived_from})" if p.derived_from else ""
            echo(f"  {p.name:<24} {_hex(p.base_address)}  {n:5} registers{extra}")
        return
    p = chip.peripheral(peripheral)
    if p is None:
        raise InputError(f'chip {chip.name} has no peripheral "{peripheral}"'
                         f"{did_you_mean(peripheral.upper(), [q.name for q in chip.peripherals])}")
    if register is None:
        echo(f"{p.name} at {_hex(p.base_address)}" + (f": {p.description}" if p.description else ""))
        for b in p.address_blocks:
            echo(f"  addressBlock {_hex(b.offset)} size {_hex(b.size)} {b.usage or ''}".rstrip())
        for i in p.interrupts:
            echo(f"  interrupt {i.name} = {i.value}")
        echo(f"  {'register':<32} {'address':<10}  {'access':<14} reset")
        for ri in chip.iter_peripheral_registers(p):
            name = ri.path.split(".", 1)[1]
            echo(f"  {name:<32} {_hex(ri.address)}  {ri.access:<14} {_hex(ri.reset_value, ri.size)}")
        return
    ri = chip.find_register(f"{p.name}.{register}")
    if ri is None:
        names = [r.path.split(".", 1)[1] for r in chip.iter_peripheral_registers(p)]
        raise InputError(f'peripheral {p.name} has no register "{register}"{did_you_mean(register.upper(), names)}')
    r = ri.register
    echo(f"{ri.path} at {_hex(ri.address)}: {r.size} bits, {r.access}, reset {_hex(r.reset_value, r.size)}"
               f" (mask {_hex(r.reset_mask, r.size)})")
    if r.description:
        echo(f"  {r.description}")
    for label, value in (("modifiedWriteValues", r.modified_write_values), ("readAction", r.read_action),
                         ("alternateRegister", r.alternate_register), ("alternateGroup", r.alternate_group)):
        if value:
            echo(f"  {label}: {value}")
    for f in sorted(ri.fields, key=lambda f: -f.lsb):
        bits = f"[{f.msb}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"
        extra = []
        if f.modified_write_values:
            extra.append(f.modified_write_values)
        if f.read_action:
            extra.append(f"read:{f.read_action}")
        if f.write_constraint and f.write_constraint.range:
            extra.append(f"range {f.write_constraint.range[0]}..{f.write_constraint.range[1]}")
        echo(f"  {bits:<8} {f.name:<28} {f.access or '':<14} {' '.join(extra)}".rstrip())
        for s in f.enums:
            vals = ", ".join(f"{v.name}" + ("=default" if v.is_default else f"={v.value}") for v in s.values)
            echo(f"           {s.usage}: {vals}")


def register(group: click.Group) -> None:
    @group.group("svd")
    def svd() -> None:
        """Import CMSIS-SVD register maps and inspect imported chips."""

    @svd.command("import")
    @click.argument("file")  # not click.Path(exists=...): the importer reports unreadable files itself (exit 2)
    @click.option("--chip", "chip", required=True, help="Name to import the chip as (file NAME.json.gz).")
    @click.option("--out", "out", type=PathArg(file_okay=False),
                  help="Directory to write the chip to (default: ./chips).")
    @click.option("--no-descriptions", is_flag=True, help="Drop the vendor's description texts.")
    @click.option("--quiet", "-q", is_flag=True, help="Do not print the warnings.")
    def import_cmd(file: str, chip: str, out: Path | None, no_descriptions: bool, quiet: bool) -> None:
        """Import FILE.svd as chip NAME into ./chips/NAME.json.gz (or --out DIR)."""
        _guarded(do_import, file, chip, out, not no_descriptions, quiet)

    @svd.command("info")
    @click.argument("chip")
    @click.argument("peripheral", required=False)
    @click.argument("register", required=False)
    def info_cmd(chip: str, peripheral: str | None, register: str | None) -> None:
        """Show an imported chip, one of its peripherals, or one register's fields."""
        _guarded(do_info, chip, peripheral, register)
