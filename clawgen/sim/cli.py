"""`clawgen sim`: build a spec and run it on the MicroPython VM, talking on this terminal."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import click

from clawgen.diagnostics import InputError, UsageError, peer_text
from clawgen.guard import PathArg

# --model and --telegram-api: what a spec's model.base_url takes (the schema's pattern: a test holds
# them equal; the schema itself is not loaded here, on the way to the first prompt).
_BASE_URL = re.compile(r"^https?://[^\s/:]+(:[0-9]{1,5})?(/[^\s]*)?$")


def _register_file(plan: Any) -> dict[int, int]:
    """The chip's reset values for the registers the policy lets the agent see (empty if none)."""
    table = getattr(plan, "registers", None)
    entries = getattr(table, "entries", None) or []
    return {int(e.address): int(e.reset) & 0xFFFFFFFF for e in entries}


def _plan_cache(out_dir: Path) -> Path | None:
    """Where what the simulator takes from the plan of this exact build (register file, warnings) is
    cached, keyed by the build's stamp; None without a stamp. Never secrets."""
    from clawgen.cachedir import cache_root
    from clawgen.publish import STAMP_FILE

    try:
        stamp = (out_dir / STAMP_FILE).read_bytes()
    except OSError:
        return None
    import hashlib

    return cache_root() / "sim-plans" / f"{hashlib.sha256(stamp).hexdigest()[:32]}.json"


def _cache_plan(out_dir: Path, registers: dict[int, int], warnings: list[tuple[str, str]]) -> None:
    p = _plan_cache(out_dir)
    if p is None:
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"registers": {str(a): v for a, v in registers.items()},
                                   "warnings": [list(w) for w in warnings]}))
        os.replace(tmp, p)
    except OSError:
        pass  # only an optimisation


def _at(data: Any, spec_path: str) -> Any:
    """The value at a spec path such as "model.fallbacks[0].api_key" in loaded spec data, or None."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", spec_path):
        if part.startswith("["):
            i = int(part[1:-1])
            data = data[i] if isinstance(data, list) and i < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
        if data is None:
            return None
    return data


def _fast_inputs(spec: Path, opts: Any, result: Any) -> tuple[dict[str, bytes], list[tuple[str, str]],
                                                             dict[int, int]] | None:
    """For an up-to-date build: (NVS values, warnings as (spec path, text), register file) without
    planning again: the NVS values read at the secret slots build.json lists, the rest from the cache
    written when this build was planned (its inputs are unchanged, so are they); None if not cached."""
    from clawgen.loader import Secret, load_spec

    cache = _plan_cache(result.out_dir)
    try:
        cached = json.loads(cache.read_text()) if cache else None
        registers = {int(a): int(v) for a, v in cached["registers"].items()}
        warnings = [(str(path), str(text)) for path, text in cached["warnings"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    doc = load_spec(spec, opts.substitutions, placeholder_secrets=True)
    values: dict[str, bytes] = {}
    for slot in result.info.get("secrets", []):
        v = _at(doc.data, slot["spec_path"])
        if v is not None:  # as the plan stores a secret (clawgen.plan._secret_slots)
            values[slot["nvs_key"]] = (v.value if isinstance(v, Secret) else str(v)).encode()
    return values, warnings, registers


def _telnet_port(build_dir: Path) -> int | None:
    """The device's Telnet port, from the rendered config (TELNET_PORT = ...)."""
    try:
        text = (build_dir / "app" / "claw_config.py").read_text()
    except OSError:
        return None
    m = re.search(r"^TELNET_PORT\s*=\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def _has_telegram(build_dir: Path) -> bool:
    """Whether the build has the Telegram channel (TG_HOST in the rendered config)."""
    try:
        text = (build_dir / "app" / "claw_config.py").read_text()
    except OSError:
        return False
    return re.search(r"^TG_HOST\s*=", text, re.M) is not None


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _announce_listeners(sim: Any, after_reset: str = "") -> None:
    """Tell the user where the device's servers (Telnet, OTA) can be reached on this machine, and
    when the device restarts (an OTA update ends with machine.reset()); ``after_reset``: a line more
    for that moment."""
    while True:
        ev = sim.events.get()
        if ev.get("event") == "listening":
            click.echo(f"clawsim: device port {ev['device_port']} is reachable at {ev['host']}:{ev['port']}",
                       err=True)
        elif ev.get("event") == "reset":
            click.echo("clawsim: the device called machine.reset(); it boots again from its filesystem "
                       "(main.py)", err=True)
            if after_reset:
                click.echo(after_reset, err=True)


def _ota_boot(out_dir: Path, info: dict[str, Any], port_map: dict[int, int]) -> dict[str, Any]:
    """For a build with `ota:`: boot from main.py as a board does (it holds the OTA boot record) and
    restart into what an update installed (Simulation arguments); the OTA port moves to a free one
    when this machine's is taken. Empty for a build without OTA."""
    from clawgen.sim import vm

    ota = info.get("ota")
    main_rel = (info.get("device_files") or {}).get("/main.py")
    if not ota or not main_rel:
        return {}
    port = int(ota["port"])
    if port not in port_map and not _port_free(port):
        click.echo(f"clawsim: port {port} is in use on this machine; the device's OTA server gets a free "
                   "port instead (see the line 'device port ... is reachable at')", err=True)
        port_map[port] = 0
    return {"extra_files": {"/main.py": (out_dir / main_rel).read_bytes()}, "entry": vm.BOOT_ENTRY,
            "reboot_entry": vm.BOOT_ENTRY}


# The bot token a simulated device sends to a --telegram-api server unless --send-key: the real
# one from secrets.yaml is for Telegram, not for whatever local server --telegram-api names.
SIM_BOT_TOKEN = "1:clawsim-placeholder-token"


def _key_slot(info: dict[str, Any], spec_path: str = "model.api_key") -> str | None:
    """The NVS key of the secret at spec_path in a build (None when the build has none)."""
    return next((s["nvs_key"] for s in info.get("secrets", []) if s.get("spec_path") == spec_path), None)


def simulate(spec: Path, board: str | None, model: str | None, api_key_env: str | None,
             substitutions: dict[str, str], out_dir: Path | None, heapsize: str | None,
             telnet_port: int | None = None, send_key: bool = False, telegram_api: str | None = None) -> int:
    from clawgen import signals
    from clawgen.sim import early, process
    from clawgen.sim.heap import parse_heapsize

    process.timing("clawgen sim starts")

    heap_bytes = None if heapsize is None else parse_heapsize(heapsize)
    if model and model != "mock" and not _BASE_URL.fullmatch(model):
        raise InputError(f"--model must be 'mock' or an http(s):// base URL such as http://127.0.0.1:8080/v1 (a "
                         f"host name or IPv4 address, as a spec's model.base_url), not {peer_text(model, 120)!r}")
    if telegram_api is not None and not _BASE_URL.fullmatch(telegram_api):
        raise InputError(f"--telegram-api must be an http(s):// base URL such as http://127.0.0.1:8081, "
                         f"not {peer_text(telegram_api, 120)!r}")
    if send_key and not model and not telegram_api:
        raise InputError("--send-key only applies with --model or --telegram-api: without them the key goes "
                         "to the spec's own model, as on the board")
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"--api-key-env: environment variable {api_key_env} is not set or empty")
    from clawgen.commands import require_spec_file

    require_spec_file(spec)  # (the same words as build and validate: FILE:1:1, exit 2)
    out = out_dir or process.default_sim_out(spec, board)
    # Start node now: its own start, loading the VM and the bridge worker overlap with the build. The
    # VM is loaded with the last build's board heap (reloaded if this build's differs).
    # (`clawgen` may have started it before the command line was parsed: clawgen/sim/early.py.)
    start_heap = process.start_heapsize(heap_bytes, out)
    # SIGTERM/SIGHUP end the command through its cleanup, which stops node (set by the `clawgen` command too).
    signals.exit_on_termination_signals()
    pre = early.take(start_heap) or process.Prestarted(stdin=process.INHERIT, capture=False, heapsize=start_heap)
    mock = None
    try:
        override = None
        connect_map = {}
        if model == "mock":
            from clawgen.sim.mockmodel import DEVICE_ADDR, DEVICE_URL, start_mock_model

            mock = start_mock_model()
            override = DEVICE_URL
            connect_map[DEVICE_ADDR] = (mock.host, mock.port)
        elif model:
            override = model
        res = _run(spec, board, override, mock, api_key, send_key, substitutions, out, heap_bytes, telnet_port,
                   pre, connect_map, telegram_api)
    finally:
        pre.kill()  # unless the run took it over
        if mock is not None:
            mock.close()
    if res.reason == "reset":
        click.echo("clawsim: the device called machine.reset(); the simulation ends here", err=True)
        return 0
    if res.reason == "vm_error":
        click.echo("clawsim: the MicroPython VM failed (see above)", err=True)
    return res.returncode


def _run(spec: Path, board: str | None, override: str | None, mock: Any, api_key: str | None, send_key: bool,
         substitutions: dict[str, str], out: Path, heap_bytes: int | None, telnet_port: int | None,
         pre: Any, connect_map: dict[tuple[str, int], tuple[str, int]], telegram_api: str | None = None) -> Any:
    from clawgen.build import BuildOptions, build_spec, load_and_plan
    from clawgen.sim import process, vm
    from clawgen.sim.install import mpvm_version

    opts = BuildOptions(board=board, out_dir=out, substitutions=substitutions, model_override=override,
                        images=False, placeholder_secrets=True, telegram_api=telegram_api)
    result = build_spec(spec, opts)
    if telegram_api and not _has_telegram(result.out_dir):
        raise UsageError("--telegram-api: this agent has no Telegram channel (transports.telegram in the spec)")
    # Secrets are never stored with the build: they come from the spec's secrets file each run. An
    # up-to-date build (the build's fast path plans nothing) gets them from loading the spec alone,
    # and its register file from the cache written when it was planned; otherwise from the plan.
    fast = _fast_inputs(spec, opts, result) if result.up_to_date else None
    if fast is None:
        planned = load_and_plan(spec, opts)
        registers = _register_file(planned.plan)
        warnings = [(w.path, w.text()) for w in (planned.warnings if result.up_to_date else result.warnings)]
        _cache_plan(result.out_dir, registers, warnings)
        nvs_values = planned.nvs_values
    else:
        nvs_values, warnings, registers = fast
    process.timing("build checked, secrets read")
    for path, text in warnings:
        # The spec's endpoints were replaced by --model: warnings about them (localhost is the
        # board, a key over plain http) concern the simulator's URL, not the spec.
        if override and path.startswith(("model.base_url", "model.fallbacks")):
            continue
        if telegram_api and path.startswith("transports.telegram.api"):
            continue  # about --telegram-api, not the spec's URL
        click.echo(text, err=True)
    vm_mp = mpvm_version().split("-")[0]
    if result.info.get("micropython") and result.info["micropython"] != vm_mp:
        click.echo(f"clawsim: warning: the board runs MicroPython {result.info['micropython']}, the "
                   f"simulator's VM is {vm_mp}; bytecode or library differences may show", err=True)
    secrets = dict(nvs_values)
    slot = _key_slot(result.info)
    shown_url = mock.base_url if mock is not None else override
    if api_key is not None:
        if slot is None:
            raise UsageError("--api-key-env: the spec's model has no api_key to fill "
                             "(add `api_key: !secret NAME` under model:)")
        secrets[slot] = api_key.encode()
    elif override and slot is not None and secrets.get(slot) and not send_key:
        # The key in secrets.yaml is for the spec's model, not for whatever --model names.
        secrets[slot] = b""
        click.echo(f"clawsim: the API key from the secrets file is not sent to {shown_url} "
                   "(--send-key sends it, --api-key-env VAR sends $VAR)", err=True)
    if override and slot is not None and secrets.get(slot) and override.startswith("http://"):
        click.echo(f"clawsim: warning: the API key goes to {shown_url} over plain http, unencrypted", err=True)
    tg_slot = _key_slot(result.info, "transports.telegram.token") if telegram_api else None
    if tg_slot is not None and not send_key:
        secrets[tg_slot] = SIM_BOT_TOKEN.encode()
        click.echo(f"clawsim: the bot token from the secrets file is not sent to {telegram_api}; the device "
                   f"uses the placeholder token {SIM_BOT_TOKEN} (--send-key sends the real one)", err=True)
    elif tg_slot is not None and telegram_api.startswith("http://"):
        click.echo(f"clawsim: warning: the bot token goes to {telegram_api} over plain http, unencrypted", err=True)
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
    boot = _ota_boot(result.out_dir, result.info, port_map)
    mcp_port = int((result.info.get("mcp") or {}).get("port", 0))
    if mcp_port and mcp_port not in port_map and not _port_free(mcp_port):
        click.echo(f"clawsim: port {mcp_port} is in use on this machine; the device's MCP server gets a free "
                   "port instead (see the line 'device port ... is reachable at')", err=True)
        port_map[mcp_port] = 0
    model_note = (f" with the mock model at {shown_url}" if mock is not None
                  else f" with the model at {override}" if override else "")
    if telegram_api:
        model_note += f" and the Telegram Bot API at {telegram_api}"
    click.echo(f"clawsim: running {result.out_dir} on the MicroPython VM{model_note}; "
               "/help for commands, /quit or Ctrl-D to end", err=True)
    sim = vm.Simulation(result.out_dir, stdin=vm.INHERIT, capture=False, secrets=secrets, heapsize=heap_bytes,
                        registers=registers, port_map=port_map, connect_map=connect_map,
                        heap_stats=False, prestarted=pre, **boot)
    board_note = "" if heap_bytes else " (the board's)"
    click.echo(f"clawsim: the VM starts with a {sim.heapsize}-byte GC heap{board_note} and grows it on "
               "demand, so heap figures the agent prints (ready line, /status) are not a board's", err=True)
    after_reset = ""
    if boot and (override or telegram_api):
        # An update from `clawgen ota`/`run --host` is a bundle of `clawgen build`: it knows nothing of
        # what this command replaced (docs/sim.md), and the user should not learn that from an error.
        replaced = " and ".join(x for x in (f"--model ({shown_url})" if override else "",
                                            f"--telegram-api ({telegram_api})" if telegram_api else "") if x)
        after_reset = ("clawsim: if an OTA update was installed, the device now runs that bundle: it talks to "
                       f"the spec's own endpoints, not to {replaced}")
    threading.Thread(target=_announce_listeners, args=(sim, after_reset), daemon=True).start()
    try:
        return sim.wait(timeout=None)
    finally:
        sim.kill()


def register(group: click.Group) -> None:
    @group.command("sim")
    @click.argument("spec", type=PathArg())
    @click.option("--board", help="Board to build for (default: the spec's board).")
    @click.option("--model", metavar="mock|URL",
                  help="'mock' for a local deterministic model, or a base URL replacing the spec's model "
                       "(fallbacks dropped). Default: the spec's own model.")
    @click.option("--api-key-env", metavar="VAR", help="Take the model's API key from this environment variable.")
    @click.option("--send-key", is_flag=True,
                  help="With --model URL: send the API key from the secrets file to that URL; with "
                       "--telegram-api URL: send the bot token from the secrets file there (by default both are "
                       "withheld: they belong to the spec's own model and Telegram).")
    @click.option("-s", "--subst", "substitutions", type=(str, str), multiple=True, metavar="NAME VALUE",
                  help="Set a ${NAME} substitution (repeatable).")
    @click.option("--out", "out_dir", type=PathArg(),
                  help="Build directory (default: a cache directory per spec).")
    @click.option("--heapsize", metavar="BYTES",
                  help="The VM's starting GC heap, 16K..64M (default: the board's, e.g. 64K on esp32s3); "
                       "the VM grows it on demand.")
    @click.option("--telnet-port", type=click.IntRange(0, 65535),
                  help="Serve the device's Telnet port on this local port instead (0 = any free port).")
    @click.option("--telegram-api", metavar="URL",
                  help="Point the Telegram channel at this Bot API base URL instead of the spec's (a local "
                       "server, e.g. `python -m clawgen.sim.botapi`).")
    def sim(spec: Path, board: str | None, model: str | None, api_key_env: str | None, send_key: bool,
            substitutions: tuple[tuple[str, str], ...], out_dir: Path | None, heapsize: str | None,
            telnet_port: int | None, telegram_api: str | None) -> None:
        """Build SPEC and run it on the MicroPython WebAssembly VM with this terminal as its UART.

        Type a line to talk to the agent; /quit or end of input (Ctrl-D) ends the session. The
        device's Telnet server listens on 127.0.0.1 (its own port, or --telnet-port) while the
        session runs.
        """
        from clawgen.guard import run_guarded

        rc = run_guarded(simulate, spec, board, model, api_key_env, dict(substitutions), out_dir, heapsize,
                         telnet_port, send_key, telegram_api)
        sys.exit(rc or 0)
