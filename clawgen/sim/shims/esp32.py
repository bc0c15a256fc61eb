# Simulator `esp32`: NVS backed by the host's memory. Secrets handed to the simulator are
# served from there; nothing is written to disk.
# (Private constants are const() and arguments take names the VM has anyway: every name a shim
# defines is interned on the VM, where the firmware has the module's names built in.)
import _simhost
from micropython import const

_NOT_FOUND = const(-4354)  # ESP_ERR_NVS_NOT_FOUND
_INVALID_LENGTH = const(-4364)  # ESP_ERR_NVS_INVALID_LENGTH


class NVS:
    def __init__(self, name):  # the namespace (positional only on the board)
        self._ns = name

    def _get(self, key):
        v = _simhost.nvs_get(self._ns, key)
        if v is None:
            raise OSError(_NOT_FOUND)
        return bytes.fromhex(v)

    def get_blob(self, key, buf):
        v = self._get(key)
        if len(v) > len(buf):
            raise OSError(_INVALID_LENGTH)
        buf[: len(v)] = v
        return len(v)

    def set_blob(self, key, value):
        _simhost.nvs_set(self._ns, key, bytes(value).hex())

    def get_i32(self, key):
        v = self._get(key)
        return int.from_bytes(v, "little") if len(v) == 4 else int(v)

    def set_i32(self, key, value):
        self.set_blob(key, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def erase_key(self, key):
        if _simhost.nvs_erase(self._ns, key):
            raise OSError(_NOT_FOUND)

    def commit(self):
        pass


def raw_temperature():
    return 120


def idf_heap_info(cap):
    return [(300000, 200000, 100000, 150000)]


HEAP_DATA = 4
HEAP_EXEC = 1
