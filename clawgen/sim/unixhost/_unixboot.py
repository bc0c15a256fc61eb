# Boot of a clawgen build on the MicroPython unix port (see clawgen/sim/unixvm.py): imported as a
# compiled module (`micropython -c "import _unixboot"`, run in the host directory), not run as a
# script: a script is parsed on the VM, which interns every name in it (its locals too) and its
# path and argv, names that would count against the device's (docs/runtime.md, "A smaller device").
# The one-time setup (mount the device's "/", /lib on sys.path, NVS and secrets, _simhost) is the
# module _unixsetup, dropped from the heap before the entry runs; this module only runs the entry
# and the steps and writes result.json (reason, heap figures per step, heap_at_start: what the
# harness itself keeps live) to the host directory.
import gc
import sys


def _heap():
    gc.collect()
    return [gc.mem_alloc(), gc.mem_free()]


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


def _main():
    global _simhost
    import _unixsetup

    entry, steps = _unixsetup.setup()
    # DeviceFs stays (mounted) and keeps the module's globals: drop the setup code from them.
    _unixsetup.setup = _unixsetup._read_all = _unixsetup = None
    sys.modules.pop("_unixsetup", None)
    import _simhost  # set up by _unixsetup; from /lib
    keep = set(sys.modules)  # the harness's modules (_simhost, imported by the setup, included)
    # Everything the harness stores after the device runs is preallocated here, in locals (a module
    # global assigned later could grow the module's dict on a heap the device left full). The
    # result is a list (result.json, read by clawgen/sim/unixvm.py): [returncode, reason,
    # heap_at_start, steps, heap, registers]; a step is [returncode, reason, heap]; a heap is
    # [mem_alloc, mem_free] after a collection. (Lists, not dicts: every short key would be one
    # more interned name, and those count against the device's: docs/runtime.md.)
    result = [0, "", 0, [], None, None]
    g = {"__name__": "__main__"}
    gc.collect()
    result[2] = gc.mem_alloc()
    rc, reason = _run(entry, g)
    entry = None
    try:
        for step in steps:
            if rc != 0:
                break
            rc, reason = _run(step, g)
            result[3].append([rc, reason, _heap()])
        steps = None
        g.clear()
        result[4] = _heap()
    except MemoryError:  # the harness's own report did not fit beside what the device keeps live
        g.clear()
        for name in list(sys.modules):  # forget everything the device made
            if name not in keep:
                sys.modules.pop(name, None)
        result[4] = _heap()
        result[4].append(True)  # the harness ran out of memory
    result[0] = rc
    result[1] = reason
    _simhost.write_result(result)


_simhost = None
_main()
sys.stdout.flush() if hasattr(sys.stdout, "flush") else None
