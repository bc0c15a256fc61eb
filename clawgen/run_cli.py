"""`clawgen run` (build, put on the board, show its output) and `clawgen logs` (attach to its console).

`run SPEC` is `clawgen build`, then `clawgen flash` over serial (the same flash plan and esptool
path) followed by `clawgen monitor` on that port; with ``--host`` the build goes over the network
(OTA) and the agent's Telnet console is shown instead. `logs SPEC` opens the device's console:
Telnet (``--host``, default the spec's ``network.hostname`` + ``.local``, port from
``transports.telnet``) or serial (``--port``, or the only board connected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clawgen.guard import PathArg, run_guarded
from clawgen.image.flash import DEFAULT_BAUD
from clawgen.records import record

if TYPE_CHECKING:
    import socket

    from clawgen.fleet import Device
    from clawgen.model import Plan
    from clawgen.plan import Planned

MONITOR_BAUD = 115200  # MicroPython's REPL on the ESP32 ports
RESTART_WAIT = 60.0  # seconds the Telnet console may take to come back after an OTA update
REOPEN_WAIT = 5.0  # seconds a board's own USB port may be gone after the reset that ends flashing
DOWN_WAIT = 15.0  # seconds the old bundle may keep its console open after confirming an update


@record
class ConsoleTarget:
    """Where the device's console is: a serial port, or host:port for Telnet."""

    port: str | None = None
    host: str | None = None
    telnet_port: int | None = None
    password: bytes | None = field(default=None, repr=False)  # the answer to the device's Telnet password prompt


def _subst(f):  # type: ignore[no-untyped-def]
    return click.option("-s", "--substitution", "substitutions", type=(str, str), multiple=True,
                        metavar="NAME VALUE", help="Override a ${NAME} substitution.")(f)


def _exclusive(port: str | None, host: str | None) -> None:
    from clawgen.diagnostics import UsageError

    if port is not None and host is not None:
        raise UsageError("--port and --host exclude each other: serial (--port) or the network (--host)")


def _planned(spec: Path, board: str | None, substitutions: dict[str, str], devices: Path | None = None) -> Planned:
    """The spec, planned (a fleet's secret values come from its devices file, so the spec's own
    secrets.yaml is not needed then)."""
    from clawgen.build import BuildOptions, load_and_plan
    from clawgen.commands import check_board_option, require_spec_file

    check_board_option(board)
    require_spec_file(spec)
    return load_and_plan(spec, BuildOptions(board=board, substitutions=substitutions, devices=devices))


def telnet_target(spec: Path, plan: Plan, host: str | None, values: Mapping[str, bytes]) -> ConsoleTarget:
    """host:port of the agent's Telnet console, and its password from ``values`` (the NVS values of
    the build or of the fleet device) when the spec sets one; UsageError for a spec without Telnet."""
    from clawgen.diagnostics import UsageError
    from clawgen.hostport import parse_host

    default_port = plan.transports.telnet_port
    if default_port is None:
        raise UsageError(f"{spec} has no Telnet console (transports.telnet is not enabled), so the device has "
                         "no console on the network: add `telnet: {port: 23}` under transports, build and flash "
                         "again, or read the serial console with --port")
    name, port = parse_host(host, default_port) if host else (f"{plan.network.hostname}.local", default_port)
    assert port is not None
    slot = plan.transports.telnet_password_slot
    return ConsoleTarget(host=name, telnet_port=port, password=values.get(slot) if slot else None)


def fleet_device(devices: Path, device: str, planned: Planned) -> Device:
    """A fleet device (its hostname, its secrets), from the devices file (checked as `clawgen build
    --devices` does)."""
    from clawgen.diagnostics import UsageError, did_you_mean
    from clawgen.fleet import load_fleet

    fleet = load_fleet(devices, planned.plan, planned.nvs_values)
    names = [d.name for d in fleet.devices]
    for d in fleet.devices:
        if d.name == device:
            return d
    raise UsageError(f"no device '{device}' in {devices}{did_you_mean(device, names)}; its devices: {', '.join(names)}")


def show_console(target: ConsoleTarget, baud: int = MONITOR_BAUD, wait: float = 0.0) -> None:
    """The device's output: the serial monitor, or the Telnet console."""
    from clawgen.image import monitor

    def note(text: str) -> None:
        click.echo(text, err=True)

    if target.host is not None:
        assert target.telnet_port is not None
        monitor.telnet_console(target.host, target.telnet_port, note=note, password=target.password)
    else:
        from clawgen.image.ports import choose_port

        monitor.monitor(choose_port(target.port), baud, note=note, wait=wait)


def _hold_console(host: str, port: int, password: bytes | None) -> socket.socket | None:
    """A connection to the running bundle's Telnet console, made before an update is sent (logged
    in when the device asks for a password: a connection left at the prompt is closed after a
    while), or None when it does not answer. See ``_wait_until_closed``."""
    import socket

    from clawgen.diagnostics import UsageError
    from clawgen.image.monitor import telnet_login

    try:
        sock = socket.create_connection((host, port), timeout=2.0)
    except OSError:
        return None
    try:
        telnet_login(sock, b"", password, f"{host}:{port}")
    except (OSError, UsageError):
        sock.close()
        return None
    return sock


def _wait_until_closed(sock: socket.socket, limit: float = DOWN_WAIT) -> bool:
    """After an update the old bundle restarts a moment after confirming it: wait until the console
    connection held since before the update (``_hold_console``) ends, so that the console shown is the
    new bundle's, not the old one's last breath. One connection, so the device logs one Telnet client
    (looking again and again would log one per look). What the old bundle prints meanwhile is
    dropped. False when it stayed open for ``limit`` seconds."""
    import time

    end = time.monotonic() + limit
    try:
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(4096):
                return True
        return False
    except TimeoutError:
        return False
    except OSError:  # reset by the restarting device
        return True
    finally:
        sock.close()


def ota_key(out_dir: Path, nvs_values: dict[str, bytes], slot: str, device: str | None) -> bytes:
    """The HMAC key the device holds: a fleet device's from its own NVS image, else the build's."""
    from clawgen.diagnostics import UsageError

    if device is not None:
        from clawgen.fleet import DEVICES_DIR
        from clawgen.image import nvs

        image = out_dir / DEVICES_DIR / device / "nvs.bin"
        if not image.is_file():
            raise UsageError(f"no device '{device}' in this fleet build ({image} is missing)")
        try:
            value = nvs.decode_nvs_image(image.read_bytes()).get(("clawgen", slot))
        except ValueError:
            value = None
        if not value:
            raise UsageError(f"cannot read device '{device}''s OTA key from {image} (an encrypted NVS image?)")
        return value
    if nvs_values.get(slot):
        return nvs_values[slot]
    from clawgen import ota

    return ota.key_from_spec(out_dir)  # an up-to-date build: its spec's secrets.yaml


def require_ota(spec: Path, plan: Plan) -> None:
    """UsageError for a spec whose device takes no update over the network (no ota: section)."""
    from clawgen.diagnostics import UsageError

    if plan.ota is None:
        raise UsageError(f"{spec} has no ota: section, so the device takes no update over the network: add "
                         "`ota: {key: !secret ota_key}`, put it on the board once over USB "
                         f"(`clawgen run {spec} --port PORT`), then use --host")


def push_over_the_air(spec: Path, plan: Plan, out_dir: Path, nvs_values: dict[str, bytes], host: str,
                      device: str | None) -> None:
    """Send the build to the device at ``host`` (clawgen.ota.push)."""
    import sys

    from clawgen import ota
    from clawgen.diagnostics import UsageError
    from clawgen.hostport import parse_host

    require_ota(spec, plan)
    name, port = parse_host(host, plan.ota.port)
    assert port is not None
    key = ota_key(out_dir, nvs_values, plan.ota.key_slot, device)
    tty = sys.stderr.isatty()

    def progress(sent: int, total: int) -> None:
        if tty:
            click.echo(f"\r  sent {sent} of {total} bytes ({100 * sent // max(total, 1)}%)", err=True, nl=False)

    click.echo(f"Updating {name}:{port} over the network (OTA){f' as device {device}' if device else ''}")
    try:
        res = ota.push(out_dir, name, port, key, progress)
    except ota.OtaError as e:
        if tty:
            click.echo("", err=True)
        raise UsageError(str(e)) from None
    if tty:
        click.echo("", err=True)
    click.echo(f"installed build {res.build_id[:12]} on {name}:{port}: {res.files} files, {res.bytes_sent} bytes in "
               f"{res.seconds:.1f} s; the device restarts into it")


@click.command("run")
@click.argument("spec", type=PathArg())
@click.option("--board", help="Board to build for (default: the spec's board).")
@click.option("--port", "-p", help="Serial port to flash and monitor (default: the only board connected).")
@click.option("--host", metavar="HOST[:PORT]",
              help="Update the device over the network (OTA) instead, then show its Telnet console.")
@click.option("--device", metavar="NAME", help="Fleet builds (--devices): the device to flash.")
@click.option("--devices", type=PathArg(), help="Devices file: build a fleet (docs/fleets.md).")
@click.option("--base-firmware", type=PathArg(),
              help="Stock MicroPython .bin to merge (default: the cached one, see `clawgen firmware fetch`).")
@click.option("--baud", "-b", type=click.IntRange(9600, 4_000_000), default=DEFAULT_BAUD, show_default=True,
              help="Flashing baud rate (the monitor uses 115200).")
@click.option("--app-only", is_flag=True,
              help="Write only the filesystem and NVS images (a board already running MicroPython v1.29.0; no "
                   "base firmware needed).")
@click.option("--no-monitor", is_flag=True, help="Stop after flashing; do not show the device's output.")
@_subst
def run_command(spec: Path, board: str | None, port: str | None, host: str | None, device: str | None,
                devices: Path | None, base_firmware: Path | None, baud: int, app_only: bool, no_monitor: bool,
                substitutions: tuple[tuple[str, str], ...]) -> None:
    """Build SPEC, put it on the board (serial, or OTA with --host) and show the device's output."""

    def body() -> None:
        from clawgen.build import BuildOptions, build_spec
        from clawgen.commands import check_board_option, require_spec_file
        from clawgen.diagnostics import UsageError, format_diagnostics

        _exclusive(port, host)
        if app_only and host is not None:
            raise UsageError("--app-only is for flashing over serial; --host updates the app bundle over the "
                             "network anyway")
        check_board_option(board)
        require_spec_file(spec)
        if device is not None and devices is None:
            raise UsageError("--device NAME picks a device of a fleet: give the devices file with --devices")
        if devices is not None and device is None:
            raise UsageError("--devices builds a fleet: say which device to update with --device NAME")
        serial_port = None
        ota_plan = None
        values: Mapping[str, bytes] = {}  # the device's secrets (its Telnet password)
        if host is not None:  # a spec without ota: cannot be updated over the network: say so before building
            planned = _planned(spec, board, dict(substitutions), devices)
            ota_plan = planned.plan
            require_ota(spec, ota_plan)
            values = planned.nvs_values if device is None or devices is None else \
                fleet_device(devices, device, planned).values
        if host is None:  # no board connected: say so before building
            from clawgen.image.ports import choose_port

            serial_port = choose_port(port)
        result = build_spec(spec, BuildOptions(board=board, substitutions=dict(substitutions),
                                               base_firmware=base_firmware, devices=devices))
        if result.warnings:
            click.echo(format_diagnostics(result.warnings, "text"), err=True)
        if result.up_to_date:
            click.echo(f"{result.out_dir}: up to date")
        else:
            click.echo(result.report)
            click.echo(f"built {result.info['name']} for {result.info['board']} in {result.out_dir}")
        if host is not None:
            assert ota_plan is not None
            plan = ota_plan
            held = None
            if not no_monitor and plan.transports.telnet_port is not None:
                from clawgen.hostport import parse_host

                target = telnet_target(spec, plan, parse_host(host, plan.ota.port if plan.ota else None)[0], values)
                assert target.host is not None and target.telnet_port is not None
                held = _hold_console(target.host, target.telnet_port, target.password)
            try:
                push_over_the_air(spec, plan, result.out_dir, result.nvs_values, host, device)
            except BaseException:
                if held is not None:
                    held.close()
                raise
            if no_monitor:
                return
            if plan.transports.telnet_port is None:
                click.echo(f"note: {spec} has no Telnet console (transports.telnet), so the device's output is "
                           "only on its serial port: `clawgen logs SPEC --port PORT`", err=True)
                return
            from clawgen.image.monitor import telnet_console

            if held is not None:
                _wait_until_closed(held)
            telnet_console(target.host, target.telnet_port, note=lambda t: click.echo(t, err=True),
                           wait=RESTART_WAIT, password=target.password)
            return
        assert serial_port is not None
        from clawgen.image.flash import FlashOptions, flash_build, load_flash_plan

        plan = load_flash_plan(result.out_dir, app_only=app_only, device=device)
        click.echo(f"Flashing {plan.build_dir}{f' for device {device}' if device else ''} "
                   f"({'filesystem and NVS' if app_only else 'full image'}, {plan.chip}, {plan.flash_size}) "
                   f"through {serial_port}")
        flash_build(plan, FlashOptions(port=serial_port, baud=baud), echo=click.echo)
        if not no_monitor:
            show_console(ConsoleTarget(port=serial_port), wait=REOPEN_WAIT)

    run_guarded(body)


@click.command("logs")
@click.argument("spec", type=PathArg())
@click.option("--host", metavar="HOST[:PORT]",
              help="The device's address (default: the spec's network.hostname + .local; port: transports.telnet).")
@click.option("--port", "-p", help="Read the serial console on this port instead.")
@click.option("--serial", "use_serial", is_flag=True, help="The serial console of the only board connected.")
@click.option("--devices", type=PathArg(), help="A fleet's devices file (with --device).")
@click.option("--device", metavar="NAME", help="The fleet device: its hostname is the default host.")
@click.option("--board", help="The board the spec was built for (default: the spec's board).")
@click.option("--baud", "-b", type=click.IntRange(300, 4_000_000), default=MONITOR_BAUD, show_default=True)
@_subst
def logs_command(spec: Path, host: str | None, port: str | None, use_serial: bool, devices: Path | None,
                 device: str | None, board: str | None, baud: int,
                 substitutions: tuple[tuple[str, str], ...]) -> None:
    """Attach to the device's console: Telnet when the spec has it (or with --host), else serial."""

    def body() -> None:
        from clawgen.diagnostics import UsageError

        _exclusive(port if port is not None else ("--serial" if use_serial else None), host)
        if (devices is None) != (device is None):
            raise UsageError("a fleet device is named with both --devices FILE and --device NAME")
        planned = _planned(spec, board, dict(substitutions), devices)
        plan = planned.plan
        if port is not None or use_serial or (host is None and plan.transports.telnet_port is None):
            show_console(ConsoleTarget(port=port), baud)
            return
        where = host
        values: Mapping[str, bytes] = planned.nvs_values
        if devices is not None and device is not None:
            d = fleet_device(devices, device, planned)
            values = d.values
            if where is None:
                where = d.hostname + ".local"
        show_console(telnet_target(spec, plan, where, values))

    run_guarded(body)


def register(group: click.Group) -> None:
    group.add_command(run_command)
    group.add_command(logs_command)
