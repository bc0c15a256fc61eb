# `_simhost` for the MicroPython unix port: the hardware edge of a clawgen build run on the real
# unix-port VM (clawgen/sim/unixvm.py). Sockets, TLS, select, files and the GC heap are the VM's
# own; only the UART (stdin/stdout), the register file, NVS, Wi-Fi and reset are served here.
# Host files live in HOST (outside the device's filesystem): nvs.json (NVS, persisted on every
# write so a simulated power cycle keeps it), regs.json (register seed), regwrites.log (one
# "addr value" line per register write), net.json (Wi-Fi behaviour), and the result file.
import _thread
import json
import os
import select
import sys
import time

_host_vfs = None
HOST = ""
_nvs = {}
_regs = {}
_net = {}
_inbuf = bytearray()
_eof = False
_poll = None
reset_requested = False
timer_scale = 1.0  # machine.Timer periods are multiplied by this (run.json "timer_scale"): a test's clock
_main_thread = _thread.get_ident()


def init(host_vfs, host_dir, nvs):
    global _host_vfs, HOST, _nvs, _regs, _net, _poll
    _host_vfs = host_vfs
    HOST = host_dir
    _nvs = nvs
    _regs = _load("regs.json", {})
    _net = _load("net.json", {})
    _poll = select.poll()
    _poll.register(sys.stdin, select.POLLIN)


def _load(name, default):
    try:
        with _host_vfs.open(HOST + "/" + name, "r") as f:
            return json.load(f)
    except OSError:
        return default


def _save(name, obj):
    with _host_vfs.open(HOST + "/" + name, "w") as f:
        json.dump(obj, f)


# -- UART ------------------------------------------------------------------------------------

def readline(timeout_ms):
    """One line without its newline; None at end of input; -1 when nothing came in time."""
    global _eof
    import time

    deadline = None if timeout_ms < 0 else time.ticks_add(time.ticks_ms(), timeout_ms)
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
    with _host_vfs.open(HOST + "/regwrites.log", "a") as f:
        f.write(f"{addr} {value}\n")


def registers():
    return _regs


# -- NVS (namespace/key -> hex string), persisted on every change ------------------------------

def nvs_get(ns, key):
    return _nvs.get(ns + "/" + key)


def nvs_set(ns, key, hexval):
    _nvs[ns + "/" + key] = hexval
    _save("nvs.json", _nvs)


def nvs_erase(ns, key):
    k = ns + "/" + key
    if k not in _nvs:
        return 1
    del _nvs[k]
    _save("nvs.json", _nvs)
    return 0


# -- Wi-Fi and reset -------------------------------------------------------------------------

def wlan_connect(ssid):
    return _net.get("connect", "ok")


def reset():
    global reset_requested
    reset_requested = True
    if _thread.get_ident() != _main_thread:
        # machine.reset() in a timer callback (a thread here): the chip stops wherever its program
        # is, hung or not. The run's result says "reset", and the process ends at once.
        write_result({"returncode": 3, "reason": "reset", "steps": [], "heap": None, "registers": _regs})
        os.system("kill -9 $PPID")  # the shell's parent: this VM
        while True:
            time.sleep_ms(1000)


# -- machine.Timer -----------------------------------------------------------------------------

def timer_start(period_ms, periodic, callback, tim):
    """Run callback(tim) on a thread after period_ms (scaled by timer_scale), once or every period;
    the handle stops it (timer_stop)."""
    h = [True]

    def run():
        while h[0]:
            time.sleep_ms(max(1, int(period_ms * timer_scale)))
            if not h[0]:
                break
            if callback is not None:
                try:
                    callback(tim)
                except Exception as e:
                    sys.print_exception(e)
            if not periodic:
                break
        h[0] = False

    _thread.start_new_thread(run, ())
    return h


def timer_stop(h):
    h[0] = False


def write_result(result):
    """result.json for the host (clawgen/sim/unixvm.py), written when the run ends."""
    _save("result.json", result)
