"""`clawgen sim`: build a spec and run it on the MicroPython VM, talking on this terminal."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import click

from clawgen.diagnostics import UsageError


def _register_file(spec: Path, opts: Any) -> dict[int, int]:
    """The chip's reset values for the registers the policy lets the agent see (empty if none)."""
    from clawgen.build import load_and_plan

    try:
        _, plan, _, _ = load_and_plan(spec, opts)
    except Exception:  # the build already succeeded; register seeding is a convenience
        return {}
    table = getattr(plan, "registers", None)
    entries = getattr(table, "entries", None) or []
    return {int(e.address): int(e.reset) & 0xFFFFFFFF for e in entries}


def _telnet_port(build_dir: Path) -> int | None:
    """The device's Telnet port, from the rendered config (TELNET_PORT = ...)."""
    try:
        text = (build_dir / "app" / "claw_config.py").read_text()
    except OSError:
        return None
    m = re.search(r"^TELNET_PORT\s*=\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def default_sim_out(spec: Path, board: str | None) -> Path:
    from clawgen.sim.install import cache_root

    key = hashlib.sha256(f"{spec.resolve()}\0{board or ''}".encode()).hexdigest()[:16]
    return cache_root() / "sim-builds" / f"{spec.stem}-{key}"


def _announce_listeners(sim: Any) -> None:
    """Tell the user where the device's servers (Telnet) can be reached on this machine."""
    while True:
        try:
            ev = sim.wait_event("listening", timeout=3600)
        except TimeoutError:
            continue
        click.echo(f"clawsim: device port {ev['device_port']} is reachable at {ev['host']}:{ev['port']}", err=True)


def simulate(spec: Path, board: str | None, model: str | None, api_key_env: str | None,
             substitutions: dict[str, str], out_dir: Path | None, heapsize: int,
             telnet_port: int | None = None) -> int:
    from clawgen.build import BuildOptions, build_spec
    from clawgen.sim import vm
    from clawgen.sim.install import ensure_installed

    ensure_installed()
    mock = None
    override = None
    if model == "mock":
        from clawgen.sim.mockmodel import start_mock_model

        mock = start_mock_model()
        override = mock.base_url
    elif model:
        if not model.startswith(("http://", "https://")):
            raise UsageError(f"--model must be 'mock' or an http(s):// base URL, not {model!r}")
        override = model
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise UsageError(f"--api-key-env: environment variable {api_key_env} is not set or empty")
    try:
        opts = BuildOptions(board=board, out_dir=out_dir or default_sim_out(spec, board),
                            substitutions=substitutions, model_override=override, images=False,
                            placeholder_secrets=True)
        result = build_spec(spec, opts)
        for w in result.warnings:
            # The spec's endpoints were replaced by --model: warnings about them (localhost is the
            # board itself, a key over plain http) concern the simulator's URL, not the spec.
            if override and w.path.startswith(("model.base_url", "model.fallbacks")):
                continue
            click.echo(w.text(), err=True)
        from clawgen.sim.install import mpvm_version

        vm_mp = mpvm_version().split("-")[0]
        if result.info.get("micropython") and result.info["micropython"] != vm_mp:
            click.echo(f"clawsim: warning: the board runs MicroPython {result.info['micropython']}, the "
                       f"simulator's VM is {vm_mp}; bytecode or library differences may show", err=True)
        secrets = dict(result.nvs_values)
        if api_key is not None:
            info = json.loads((result.out_dir / "build.json").read_text())
            slot = next((s["nvs_key"] for s in info.get("secrets", []) if s.get("spec_path") == "model.api_key"),
                        None)
            if slot is None:
                raise UsageError("--api-key-env: the spec's model has no api_key to fill "
                                 "(add `api_key: !secret NAME` under model:)")
            secrets[slot] = api_key.encode()
        port_map = {}
        device_port = _telnet_port(result.out_dir)
        if telnet_port is not None:
            if not device_port:
                raise UsageError("--telnet-port: this agent has no Telnet transport")
            port_map[int(device_port)] = telnet_port
        elif device_port and not _port_free(device_port):
            # Another simulator (or a telnetd) holds the port: serve on a free one, said below.
            click.echo(f"clawsim: port {device_port} is in use on this machine; the device's Telnet "
                       "server gets a free port instead (choose one with --telnet-port)", err=True)
            port_map[int(device_port)] = 0
        model_note = (f" with the mock model at {override}" if mock
                      else f" with the model at {override}" if override else "")
        click.echo(f"clawsim: running {result.out_dir} on the MicroPython VM{model_note}; "
                   "/help for commands, /quit or Ctrl-D to end", err=True)
        click.echo("clawsim: heap figures the agent prints (ready line, /status) are the VM's, which grows its "
                   "heap on demand, not a board's", err=True)
        sim = vm.Simulation(result.out_dir, stdin=vm.INHERIT, capture=False, secrets=secrets,
                            heapsize=heapsize, registers=_register_file(spec, opts), port_map=port_map)
        threading.Thread(target=_announce_listeners, args=(sim,), daemon=True).start()
        try:
            res = sim.wait(timeout=None)
        finally:
            sim.kill()
    finally:
        if mock is not None:
            mock.close()
    if res.reason == "reset":
        click.echo("clawsim: the device called machine.reset(); the simulation ends here", err=True)
        return 0
    if res.reason == "vm_error":
        click.echo("clawsim: the MicroPython VM failed (see above)", err=True)
    return res.returncode


def register(group: click.Group) -> None:
    @group.command("sim")
    @click.argument("spec", type=click.Path(path_type=Path))
    @click.option("--board", help="Board to build for (default: the spec's board).")
    @click.option("--model", metavar="mock|URL",
                  help="'mock' for a local deterministic model, or a base URL replacing the spec's model "
                       "(fallbacks dropped). Default: the spec's own model.")
    @click.option("--api-key-env", metavar="VAR", help="Take the model's API key from this environment variable.")
    @click.option("-s", "--subst", "substitutions", type=(str, str), multiple=True, metavar="NAME VALUE",
                  help="Set a ${NAME} substitution (repeatable).")
    @click.option("--out", "out_dir", type=click.Path(path_type=Path),
                  help="Build directory (default: a cache directory per spec).")
    @click.option("--heapsize", type=int, default=256 * 1024, show_default=True,
                  help="MicroPython heap for the VM (the VM adds a fixed ~200 KB base).")
    @click.option("--telnet-port", type=click.IntRange(0, 65535),
                  help="Serve the device's Telnet port on this local port instead (0 = any free port).")
    def sim(spec: Path, board: str | None, model: str | None, api_key_env: str | None,
            substitutions: tuple[tuple[str, str], ...], out_dir: Path | None, heapsize: int,
            telnet_port: int | None) -> None:
        """Build SPEC and run it on the MicroPython WebAssembly VM with this terminal as its UART.

        Type a line to talk to the agent; /quit or end of input (Ctrl-D) ends the session. The
        device's Telnet server listens on 127.0.0.1 (its own port, or --telnet-port) while the
        session runs.
        """
        from clawgen.cli import run_guarded

        rc = run_guarded(simulate, spec, board, model, api_key_env, dict(substitutions), out_dir, heapsize,
                         telnet_port)
        sys.exit(rc or 0)
