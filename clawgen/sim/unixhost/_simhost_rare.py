# The rare parts of `_simhost` on the unix-port VM (NVS writes, reset, machine.Timer),
# reached as `_simhost.NAME` (its __getattr__ loads this module for the use and drops it: see there).
# The state they change is _simhost's.
import _thread
import os
import sys
import time

import _simhost as H


def nvs_set(ns, key, value):
    """value: the bytes as a hex string."""
    H._nvs[ns + "/" + key] = value
    H._save("nvs.json", H._nvs)


def nvs_erase(ns, key):
    k = ns + "/" + key
    if k not in H._nvs:
        return 1
    del H._nvs[k]
    H._save("nvs.json", H._nvs)
    return 0


def reset():
    H.reset_requested = True
    if _thread.get_ident() != H._main_thread:
        # machine.reset() in a timer callback (a thread here): the chip stops wherever its program
        # is, hung or not. The run's result says "reset", and the process ends at once.
        H.write_result([3, "reset", None, [], None, None])
        os.system("kill -9 $PPID")  # the shell's parent: this VM
        while True:
            time.sleep_ms(1000)


def timer_start(period, periodic, fn, obj):
    """Run fn(obj) (a machine.Timer's callback and the timer) on a thread after period ms (scaled
    by H.timer_scale), once or every period; the handle stops it (timer_stop)."""
    h = [True]

    def run():
        while h[0]:
            time.sleep_ms(max(1, int(period * H.timer_scale)))
            if not h[0]:
                break
            if fn is not None:
                try:
                    fn(obj)
                except Exception as e:
                    sys.print_exception(e)
            if not periodic:
                break
        h[0] = False

    _thread.start_new_thread(run, ())
    return h


def timer_stop(h):
    h[0] = False


