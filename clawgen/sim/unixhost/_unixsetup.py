# One-time setup of a clawgen run on the MicroPython unix port, imported by _unixboot and
# dropped from sys.modules right after: its code and the run's config leave the heap before the
# device's main.py runs (the harness is not the device; what stays is only what the device
# needs: the mounted filesystem and _simhost). The VM runs in the host directory, beside the
# device's root (clawgen/sim/unixvm.py lays them out so: "." and "../root"; relative paths also
# keep the strings the harness holds the same length wherever the host's temporary directory
# is); the pipe that carries the secrets is the descriptor named by $CLAWUNIX_SECRETS_FD (nothing
# in argv: the unix port interns every argument).
# Mounts the root as the device's "/" (a small VFS over VfsPosix: device code opens
# "/ca.pem", "/claw.log" ... exactly as on the board), puts /lib on sys.path and loads NVS
# (secrets arrive through a pipe, never a file).
import json
import os
import sys

_hv = os.VfsPosix()  # the host's filesystem, unrooted (VfsPosix's rename mishandles a root prefix)


class DeviceFs:
    """The device's filesystem: every path is taken relative to the root on the host. (Few methods:
    on the board the VFS is a C type that costs the GC heap only its instance; here each method's
    code would sit in the device's heap for the whole run. The calls that take a path first --
    open, ilistdir, stat, statvfs, remove, mkdir, rmdir -- go through __getattr__.)"""

    def __init__(self, root):
        self.root = root

    def __getattr__(self, name):
        f = getattr(_hv, name)
        r = self.root
        return lambda p, *a: f(r + p if p[:1] == "/" else r + "/" + p, *a)

    def mount(self, *a):  # (readonly, mkfs); umount(); chdir(path): nothing to do
        pass

    umount = chdir = mount

    def rename(self, a, b):
        r = self.root
        return _hv.rename(r + a if a[:1] == "/" else r + "/" + a, r + b if b[:1] == "/" else r + "/" + b)

    def getcwd(self):
        return "/"


def _read_all(path):
    with _hv.open(path, "rb") as f:
        return f.read()


def setup():
    """Mount the device's filesystem and start _simhost; (entry, steps) of this run."""
    # run.json (clawgen/sim/unixvm.py): [entry, steps, NVS namespace, NVS persisted, timer scale]
    entry, steps, namespace, persisted, scale = json.loads(_read_all("run.json"))
    nvs = json.loads(_read_all("nvs.json")) if persisted else {}
    fd = os.getenv("CLAWUNIX_SECRETS_FD")
    if fd:
        secrets = json.loads(_read_all("/dev/fd/" + fd) or b"{}")
        for k, v in secrets.items():
            nvs.setdefault(namespace + "/" + k, v)
        secrets = None
    os.umount("/")
    os.mount(DeviceFs("../root"), "/")
    sys.path[:] = ["/lib", ".frozen"]

    import _simhost  # from /lib, after the mount

    _simhost.init(_hv, nvs)
    _simhost.timer_scale = scale
    return entry, steps
