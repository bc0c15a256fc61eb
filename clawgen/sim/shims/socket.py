# Simulator `socket`: real host TCP through the clawgen sim bridge, with MicroPython's stream
# semantics and the ESP32's errno numbers (see shims/errno.py):
# - recv(n) returns what has arrived (at most n), b"" at end of stream;
# - read(n) / readinto(buf) / readline() return only when the request is full (a line ends), at end
#   of stream, or at the timeout, which raises OSError(ETIMEDOUT) and loses the bytes read so far;
#   the timeout is per wait for data, so a slow but steady peer does not time out a long read;
# - non-blocking (setblocking(False) or settimeout(0)): recv raises OSError(EAGAIN) when nothing is
#   there, read/readinto/readline return None (or what was there); poll with select.poll.
import os

import _simhost
from uctypes import addressof

if not hasattr(os, "urandom"):  # the WebAssembly VM's os has none (claw_ota's nonce needs it)
    def _urandom(n):
        return bytes.fromhex(_simhost.urandom(n))

    os.urandom = _urandom

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
SOL_SOCKET = 0xFFF
SO_REUSEADDR = 4
SO_KEEPALIVE = 8
SO_RCVTIMEO = 0x1006
TCP_NODELAY = 1

_EAGAIN = 11
_SOME = 0  # bridge recv modes: what has arrived / until full / until a newline
_FULL = 1
_LINE = 2
_CHUNK = 4096  # bytes per bridge read for read() with no size and for readline()
_MAX = 1 << 20  # the bridge's largest single transfer


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    r = _simhost.getaddrinfo(str(host), port)
    if isinstance(r, int):
        raise OSError(r)
    return [(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (r, port))]


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, _id=None):
        self._id = _simhost.sock_new() if _id is None else _id
        self._timeout = -1  # ms; -1 blocks forever, 0 is non-blocking
        self._closed = False
        self._peer = None

    def settimeout(self, t):
        if t is None:
            self._timeout = -1
        else:
            ms = int(t * 1000)
            self._timeout = 1 if ms == 0 and t > 0 else ms

    def setblocking(self, flag):
        self._timeout = -1 if flag else 0

    def setsockopt(self, level, opt, value):
        pass

    def connect(self, addr):
        st = _simhost.sock_connect(self._id, addr[0], addr[1], self._timeout)
        if st:
            raise OSError(st)
        self._peer = (addr[0], addr[1])

    def write(self, buf):
        mv = memoryview(buf)
        n = len(mv)
        if n == 0:
            return 0
        r = _simhost.sock_send(self._id, addressof(mv), n)
        if r < 0:
            raise OSError(-r)
        return r

    send = write

    def sendall(self, buf):
        self.write(buf)

    def _bridge_read(self, mv, n, mode):
        """One bridge read into mv[:n]: the count, or raises OSError(errno) (EAGAIN included)."""
        r = _simhost.sock_recv_into(self._id, addressof(mv), n, self._timeout, mode)
        if r < 0:
            raise OSError(-r)
        return r

    def recv(self, n):
        b = bytearray(n)
        k = self._bridge_read(b, min(n, _MAX), _SOME) if n else 0
        return bytes(b) if k == n else bytes(memoryview(b)[:k])

    def recvfrom(self, n):
        return self.recv(n), self._peer

    def sendto(self, buf, addr):
        return self.write(buf)

    def readinto(self, buf, nbytes=None):
        mv = memoryview(buf)
        n = len(mv) if nbytes is None else min(nbytes, len(mv))
        got = 0
        while got < n:
            want = min(n - got, _MAX)
            try:
                k = self._bridge_read(mv[got:], want, _FULL)
            except OSError as e:
                if e.args[0] == _EAGAIN:
                    return got if got else None
                raise
            got += k
            if k < want:
                break  # end of stream (or all a non-blocking socket had)
        return got

    def read(self, n=-1):
        if n is None or n < 0:
            return self._readall()
        b = bytearray(n)
        k = self.readinto(b)
        if k is None:
            return None
        return bytes(b) if k == n else bytes(memoryview(b)[:k])

    def _readall(self):
        parts = []
        b = bytearray(_CHUNK)
        while True:
            try:
                k = self._bridge_read(b, _CHUNK, _SOME)
            except OSError as e:
                if e.args[0] == _EAGAIN:
                    if not parts:
                        return None
                    break
                raise
            if not k:
                break
            parts.append(bytes(memoryview(b)[:k]))
        return b"".join(parts)

    def readline(self, size=-1):
        out = bytearray()
        b = bytearray(_CHUNK)
        while size < 0 or len(out) < size:
            want = _CHUNK if size < 0 else min(_CHUNK, size - len(out))
            try:
                k = self._bridge_read(b, want, _LINE)
            except OSError as e:
                if e.args[0] == _EAGAIN:
                    if not out:
                        return None
                    break
                raise
            out.extend(memoryview(b)[:k])
            if k == 0 or b[k - 1] == 10:
                break
        return bytes(out)

    def bind(self, addr):
        st = _simhost.sock_bind(self._id, addr[0], addr[1])
        if st:
            raise OSError(st)

    def listen(self, backlog=1):
        st = _simhost.sock_listen(self._id, backlog)
        if st:
            raise OSError(st)

    def accept(self):
        r = _simhost.sock_accept(self._id, self._timeout)
        parts = r.split(" ")
        if len(parts) == 1:
            raise OSError(-int(parts[0]))
        c = socket(_id=int(parts[0]))
        c._peer = (parts[1], int(parts[2]))
        return c, c._peer

    def makefile(self, mode="rb", buffering=0):
        return self

    def fileno(self):
        return self._id

    def _poll_id(self):
        """For the select shim: the bridge id, None once closed."""
        return None if self._closed else self._id

    def close(self):
        if not self._closed:
            self._closed = True
            _simhost.sock_close(self._id)

    def __del__(self):
        self.close()
