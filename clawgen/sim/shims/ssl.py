# Simulator `ssl`: TLS by node's tls module with MicroPython's (mbedTLS) behaviour:
# - load_verify_locations(cadata=) takes DER (one or more certificates back to back) or PEM, and
#   raises ValueError("invalid cert") for anything else;
# - wrap_socket returns an SSLSocket with MicroPython's methods only (no settimeout: the socket's
#   timeout at wrap time applies); a refused server certificate raises ValueError with mbedTLS's
#   text ("\nThe certificate validity has expired\n" ...), other handshake failures OSError;
# - reads follow the stream semantics of shims/socket.py, except that a non-blocking recv() returns
#   None when nothing is there, and after an error (a timeout included) every later read or write
#   raises the same error again, as mbedTLS's sticky error does; recv_into is a stream readinto.
import _simhost

PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2
_EAGAIN = 11


class SSLContext:
    def __init__(self, protocol=PROTOCOL_TLS_CLIENT):
        self.protocol = protocol
        self.verify_mode = CERT_REQUIRED if protocol == PROTOCOL_TLS_CLIENT else CERT_NONE
        self._ca = None

    def load_verify_locations(self, cafile=None, cadata=None):
        if cafile is not None:
            with open(cafile, "rb") as f:
                cadata = f.read()
        if isinstance(cadata, str):
            cadata = cadata.encode()
        pem = _simhost.tls_ca(bytes(cadata).hex()) if cadata else ""
        if not pem:
            raise ValueError("invalid cert")
        self._ca = (self._ca or "") + pem

    def load_cert_chain(self, certfile, keyfile):
        raise OSError(95)  # EOPNOTSUPP: client certificates are not simulated

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if server_side:
            raise OSError(95)
        verify = self.verify_mode == CERT_REQUIRED
        r = _simhost.tls_wrap(sock._id, server_hostname, self._ca, verify, sock._timeout)
        if r:
            if r[0] == "V":
                raise ValueError(r[1:])
            raise OSError(int(r[1:]))
        return SSLSocket(sock)


class SSLSocket:
    def __init__(self, sock):
        self._sock = sock
        self._err = 0
        self._eof = False

    def _io(self, fn, *args):
        if self._err:
            raise OSError(self._err)
        if self._eof and self._sock._timeout == 0:
            return None  # mbedTLS reports the peer's close_notify once; a non-blocking read then gets None
        try:
            r = fn(*args)
        except OSError as e:
            code = e.args[0] if e.args else 0
            if code == _EAGAIN:
                return None
            self._err = code
            raise
        if not r and r is not None:
            self._eof = True
        return r

    def read(self, n=-1):
        return self._io(self._sock.read, n)

    def readinto(self, buf, nbytes=None):
        return self._io(self._sock.readinto, buf, nbytes)

    def readline(self, size=-1):
        return self._io(self._sock.readline, size)

    def recv(self, n):
        """What has arrived (one TLS read), like the plain socket's recv."""
        return self._io(self._sock.recv, n)

    def recv_into(self, buf, nbytes=None):
        """A stream readinto on MicroPython's TLS socket: until full, end of stream or timeout."""
        return self._io(self._sock.readinto, buf, nbytes or None)

    def write(self, buf):
        return self._io(self._sock.write, buf)

    send = write
    sendall = write

    def setblocking(self, flag):
        self._sock.setblocking(flag)

    def cipher(self):
        r = _simhost.tls_cipher(self._sock._id)
        name, _, version = r.partition("|")
        return (name, version)

    def _poll_id(self):
        return self._sock._poll_id()

    def close(self):
        self._sock.close()

    def __del__(self):
        self.close()


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    ctx = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = cert_reqs
    if cadata:
        ctx.load_verify_locations(cadata=cadata)
    return ctx.wrap_socket(sock, server_side=server_side, server_hostname=server_hostname)
