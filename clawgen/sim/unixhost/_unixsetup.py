# One-time setup of a clawgen run on the MicroPython unix port, imported by _unixboot.py and
# dropped from sys.modules right after: its code and the run's config leave the heap before the
# device's main.py runs (the harness is not the device; what stays is only what the device
# needs: the mounted filesystem and _simhost). argv: HOST_DIR DEVICE_ROOT SECRETS_FD.
# Mounts DEVICE_ROOT as the device's "/" (a small VFS over VfsPosix: device code opens
# "/ca.pem", "/claw.log" ... exactly as on the board), puts /lib on sys.path and loads NVS
# (secrets arrive through a pipe, never a file).
import json
import os
import sys

_hv = os.VfsPosix()  # the host's filesystem, unrooted (VfsPosix's rename mishandles a root prefix)


class DeviceFs:
    """The device's filesystem: every path is taken relative to the root on the host."""

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


def setup():
    """Mount the device's filesystem and start _simhost; (entry, steps) of this run."""
    host_dir, root, secrets_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    del sys.argv[1:]
    # The VM runs in host_dir (clawgen/sim/unixvm.py), beside root: relative paths keep the
    # strings the harness holds for the whole run the same length wherever the host's temporary
    # directory is, so a run's heap figures do not depend on it.
    base = host_dir.rsplit("/", 1)[0]
    if os.getcwd() == host_dir and root.rsplit("/", 1)[0] == base:
        root = ".." + root[len(base):]
        host_dir = "."
    cfg = json.loads(_read_all(host_dir + "/run.json"))
    nvs = json.loads(_read_all(host_dir + "/nvs.json")) if cfg.get("nvs_persisted") else {}
    if secrets_fd >= 0:
        secrets = json.loads(_read_all(f"/dev/fd/{secrets_fd}") or b"{}")
        for k, v in secrets.items():
            nvs.setdefault(cfg["nvs_namespace"] + "/" + k, v)
        secrets = None
    os.umount("/")
    os.mount(DeviceFs(root), "/")
    sys.path[:] = ["/lib", ".frozen"]

    import _simhost  # from /lib, after the mount

    _simhost.init(_hv, host_dir, nvs)
    _simhost.timer_scale = float(cfg.get("timer_scale", 1.0))
    return cfg["entry"], cfg.get("steps") or ()
