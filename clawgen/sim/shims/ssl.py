# Simulator `ssl`: TLS over node's tls module, certificate checking done by node against
# the CA certificates the device loads (verification failures raise OSError(-9984) like
# mbedTLS's MBEDTLS_ERR_X509_CERT_VERIFY_FAILED).
import _simhost

PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2


class SSLContext:
    def __init__(self, protocol=PROTOCOL_TLS_CLIENT):
        self.protocol = protocol
        self.verify_mode = CERT_REQUIRED if protocol == PROTOCOL_TLS_CLIENT else CERT_NONE
        self._ca = None

    def load_verify_locations(self, cafile=None, cadata=None):
        if cafile is not None:
            with open(cafile, "rb") as f:
                cadata = f.read()
        if isinstance(cadata, (bytes, bytearray, memoryview)):
            cadata = bytes(cadata).decode()
        self._ca = (self._ca or "") + cadata

    def load_cert_chain(self, certfile, keyfile):
        raise OSError(95)  # EOPNOTSUPP: client certificates are not simulated

    def set_ciphers(self, ciphers):
        pass

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if server_side:
            raise OSError(95)
        verify = self.verify_mode != CERT_NONE
        st = _simhost.tls_wrap(sock._id, server_hostname, self._ca, verify)
        if st:
            sock.close()
            raise OSError(st)
        return sock  # same handle: the bridge now speaks TLS on it


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    ctx = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = cert_reqs
    if cadata:
        ctx.load_verify_locations(cadata=cadata)
    return ctx.wrap_socket(sock, server_side=server_side, server_hostname=server_hostname)
