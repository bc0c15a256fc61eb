# `_simhost` for the MicroPython unix port: the hardware edge of a clawgen build run on the real
# unix-port VM (clawgen/sim/unixvm.py). Sockets, TLS, select, files and the GC heap are the VM's
# own; only the UART (stdin/stdout), the register file, NVS, Wi-Fi and reset are served here.
# Host files live in the VM's working directory, the host directory (outside the device's
# filesystem): nvs.json (NVS, persisted on every write so a simulated power cycle keeps it),
# regs.json (register seed), regwrites.log (one "addr value" line per register write), net.json
# (Wi-Fi behaviour), and the result file.
# Every name this module defines (arguments included) is interned on the VM, where the device's
# names count from (docs/runtime.md, "A smaller device"): arguments take names the device or
# the VM has anyway, and the API is the one the shims call (the WebAssembly host has the same).
import _thread
import json
import select
import sys

_vfs = None  # the host's filesystem (VfsPosix, unrooted; paths relative to the host directory)
_nvs = {}
_regs = {}
_inbuf = bytearray()
_eof = False
_poll = None
reset_requested = False
timer_scale = 1.0  # machine.Timer periods are multiplied by this (set from run.json): a test's clock
_main_thread = _thread.get_ident()


def init(vfs, nvs):
    global _vfs, _nvs, _regs, _poll
    _vfs = vfs
    _nvs = nvs
    _regs = _load("regs.json", {})
    _poll = select.poll()
    _poll.register(sys.stdin, select.POLLIN)


def _load(name, default):
    try:
        with _vfs.open(name, "r") as f:
            return json.load(f)
    except OSError:
        return default


def _save(name, obj):
    with _vfs.open(name, "w") as f:
        json.dump(obj, f)


# -- UART ------------------------------------------------------------------------------------

def readline(ms):
    """One line without its newline; None at end of input; -1 when nothing came in time (ms < 0:
    no limit)."""
    global _eof
    import time

    deadline = None if ms < 0 else time.ticks_add(time.ticks_ms(), ms)
    while True:
        i = _inbuf.find(b"\n")
        if i >= 0:
            line = bytes(_inbuf[:i])
            _inbuf[:] = _inbuf[i + 1:]
            return line.decode("utf-8", "replace") if hasattr(line, "decode") else str(line, "utf-8")
        if _eof:
            if _inbuf:
                line = bytes(_inbuf)
                _inbuf[:] = b""
                return str(line, "utf-8")
            return None
        wait = -1 if deadline is None else max(0, time.ticks_diff(deadline, time.ticks_ms()))
        if not _poll.poll(wait):
            if deadline is not None:
                return -1
            continue
        b = sys.stdin.buffer.read(1)
        if not b:
            _eof = True
        else:
            _inbuf.extend(b)


def out(text):
    sys.stdout.write(text)


def flush():
    pass


# -- registers -------------------------------------------------------------------------------

def reg_read(addr):
    return _regs.get(str(addr), 0)


def reg_write(addr, value):
    _regs[str(addr)] = value
    with _vfs.open("regwrites.log", "a") as f:
        f.write(f"{addr} {value}\n")


# -- NVS (namespace/key -> hex string), persisted on every change (writes: _simhost_rare) --------

def nvs_get(ns, key):
    return _nvs.get(ns + "/" + key)


# -- Wi-Fi (every boot connects) ----------------------------------------------------------------

def wlan_connect(ssid):
    return _load("net.json", {}).get("connect", "ok")


# -- the rest: NVS writes, reset, machine.Timer ----------------------------------------------------
# On the board these are C (they cost the GC heap nothing): their code is _simhost_rare (a name of
# more than 10 characters: not interned until it is imported), loaded for each use and dropped, so
# that it does not sit in the device's heap for the whole run (docs/runtime.md, "32-bit and
# frozen"); a run that uses none of them never loads it, nor interns its names. What stays here
# is what every run uses (the UART, the registers, NVS reads, Wi-Fi) and the result file, written
# when the device may have left the heap full.
def __getattr__(name):
    try:
        return getattr(__import__("_simhost_rare"), name)
    finally:
        sys.modules.pop("_simhost_rare", None)


def write_result(result):
    """result.json for the host (clawgen/sim/unixvm.py), written when the run ends: [returncode,
    reason, heap_at_start, steps, heap, registers] (see _unixboot._main; the registers are put in
    here)."""
    result[5] = _regs
    _save("result.json", result)
