# `network` on the unix-port VM: the simulator's shim (clawgen/sim/shims/network.py) is installed
# as `_network` and loaded for each use, then dropped. On the board `network` is a C module in
# flash: a WLAN object costs the GC heap only its instance, however long the device keeps it (the
# runtime keeps its station interface for the whole run), so the shim's code must not sit in the
# device's heap from boot on (docs/runtime.md, "32-bit and frozen"). A WLAN here holds only the
# shim's state; each method call runs the shim's WLAN method on it, with the shim loaded for it.


def _get(name):
    import sys

    try:
        return getattr(__import__("_network"), name)
    finally:
        sys.modules.pop("_network", None)


def __getattr__(name):
    return _get(name)


class WLAN:
    def __init__(self, *a):
        _get("WLAN").__init__(self, *a)

    def __getattr__(self, name):
        f = getattr(_get("WLAN"), name)
        return lambda *a, **k: f(self, *a, **k)
