# MicroPython, not CPython: the socket conformance script of tests/sim/test_conformance.py, run
# unchanged on the MicroPython unix port (real socket/ssl/select) and on the WebAssembly VM (the
# simulator's shims). It prints a transcript; the test asserts both are the same. The peer is
# tests/sim/conform_server.py, driven one command at a time so no line depends on timing.
# `conf` (made by the test) holds PORT, TLS_PORT, EXPIRED_PORT, CLOSED_PORT, LISTEN_PORT.
import errno
import select
import socket
import ssl

import conf

SHORT = 0.5  # s: the timeout where a read is expected to time out
LONG = 5  # s: where it is not


def name(e):
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int):
        return errno.errorcode.get(e.args[0], str(e.args[0]))
    return "{}({})".format(type(e).__name__, str(e.args[0]).strip() if e.args else "")


def check(label, fn, *args):
    try:
        r = fn(*args)
    except (OSError, ValueError) as e:
        r = "raises " + name(e)
    print(label, bytes(r) if isinstance(r, bytearray) else r)


def conn(port=None, timeout=SHORT):
    s = socket.socket()
    s.settimeout(timeout)
    s.connect(socket.getaddrinfo("127.0.0.1", conf.PORT if port is None else port)[0][-1])
    return s


def cmd(s, c, data=None):
    s.write(c.encode() + (b" " + data.hex().encode() if data is not None else b"") + b"\n")


def wait_readable(s):
    p = select.poll()
    p.register(s, select.POLLIN)
    p.poll(LONG * 1000)


def events(ready, *socks):
    # which socket and POLLIN / POLLOUT / POLLNVAL (error and hang-up bits differ by port)
    return [(socks.index(o), ev & (select.POLLIN | select.POLLOUT | 0x20)) for o, ev in ready]


def read_head(s):
    status = s.readline()
    headers = []
    while True:
        line = s.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers.append((k.strip().lower(), v.strip()))
    return status, headers


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"


def reads(s, tls):
    print("-- partial replies")
    cmd(s, "send", b"hello")
    check("recv returns what has arrived:", s.recv, 100)
    cmd(s, "drip 30", b"world")
    check("read(5) while it trickles in:", s.read, 5)
    cmd(s, "send", b"abc")
    b = bytearray(8)
    check("readinto(8) of 3 bytes:", s.readinto, b)
    print("  the buffer holds", bytes(b))
    if tls:
        check("write after the timeout:", s.write, b"x")
        return
    cmd(s, "send", b"xyz")
    check("read(10) of 3 bytes:", s.read, 10)
    cmd(s, "send", b"123")
    check("read(3) after the lost bytes:", s.read, 3)
    cmd(s, "send", b"line one\nline two\n")
    check("readline:", s.readline)
    check("readline:", s.readline)
    cmd(s, "send", b"no newline")
    check("readline without a newline:", s.readline)
    check("blocking recv timeout:", s.recv, 10)


def keep_alive(s, tls):
    print("-- keep-alive")
    for i in (1, 2):
        cmd(s, "send", RESPONSE)
        status, headers = read_head(s)
        length = int(dict(headers)["content-length"])
        print("response", i, status, headers, s.read(length))
    cmd(s, "send", RESPONSE)
    check("read(200) of a 69-byte reply:", s.read, 200)


def chunked(s):
    print("-- chunked")
    cmd(s, "send", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    cmd(s, "drip 5", b"5\r\nhello\r\n")
    cmd(s, "send", b"6;ext=1\r\n world\r\n0\r\n\r\n")
    print("head", read_head(s))
    body = b""
    while True:
        size = int(s.readline().split(b";")[0].strip(), 16)
        if size == 0:
            print("trailer end", s.readline())
            break
        body += s.read(size)
        s.read(2)
    print("body", body)


def peer_close(mk):
    print("-- peer close")
    s = mk()
    cmd(s, "send", b"bye")
    cmd(s, "close")
    check("read(100) at the peer's close:", s.read, 100)
    check("read(10) after it:", s.read, 10)
    check("recv after it:", s.recv, 10)
    check("readinto after it:", s.readinto, bytearray(4))
    check("readline after it:", s.readline)
    check("read() after it:", s.read)
    s.close()
    s = mk()
    cmd(s, "send", b"12345")
    cmd(s, "close")
    check("read() to the end:", s.read)
    s.close()


def non_blocking(s, tls):
    print("-- non-blocking and poll")
    s.setblocking(False)
    p = select.poll()
    p.register(s, select.POLLIN)
    print("poll(0) with nothing:", p.poll(0))
    print("poll(200) with nothing:", p.poll(200))
    check("recv:", s.recv, 10)
    check("read(10):", s.read, 10)
    check("readinto:", s.readinto, bytearray(10))
    check("readline:", s.readline)
    check("read():", s.read)
    cmd(s, "send", b"data")
    print("poll when data came:", events(p.poll(LONG * 1000), s))
    check("read(100) takes what is there:", s.read, 100)
    cmd(s, "send", b"ab\ncd")
    p.poll(LONG * 1000)
    check("readline:", s.readline)
    check("readline of a partial line:", s.readline)
    check("readline with nothing:", s.readline)
    p.modify(s, select.POLLOUT)
    print("poll for writing:", events(p.poll(0), s))
    p.modify(s, select.POLLIN)
    cmd(s, "close")
    print("poll at the peer's close:", events(p.poll(LONG * 1000), s))
    check("recv at the end:", s.recv, 10)
    check("read(10) at the end:", s.read, 10)
    s.close()
    print("poll of a closed socket:", events(p.poll(0), s))


def main():
    print("socket methods:", [m for m in ("recv", "recv_into", "settimeout", "fileno", "makefile", "recvfrom")
                              if hasattr(socket.socket, m)])
    s = conn()
    reads(s, False)
    s.close()
    s = conn()
    keep_alive(s, False)
    s.close()
    s = conn(timeout=LONG)
    chunked(s)
    s.close()
    peer_close(lambda: conn(timeout=LONG))
    non_blocking(conn(timeout=LONG), False)

    print("-- two sockets")
    a, b = conn(timeout=LONG), conn(timeout=LONG)
    p = select.poll()
    p.register(a, select.POLLIN)
    p.register(b, select.POLLIN)
    cmd(b, "send", b"x")
    print("only the one with data:", events(p.poll(LONG * 1000), a, b))
    a.close()
    b.close()

    print("-- a listening socket, non-blocking (as the Telnet server uses one)")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(socket.getaddrinfo("127.0.0.1", conf.LISTEN_PORT)[0][-1])
    srv.listen(1)
    srv.setblocking(False)
    check("accept with nobody there:", srv.accept)
    p = select.poll()
    p.register(srv, select.POLLIN)
    print("poll(0) with nobody there:", events(p.poll(0), srv))
    c = conn(conf.LISTEN_PORT, LONG)
    print("poll when a client came:", events(p.poll(LONG * 1000), srv))
    a = srv.accept()[0]  # (the peer address's form differs by port: not printed)
    a.setblocking(False)
    check("recv before the client wrote:", a.recv, 10)
    c.write(b"ping")
    p.register(a, select.POLLIN)
    print("poll sees the data:", events(p.poll(LONG * 1000), srv, a))
    check("recv:", a.recv, 10)
    a.write(b"pong")
    check("the client reads the answer:", c.read, 4)
    c.close()
    print("poll at the client's close:", events(p.poll(LONG * 1000), srv, a))
    check("recv at the end:", a.recv, 10)
    for x in (a, srv):
        x.close()

    print("-- reset and refused")
    s = conn(timeout=LONG)
    cmd(s, "rst")
    wait_readable(s)
    check("recv after a reset:", s.recv, 10)
    s.close()
    check("connect to a closed port:", conn, conf.CLOSED_PORT)

    print("-- TLS")
    with open("/ca.der", "rb") as f:
        ca = f.read()
    with open("/other.der", "rb") as f:
        other = f.read()

    def tconn(port=conf.TLS_PORT, cadata=ca, host="localhost", timeout=SHORT):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=cadata)
        return ctx.wrap_socket(conn(port, timeout), server_hostname=host)

    t = tconn()
    print("TLS socket methods:", [m for m in ("recv", "recv_into", "settimeout", "fileno", "makefile", "setblocking")
                                  if hasattr(t, m)])
    reads(t, True)
    t.close()
    t = tconn()
    keep_alive(t, True)
    check("write after the timeout:", t.write, b"x")
    t.close()
    t = tconn(timeout=LONG)
    chunked(t)
    t.close()
    peer_close(lambda: tconn(timeout=LONG))
    t = tconn()
    cmd(t, "send", b"abcdef")
    b = bytearray(10)
    check("recv_into(4):", t.recv_into, b, 4)
    check("recv_into(10) of 2 bytes:", t.recv_into, b)
    print("  the buffer holds", bytes(b))
    t.close()
    non_blocking(tconn(timeout=LONG), True)
    check("a server the CA did not sign:", tconn, conf.TLS_PORT, other)
    check("the wrong host name:", tconn, conf.TLS_PORT, ca, "wrong.example")
    check("an expired certificate:", tconn, conf.EXPIRED_PORT)
    check("CA data that is not a certificate:", ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations,
          None, b"not a certificate")
    print("-- end")


main()
