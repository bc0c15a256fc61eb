"""A minimal Telnet client for tests of the device's Telnet transport, on either VM."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port nobody listens on right now (for a device that listens on a real host port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TelnetClient:
    def __init__(self, host: str, port: int, *, wait: float = 0, alive: Callable[[], bool] | None = None,
                 source: str | None = None) -> None:
        """Connect (from the local address ``source``, e.g. 127.0.0.2, when given); with wait > 0,
        retry a refused connection for that many seconds (the device is still booting and does not
        listen yet), giving up early once alive() says the device stopped."""
        end = time.monotonic() + wait
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=10,
                                                     source_address=(source, 0) if source else None)
                break
            except ConnectionRefusedError:
                if time.monotonic() > end or (alive is not None and not alive()):
                    raise
                time.sleep(0.1)
        self.buf = b""

    def read_until(self, marker: bytes, timeout: float = 10) -> str:
        end = time.monotonic() + timeout
        while marker not in self.buf:
            if time.monotonic() > end:
                raise AssertionError(f"no {marker!r} in {self.buf!r}")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed; got {self.buf!r}")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        text, self.buf = self.buf[:i], self.buf[i:]
        return text.decode()

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def close(self) -> None:
        self.sock.close()
