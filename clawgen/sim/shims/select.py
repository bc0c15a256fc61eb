# Simulator `select`: poll() as MicroPython's, over the simulator's sockets. A wait on shim
# sockets (plain or TLS) is one blocking call into the bridge, so a device loop that polls with
# a timeout sleeps instead of spinning. Objects that are not shim sockets go to the VM's own
# select (imported as uselect); a mix of both is polled in turns of a millisecond.
import time

import _simhost
import uselect as _vm

POLLIN = 0x01
POLLOUT = 0x04
POLLERR = 0x08
POLLHUP = 0x10
POLLNVAL = 0x20


class _Poll:
    def __init__(self):
        self._reg = []  # [obj, mask], in registration order

    def _find(self, obj):
        for r in self._reg:
            if r[0] is obj:
                return r
        return None

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        r = self._find(obj)
        if r is None:
            self._reg.append([obj, eventmask])
        else:
            r[1] = eventmask

    def unregister(self, obj):
        r = self._find(obj)
        if r is not None:
            self._reg.remove(r)

    def modify(self, obj, eventmask):
        r = self._find(obj)
        if r is None:
            raise OSError(2)  # ENOENT, as MicroPython's poll.modify
        r[1] = eventmask

    def _once(self, timeout):
        shim = []
        other = []
        ready = []
        for r in self._reg:
            obj, mask = r
            pid = getattr(obj, "_poll_id", None)
            if pid is None:
                other.append(r)
                continue
            i = pid()
            if i is None:
                ready.append((obj, POLLNVAL))  # closed
            else:
                shim.append((r, i))  # mask 0 (one-shot, disarmed) still reports errors and hang-ups
        if ready or other:
            timeout = 0
        if shim:
            spec = ",".join(f"{i}:{r[1]}" for r, i in shim)
            revents = _simhost.sock_poll(spec, timeout).split(",")
            for k in range(len(shim)):
                ev = int(revents[k])
                if ev:
                    ready.append((shim[k][0][0], ev))
        if other:
            p = _vm.poll()
            for obj, mask in other:
                p.register(obj, mask)
            for obj, ev in p.poll(0):
                ready.append((obj, ev))
        return ready

    def poll(self, timeout=-1):
        if timeout is None or timeout < 0:
            timeout = -1
        if not any(getattr(r[0], "_poll_id", None) is None for r in self._reg):
            return self._once(timeout)
        deadline = None if timeout < 0 else time.ticks_add(time.ticks_ms(), timeout)
        while True:
            ready = self._once(0)
            if ready or (deadline is not None and time.ticks_diff(deadline, time.ticks_ms()) <= 0):
                return ready
            time.sleep_ms(1)

    def ipoll(self, timeout=-1, flags=0):
        ready = self.poll(timeout)
        if flags & 1:  # one-shot: disarm what was reported until modify() re-arms it
            for obj, _ in ready:
                r = self._find(obj)
                if r is not None:
                    r[1] = 0
        return iter(ready)


def poll():
    return _Poll()
