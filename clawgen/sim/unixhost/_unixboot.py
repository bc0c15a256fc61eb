# Boot of a clawgen build on the MicroPython unix port (see clawgen/sim/unixvm.py).
# argv: HOST_DIR DEVICE_ROOT SECRETS_FD. The one-time setup (mount the device's "/", /lib on
# sys.path, NVS and secrets, _simhost) is the module _unixsetup, dropped from the heap before the
# entry runs; this script only runs the entry and the steps and writes result.json (reason, heap
# figures per step, heap_at_start: what the harness itself keeps live) to HOST_DIR.
import gc
import sys

import _unixsetup

ENTRY, STEPS = _unixsetup.setup()
# DeviceFs stays (mounted) and keeps the module's globals: drop the setup code from them.
_unixsetup.setup = _unixsetup._read_all = None
del _unixsetup
sys.modules.pop("_unixsetup", None)
import _simhost  # noqa: E402  (set up by _unixsetup; from /lib)


def _heap():
    gc.collect()
    a = gc.mem_alloc()
    f = gc.mem_free()
    return {"mem_alloc": a, "mem_free": f, "gc_total": a + f}


def _run(src, g):
    """(returncode, reason) of one snippet, like the WebAssembly host reports it."""
    try:
        exec(src, g)
        return 0, "exit"
    except SystemExit as e:
        if _simhost.reset_requested:
            return 3, "reset"
        code = e.args[0] if e.args else 0
        if code is None:
            code = 0
        if not isinstance(code, int):
            print(code)
            code = 1
        return code, "exit"
    except BaseException as e:  # report any uncaught exception (MemoryError too), like the board's REPL
        sys.print_exception(e)
        return 1, "crashed"


def _drop_device():
    """Forget everything the device made (its globals, its modules): when the device left the heap
    full, the harness needs room to write its report."""
    for name in list(sys.modules):
        if name not in _HARNESS_MODULES:
            sys.modules.pop(name, None)
    gc.collect()


def _main(entry, steps):
    # Everything the harness stores after the device runs is preallocated here, in locals (a module
    # global assigned later could grow the module's dict on a heap the device left full).
    result = {"heap_at_start": 0, "steps": [], "returncode": 0, "reason": "", "heap": None, "registers": None}
    g = {"__name__": "__main__"}
    gc.collect()
    result["heap_at_start"] = gc.mem_alloc()
    rc, reason = _run(entry, g)
    entry = None
    try:
        for step in steps:
            if rc != 0:
                break
            rc, reason = _run(step, g)
            result["steps"].append({"returncode": rc, "reason": reason, "heap": _heap()})
        steps = None
        g.clear()
        result["heap"] = _heap()
    except MemoryError:  # the harness's own report did not fit beside what the device keeps live
        g.clear()
        _drop_device()
        result["heap"] = _heap()
        result["heap"]["harness_out_of_memory"] = True
    result["returncode"] = rc
    result["reason"] = reason
    result["registers"] = _simhost.registers()
    _simhost.write_result(result)


_HARNESS_MODULES = set(sys.modules)
_main(ENTRY, STEPS)
ENTRY = STEPS = None
sys.stdout.flush() if hasattr(sys.stdout, "flush") else None
