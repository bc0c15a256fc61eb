# Simulator `machine`: reset() ends the simulated run (the host reports "reset").
import time

import _simhost

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def reset():
    _simhost.reset()
    raise SystemExit("machine.reset")


soft_reset = reset


def reset_cause():
    return PWRON_RESET


def unique_id():
    return b"\x02\x00\x00\x00\x00\x01"


def freq(hz=None):
    return 240000000 if hz is None else None


def idle():
    pass


def lightsleep(ms=None):
    time.sleep_ms(ms or 0)


def deepsleep(ms=None):
    reset()


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        pass
