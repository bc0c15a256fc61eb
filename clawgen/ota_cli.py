"""`clawgen ota BUILD_DIR --host HOST[:PORT]`: push a build's app bundle to a running device over the
network (clawgen.ota, docs/ota.md).

The key comes from ``--key-file`` or, by default, from the spec's secrets.yaml (the build's ``ota.key``
secret); it never appears in argv or in any output. Exit codes: 0 installed; 2 invalid input (not a
build, no key) or an update the device refused (wrong key, another board, altered, too large, busy);
1 the device could not be reached or does not speak the protocol.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from clawgen.diagnostics import EXIT_INTERNAL, EXIT_INVALID
from clawgen.guard import PathArg, run_guarded


@click.command("ota")
@click.argument("build_dir", type=PathArg())
@click.option("--host", "host", required=True, metavar="HOST[:PORT]",
              help="The device's address; the port defaults to the build's ota.port.")
@click.option("--key-file", type=PathArg(), default=None,
              help="A file holding the OTA key (default: the spec's secrets.yaml, secret of ota.key).")
def ota_command(build_dir: Path, host: str, key_file: Path | None) -> None:
    """Update a running device's app bundle over the network with BUILD_DIR."""

    def body() -> None:
        from clawgen import ota
        from clawgen.hostport import parse_host

        ota.build_info(build_dir)  # not a build directory: say so first (exit 2)
        name, port = parse_host(host, ota.default_port(build_dir))
        assert port is not None  # (a default was given)
        key = ota.key_from_file(key_file) if key_file is not None else ota.key_from_spec(build_dir)
        bar: Any = None  # click's progress bar, opened at the first progress call

        def progress(sent: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = click.progressbar(length=total, label=f"uploading to {name}:{port}", file=sys.stderr,
                                        show_pos=True)
                bar.__enter__()
            bar.update(sent - bar.pos)

        try:
            res = ota.push(build_dir, name, port, key, progress)
        except ota.OtaError as e:
            if bar is not None:
                bar.__exit__(None, None, None)
            click.echo(f"clawgen: error: {e}", err=True)
            sys.exit(EXIT_INVALID if e.refused else EXIT_INTERNAL)
        if bar is not None:
            bar.__exit__(None, None, None)
        rate = res.bytes_sent / res.seconds / 1024 if res.seconds > 0 else 0.0
        click.echo(f"installed build {res.build_id[:12]} on {name}:{port}: {res.files} files, {res.bytes_sent} "
                   f"bytes in {res.seconds:.1f} s ({rate:.0f} KiB/s); the device restarts into it and keeps it "
                   "once it reaches ready")

    run_guarded(body)


def register(group: click.Group) -> None:
    group.add_command(ota_command)
