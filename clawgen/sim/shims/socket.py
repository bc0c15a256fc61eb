# Simulator `socket`: real host TCP through the clawgen sim bridge, with MicroPython's
# blocking, timeout and errno behaviour (OSError(110) on timeout, OSError(11) when a
# non-blocking socket has nothing to read, b"" / 0 at end of stream).
import _simhost
from uctypes import addressof

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

_CHUNK = 4096  # bytes per recv when the caller gives no size


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    r = _simhost.getaddrinfo(str(host), port)
    if isinstance(r, int):
        raise OSError(r)
    return [(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (r, port))]


def _check(r):
    if r < 0:
        raise OSError(-r)
    return r


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, _id=None):
        self._id = _simhost.sock_new() if _id is None else _id
        self._timeout = -1  # ms; -1 blocks forever
        self._closed = False

    def _ms(self):
        return self._timeout

    def settimeout(self, t):
        self._timeout = -1 if t is None else int(t * 1000)

    def setblocking(self, flag):
        self._timeout = -1 if flag else 0

    def setsockopt(self, level, opt, value):
        pass

    def connect(self, addr):
        st = _simhost.sock_connect(self._id, addr[0], addr[1], self._timeout)
        if st:
            raise OSError(st)

    def write(self, buf):
        mv = memoryview(buf)
        n = len(mv)
        if n == 0:
            return 0
        return _check(_simhost.sock_send(self._id, addressof(mv), n))

    send = write

    def sendall(self, buf):
        self.write(buf)

    def readinto(self, buf, nbytes=None):
        mv = memoryview(buf)
        n = len(mv) if nbytes is None else min(nbytes, len(mv))
        if n == 0:
            return 0
        return _check(_simhost.sock_recv_into(self._id, addressof(mv), n, self._timeout))

    def recv(self, n):
        b = bytearray(n)
        k = self.readinto(b)
        return bytes(b) if k == n else bytes(b[:k])

    def read(self, n=None):
        if n is not None:
            return self.recv(n)
        parts = []
        while True:
            p = self.recv(_CHUNK)
            if not p:
                return b"".join(parts)
            parts.append(p)

    def readline(self):
        out = bytearray()
        one = bytearray(1)
        while True:
            if not self.readinto(one):
                break
            out.append(one[0])
            if one[0] == 10:
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
        return socket(_id=int(parts[0])), (parts[1], int(parts[2]))

    def makefile(self, mode="rb", buffering=0):
        return self

    def fileno(self):
        return self._id

    def close(self):
        if not self._closed:
            self._closed = True
            _simhost.sock_close(self._id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
