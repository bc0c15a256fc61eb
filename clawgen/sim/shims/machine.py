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


if hasattr(_simhost, "timer_start"):  # a host with timers (the unix-port VM); the WebAssembly VM has none

    class Timer:
        """machine.Timer: the callback runs after `period` ms (once, or every period), as a board's
        soft timer callback; machine.reset() in it resets the device wherever its program is."""

        ONE_SHOT = 0
        PERIODIC = 1

        def __init__(self, id=0, **kw):
            self._id = id
            self._h = None
            if kw:
                self.init(**kw)

        def init(self, mode=PERIODIC, period=-1, callback=None, freq=-1):
            if self._h is not None:  # re-armed: the previous schedule ends
                _simhost.timer_stop(self._h)
            if freq > 0:
                period = max(1, 1000 // freq)
            if period < 0:
                raise ValueError("period")
            self._h = _simhost.timer_start(period, mode == Timer.PERIODIC, callback, self)

        def deinit(self):
            if self._h is not None:
                _simhost.timer_stop(self._h)
                self._h = None


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        pass
