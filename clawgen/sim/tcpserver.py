"""The serving side shared by the simulator's scripted peers (the model server in llmserver.py, the
Telegram Bot API in botapi.py): a TCP server on a host port, plain or TLS, one thread per
connection, shut down cleanly by ``close()``."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # (ssl is imported only by a caller that makes a server speak TLS)
    import ssl

_S = TypeVar("_S", bound="ThreadedServer")


class ThreadedServer:
    """Accepts connections on (host, port) and runs ``_converse(conn, number)`` on each in its own
    thread (``number``: 1 for the first connection accepted), after the TLS handshake when ``tls`` is
    a server-side context (a failed handshake is recorded in ``tls_errors``, a completed one counted
    in ``handshakes``). ``conn_timeout``: the socket timeout of each connection (None: none).

    A subclass sets up its own state first, then calls ``super().__init__``, which starts serving."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, conn_timeout: float | None) -> None:
        self.tls = tls
        self.tls_errors: list[str] = []  # handshakes that failed (e.g. the client rejected our cert)
        self.connections = 0  # connections accepted
        self.handshakes = 0  # TLS handshakes completed
        self._conn_timeout = conn_timeout
        self._closing = threading.Event()
        self._conns_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self.host, self.port = self._sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _converse(self, conn: socket.socket, number: int) -> None:
        """Serve connection ``number`` until it ends (an OSError ends it too); the caller closes it."""
        raise NotImplementedError

    def _wake(self) -> None:
        """Called by close() before the sockets are shut down: wake the subclass's waiting threads."""

    def close(self) -> None:
        """Stop serving. Sockets are only shut down here and closed by the thread that owns them:
        closing a descriptor another thread is blocked on lets the number be reused by the next
        server's sockets, which then get closed under it."""
        self._closing.set()
        self._wake()
        with self._conns_lock:
            conns = list(self._conns)
        for c in [self._sock, *conns]:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        for t in list(self._handlers):
            t.join(timeout=5)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        try:
            while not self._closing.is_set():
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    return
                if self._closing.is_set():
                    conn.close()
                    return
                self.connections += 1
                with self._conns_lock:
                    self._conns.add(conn)
                t = threading.Thread(target=self._handle, args=(conn, self.connections), daemon=True)
                self._handlers.append(t)
                t.start()
        finally:
            self._sock.close()

    def _handle(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(self._conn_timeout)
        if self.tls is not None:
            raw = conn
            try:
                conn = self.tls.wrap_socket(raw, server_side=True)
            except OSError as e:  # ssl.SSLError is an OSError
                self.tls_errors.append(f"{type(e).__name__}: {e}")
                with self._conns_lock:
                    self._conns.discard(raw)
                raw.close()
                return
            with self._conns_lock:
                self._conns.discard(raw)
                self._conns.add(conn)
                self.handshakes += 1
        try:
            self._converse(conn, number)
        except OSError:
            return
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
