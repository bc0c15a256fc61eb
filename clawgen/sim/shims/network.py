# Simulator `network`: a station interface that "connects" at once (the host's own network
# is used); the host can make the connection fail to exercise the device's error paths.
# (Arguments are positional only on the board, and take names the VM has anyway here: every name a
# shim defines is interned on the VM, where the firmware has the module's names built in.)
import _simhost

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204


class WLAN:
    def __init__(self, id=STA_IF):
        self._active = False
        self._status = STAT_IDLE
        self._cfg = {"hostname": "clawgen", "mac": b"\x02\x00\x00\x00\x00\x01"}

    def active(self, value=None):
        if value is None:
            return self._active
        self._active = bool(value)
        return self._active

    def config(self, *args, **kwargs):
        if args:
            return self._cfg.get(args[0])
        self._cfg.update(kwargs)

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        mode = _simhost.wlan_connect(ssid or "")
        fail = {"no_ap": STAT_NO_AP_FOUND, "wrong_password": STAT_WRONG_PASSWORD, "fail": STAT_ASSOC_FAIL}
        self._status = fail.get(mode, STAT_GOT_IP)

    def disconnect(self):
        self._status = STAT_IDLE

    def isconnected(self):
        return self._status == STAT_GOT_IP

    def status(self, name=None):
        if name == "rssi":
            return -50
        return self._status

    def ifconfig(self, cfg=None):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def ipconfig(self, *args, **kwargs):
        return "127.0.0.1" if args and args[0] == "addr4" else None

    def scan(self):
        return []


def hostname(name=None):
    return "clawgen" if name is None else None
