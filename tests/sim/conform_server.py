"""A scripted TCP/TLS peer for the socket conformance test (tests/sim/test_conformance.py).

The device script drives it one command line at a time, so what arrives when is decided by the
script, not by timing: ``send HEX`` (write those bytes at once), ``drip MS HEX`` (one byte every MS
milliseconds), ``close`` (orderly close: FIN, or TLS close_notify then FIN), ``rst`` (close with a
TCP reset). Every connection gets its own thread.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time


class ConformServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self.port: int = self._srv.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self._srv.accept()
            except OSError:
                return
            self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        c: socket.socket = raw
        try:
            if self._tls is not None:
                c = self._tls.wrap_socket(raw, server_side=True)
            f = c.makefile("rb")
            for line in f:
                cmd, _, arg = line.strip().decode().partition(" ")
                if cmd == "send":
                    c.sendall(bytes.fromhex(arg))
                elif cmd == "drip":
                    ms, _, data = arg.partition(" ")
                    for b in bytes.fromhex(data):
                        c.sendall(bytes([b]))
                        time.sleep(int(ms) / 1000)
                elif cmd == "close":
                    if isinstance(c, ssl.SSLSocket):
                        # close_notify, then FIN without waiting for the device's close_notify
                        c.settimeout(0.05)
                        try:
                            c.unwrap()
                        except OSError:
                            pass
                    raw.shutdown(socket.SHUT_RDWR)
                    raw.close()
                    return
                elif cmd == "rst":
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    raw.close()
                    return
        except (OSError, ValueError):
            pass  # a refused handshake, or the device went away
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self._srv.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass
