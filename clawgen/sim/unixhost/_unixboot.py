# Boot of a clawgen build on the MicroPython unix port (see clawgen/sim/unixvm.py).
# argv: HOST_DIR DEVICE_ROOT SECRETS_FD. Mounts DEVICE_ROOT as the device's "/" (a small VFS over
# VfsPosix: device code opens "/ca.pem", "/claw.log" ... exactly as on the board), puts /lib on
# sys.path, loads NVS (secrets arrive through a pipe, never a file), runs the entry and the steps,
# and writes result.json (reason, heap figures per step) to HOST_DIR.
import gc
import json
import os
import sys

HOST_DIR = sys.argv[1]
ROOT = sys.argv[2]
SECRETS_FD = int(sys.argv[3])
_hv = os.VfsPosix()  # the host's filesystem, unrooted (VfsPosix's rename mishandles a root prefix)


class DeviceFs:
    """The device's filesystem: every path is taken relative to ROOT on the host."""

    def __init__(self, root):
        self.root = root

    def _p(self, p):
        if not p.startswith("/"):
            p = "/" + p
        return self.root if p == "/" else self.root + p

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, p, mode):
        return _hv.open(self._p(p), mode)

    def ilistdir(self, p):
        return _hv.ilistdir(self._p(p))

    def stat(self, p):
        return _hv.stat(self._p(p))

    def statvfs(self, p):
        return _hv.statvfs(self._p(p))

    def rename(self, a, b):
        return _hv.rename(self._p(a), self._p(b))

    def remove(self, p):
        return _hv.remove(self._p(p))

    def mkdir(self, p):
        return _hv.mkdir(self._p(p))

    def rmdir(self, p):
        return _hv.rmdir(self._p(p))

    def chdir(self, p):
        pass

    def getcwd(self):
        return "/"


def _read_all(path):
    with _hv.open(path, "rb") as f:
        return f.read()


cfg = json.loads(_read_all(HOST_DIR + "/run.json"))
nvs = json.loads(_read_all(HOST_DIR + "/nvs.json")) if cfg.get("nvs_persisted") else {}
if SECRETS_FD >= 0:
    secrets = json.loads(_read_all(f"/dev/fd/{SECRETS_FD}") or b"{}")
    for k, v in secrets.items():
        nvs.setdefault(cfg["nvs_namespace"] + "/" + k, v)
    del secrets

os.umount("/")
os.mount(DeviceFs(ROOT), "/")
sys.path[:] = ["/lib", ".frozen"]

import _simhost  # noqa: E402  (from /lib, after the mount)

_simhost.init(_hv, HOST_DIR, nvs)
del nvs


def _heap():
    gc.collect()
    return {"mem_alloc": gc.mem_alloc(), "mem_free": gc.mem_free(), "gc_total": gc.mem_alloc() + gc.mem_free()}


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
    except MemoryError as e:
        sys.print_exception(e)
        return 1, "crashed"
    except BaseException as e:  # report any uncaught exception, like the board's REPL
        sys.print_exception(e)
        return 1, "crashed"


result = {"heap_at_start": _heap()["mem_alloc"], "steps": []}
g = {"__name__": "__main__"}
rc, reason = _run(cfg["entry"], g)
for step in cfg.get("steps", ()):
    if rc != 0:
        break
    rc, reason = _run(step, g)
    result["steps"].append({"returncode": rc, "reason": reason, "heap": _heap()})
g = None
result.update({"returncode": rc, "reason": reason, "heap": _heap(), "registers": _simhost.registers()})
with _hv.open(HOST_DIR + "/result.json", "w") as f:
    json.dump(result, f)
sys.stdout.flush() if hasattr(sys.stdout, "flush") else None
