"""The simulator's socket/ssl/select shims behave like MicroPython's own modules.

One MicroPython script (tests/sim/conform_script.py: partial replies, keep-alive, chunked bodies,
peer close, timeouts, reset, non-blocking reads with select.poll, and the same over TLS, plus
refused certificates) runs against a real local peer (tests/sim/conform_server.py) on the
MicroPython unix port, with real sockets and mbedTLS, and on the WebAssembly VM through the shims.
The transcripts must be identical, after one documented normalisation where the ESP32 differs from
the unix port.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sim.conform_server import ConformServer

SCRIPT = (Path(__file__).parent / "conform_script.py").read_text()

# The one place where the ESP32 port and the unix port differ: a blocking recv() that times out
# raises OSError(ETIMEDOUT) on the ESP32 (ports/esp32/modsocket.c, _socket_read_data: "retries ==
# 0 ? EWOULDBLOCK : ETIMEDOUT") but OSError(EAGAIN) on the unix port (ports/unix/modsocket.c
# socket_recv raises the errno of recv() under SO_RCVTIMEO). The shims follow the ESP32.
UNIX_TO_ESP32 = {"blocking recv timeout: raises EAGAIN": "blocking recv timeout: raises ETIMEDOUT"}


def _cert(key: Any, subject: str, issuer_key: Any, issuer: Any, *, ca: bool, days: tuple[int, int]) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1])))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A plain peer, a TLS peer (certificate for localhost from a test CA), a TLS peer whose
    certificate has expired, a closed port, and the DER files of the test CA and of another CA."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = tmp_path_factory.mktemp("conform")
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert(ca_key, "conformance CA", ca_key, None, ca=True, days=(-10, 10))
    other = _cert(other_key, "other CA", other_key, None, ca=True, days=(-10, 10))

    def server_ctx(days: tuple[int, int], stem: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(key, "localhost", ca_key, ca.subject, ca=False, days=days)
        (tmp / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / f"{stem}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / f"{stem}.pem", tmp / f"{stem}.key")
        return ctx

    plain, good = ConformServer(), ConformServer(tls=server_ctx((-1, 1), "good"))
    expired = ConformServer(tls=server_ctx((-5, -1), "expired"))
    ports = []
    for _ in range(2):  # a port nobody listens on, and one for the script's own server
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    conf = (f"PORT = {plain.port}\nTLS_PORT = {good.port}\nEXPIRED_PORT = {expired.port}\n"
            f"CLOSED_PORT = {ports[0]}\nLISTEN_PORT = {ports[1]}\n")
    files = {"/ca.der": ca.public_bytes(serialization.Encoding.DER),
             "/other.der": other.public_bytes(serialization.Encoding.DER)}
    yield {"conf": conf, "files": files}
    for srv in (plain, good, expired):
        srv.close()


def _transcript(res: Any, vm: str) -> list[str]:
    assert res.returncode == 0, f"{vm}: rc {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout.splitlines()


def test_shims_match_the_unix_port(peers: dict[str, Any], mpvm: Path, unixvm: str) -> None:
    from clawgen.sim import unixvm as unix
    from clawgen.sim import vm

    modules = {"conform": SCRIPT, "conf": peers["conf"]}
    real = unix.run(None, entry="import conform", modules=modules, extra_files=peers["files"], timeout=120)
    sim = vm.run(None, entry="import conform", modules=modules, extra_files=peers["files"], timeout=120)
    expected = [UNIX_TO_ESP32.get(line, line) for line in _transcript(real, "unix port")]
    got = _transcript(sim, "simulator")
    assert got == expected
    # What the transcript must show, so that two equally broken runs cannot pass.
    for line in ("recv returns what has arrived: b'hello'",
                 "read(5) while it trickles in: b'world'",
                 "readinto(8) of 3 bytes: raises ETIMEDOUT",
                 "  the buffer holds b'abc\\x00\\x00\\x00\\x00\\x00'",
                 "read(3) after the lost bytes: b'123'",
                 "read(200) of a 69-byte reply: raises ETIMEDOUT",
                 "write after the timeout: raises ETIMEDOUT",
                 "body b'hello world'",
                 "read(100) at the peer's close: b'bye'",
                 "recv: raises EAGAIN",
                 "read(10): None",
                 "read(100) takes what is there: b'data'",
                 "poll when data came: [(0, 1)]",
                 "poll of a closed socket: [(0, 32)]",
                 "only the one with data: [(1, 1)]",
                 "accept with nobody there: raises EAGAIN",
                 "poll when a client came: [(0, 1)]",
                 "the client reads the answer: b'pong'",
                 "recv after a reset: raises ECONNRESET",
                 "connect to a closed port: raises ECONNREFUSED",
                 "a server the CA did not sign: raises ValueError(The certificate is not correctly signed by "
                 "the trusted CA)",
                 "an expired certificate: raises ValueError(The certificate validity has expired)",
                 "CA data that is not a certificate: raises ValueError(invalid cert)",
                 "-- end"):
        assert line in got, line
    assert "TLS socket methods: ['recv', 'recv_into', 'setblocking']" in got
