"""The node host process of the simulator (clawgen/sim/host.mjs), and the build facts it is started
with. Kept apart from clawgen.sim.vm, with few imports, so that `clawgen sim` starts node as early as
it can (see Prestarted)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clawgen.cachedir import cache_root
from clawgen.sim.install import SIM_DIR, ensure_installed, node_executable


def timing(what: str) -> None:
    """CLAWSIM_TIMING=1: a phase of the run on stderr, in ms since CLAWSIM_T0 (epoch ms) if set, else
    since this process started (host.mjs prints its phases the same way)."""
    if os.environ.get("CLAWSIM_TIMING"):
        import time

        t0 = float(os.environ.get("CLAWSIM_T0") or 0) or None
        ms = time.time() * 1000 - t0 if t0 else time.perf_counter() * 1000
        os.write(2, f"clawsim-timing: {ms:.1f} ms python: {what}\n".encode())


HOST_SCRIPT = SIM_DIR / "host.mjs"
INHERIT = "inherit"  # stdin/stdout mode: pass the host's own streams through
OPEN = "open"  # a UART with no input that never ends (until the simulation is stopped): for Telnet tests


def build_info(build_dir: Path | str | None) -> dict[str, Any]:
    """build.json of a build ({} without one, or for a hand-made build dir)."""
    if build_dir is None:
        return {}
    try:
        info = json.loads((Path(build_dir) / "build.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def board_heapsize(info: Mapping[str, Any]) -> int | None:
    """The GC heap the build's board starts with (with PSRAM when the build uses it), as the build
    states it (build.json heap.board_heap_bytes); None for a build that does not say. See
    clawgen/sim/heap.py for what the VM makes of it."""
    n = (info.get("heap") or {}).get("board_heap_bytes")
    return int(n) if isinstance(n, int) and n > 0 else None



def start_heapsize(heap_bytes: int | None, out: Path) -> int | None:
    """The heap `clawgen sim` loads the VM with before its build: --heapsize, else the board heap of
    the last build in ``out`` (None: no build yet; the VM is then loaded once the run is known)."""
    return heap_bytes or board_heapsize(build_info(out))


def default_sim_out(spec: Path, board: str | None) -> Path:
    """The build directory of `clawgen sim SPEC` without --out: one per spec file and board."""
    import zlib

    # Two CRC-32s (a directory name, not a digest): hashlib would load OpenSSL before node is
    # started, 5 ms later for every `clawgen sim`.
    # (surrogateescape: a file name or an argument in bytes that are not UTF-8 still names one directory)
    text = f"{spec.resolve()}\0{board or ''}".encode("utf-8", "surrogateescape")
    key = f"{zlib.crc32(text):08x}{zlib.crc32(text[::-1]):08x}"
    return cache_root() / "sim-builds" / f"{spec.stem}-{key}"


class Prestarted:
    """A node host process started before its run is known, so that node's own start, loading the
    VM and the bridge worker overlap with whatever the caller does meanwhile (`clawgen sim` builds
    the spec). Hand it to ``Simulation(..., prestarted=...)``, or ``kill()`` it.

    stdin/capture: as for Simulation, but only their kind matters here (INHERIT: the host's stdin;
    anything else: a pipe). heapsize: what the VM is loaded with ahead of the configuration; the run
    reloads the VM if its heapsize turns out different."""

    def __init__(self, *, stdin: Any = None, capture: bool = True, heapsize: int | None = None,
                 install: bool = True) -> None:
        mpvm = ensure_installed() if install else None
        node = node_executable()
        cfg_r, self._cfg_w = os.pipe()
        self._ev_r, ev_w = os.pipe()
        out = subprocess.PIPE if capture else None
        try:
            self.proc = subprocess.Popen(
                [node, "--no-warnings", str(HOST_SCRIPT), str(mpvm), str(cfg_r), str(ev_w), str(heapsize or 0)],
                stdin=None if stdin == INHERIT else subprocess.PIPE, stdout=out, stderr=out,
                pass_fds=(cfg_r, ev_w),
            )
        except BaseException:
            os.close(self._cfg_w)
            os.close(self._ev_r)
            raise
        finally:
            os.close(cfg_r)
            os.close(ev_w)
        timing("node started")
        self.capture = capture
        self.inherit_stdin = stdin == INHERIT
        self._taken = False

    def take(self) -> tuple[subprocess.Popen[bytes], int, int]:
        """(process, config pipe to write, event pipe to read): once, for the Simulation."""
        if self._taken:
            raise RuntimeError("this prestarted simulator is already in use")
        self._taken = True
        return self.proc, self._cfg_w, self._ev_r

    def kill(self) -> None:
        """Stop it unused (e.g. the build failed)."""
        if self._taken:
            return
        self._taken = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for fd in (self._cfg_w, self._ev_r):
            try:
                os.close(fd)
            except OSError:
                pass
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
