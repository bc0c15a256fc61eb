"""Throwaway certificate authorities and server certificates for the TLS tests (made with
`cryptography`, which esptool already requires): a valid one, one for another host name, an
expired one, and CAs that signed none of them."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOW = datetime.datetime.now(datetime.timezone.utc)


@dataclass(frozen=True)
class Ca:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(name: str) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(days=1)).not_valid_after(_NOW + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Ca(name, key, cert)


def server_context(d: Path, ca: Ca, host: str = "localhost", expired: bool = False) -> ssl.SSLContext:
    """A server-side SSLContext with a certificate for `host` signed by `ca` (expired: its validity
    ended yesterday)."""
    key = ec.generate_private_key(ec.SECP256R1())
    if expired:
        start, end = _NOW - datetime.timedelta(days=3), _NOW - datetime.timedelta(days=1)
    else:
        start, end = _NOW - datetime.timedelta(hours=1), _NOW + datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True)
    stem = f"{host}{'-expired' if expired else ''}"
    cert_path, key_path = d / f"{stem}.crt", d / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx
