# `esp32` on the unix-port VM: the simulator's shim (clawgen/sim/shims/esp32.py) is installed as
# `_esp32` and loaded for each use, then dropped. On the board `esp32` is a C module in flash that
# costs the GC heap nothing (an NVS object only while the device holds one): the shim's code must
# not sit in the device's heap from the first `import esp32` on (docs/runtime.md, "32-bit and
# frozen"). What a use returns (the NVS class, a function) lives as long as the device keeps it.


def __getattr__(name):
    import sys

    try:
        return getattr(__import__("_esp32"), name)
    finally:
        sys.modules.pop("_esp32", None)
