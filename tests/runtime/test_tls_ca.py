"""TLS on the MicroPython unix-port VM (its own mbedTLS `ssl`, nothing shimmed): the runtime verifies
the server against the CA certificates the spec gives (tls.ca_certs), read from the device file
/ca.pem, and refuses a server signed by another CA with a clear message."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from tests.llm_server import completion
from tests.runtime.agent_builds import build, make_spec

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")


def _make_ca(d: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "server.pem", d / "server.key"


class TlsModel:
    """An HTTPS chat-completions endpoint answering every request with `answer`."""

    def __init__(self, cert: Path, key: Path, answer: str) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.body = json.dumps(completion(answer)).encode()
        self.requests = 0
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(raw,), daemon=True).start()

    def _conn(self, raw: socket.socket) -> None:
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                n = next(int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                         if ln.lower().startswith(b"content-length:"))
                while len(buf) < n:
                    buf += conn.recv(65536)
                buf = buf[n:]
                self.requests += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % len(self.body) + self.body)

    def close(self) -> None:
        # Shut down (wakes the blocked accept) before closing: a descriptor closed under a
        # blocked accept() could be reused by the next test's server and accepted here.
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.srv.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, tuple[Path, Path, Path]]:
    base = tmp_path_factory.mktemp("pki")
    return {"good": _make_ca(base / "good", "clawgen test CA"), "other": _make_ca(base / "other", "other CA")}


def _spec(tmp: Path, port: int, ca: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, tmp / "ca.pem")
    return build(tmp, make_spec(f"https://127.0.0.1:{port}/v1", tls={"ca_certs": "ca.pem"}))


def test_verified_tls_turns(tmp_path: Path, pki, unix_run):
    ca, cert, key = pki["good"]
    server = TlsModel(cert, key, "over TLS")
    try:
        out = _spec(tmp_path, server.port, ca)
        # The CA goes to the device as the file /ca.pem, not as a constant in the bytecode.
        assert "-----BEGIN CERTIFICATE-----" not in (out / "app" / "claw_config.py").read_text()
        info = json.loads((out / "build.json").read_text())
        assert (out / info["device_files"]["/ca.pem"]).read_text() == ca.read_text()
        res = unix_run(out, stdin=["hello", "again", "/quit"])
        assert res.returncode == 0, res.stderr
        assert res.stdout.count("over TLS") == 2
        assert server.requests == 2
    finally:
        server.close()


def test_untrusted_server_refused(tmp_path: Path, pki, unix_run):
    _, cert, key = pki["other"]
    server = TlsModel(cert, key, "should not be seen")
    try:
        out = _spec(tmp_path, server.port, pki["good"][0])
        res = unix_run(out, stdin=["hello", "/quit"], timeout=60)
        assert res.returncode == 0, res.stderr
        assert "[error] connect 127.0.0.1: TLS certificate verification failed" in res.stdout
        assert "should not be seen" not in res.stdout
        assert server.requests == 0
    finally:
        server.close()


def test_missing_ca_file_is_a_clear_error(tmp_path: Path, pki, unix_device):
    ca, cert, key = pki["good"]
    server = TlsModel(cert, key, "should not be seen")
    try:
        out = _spec(tmp_path, server.port, ca)
        dev = unix_device(out)
        dev.remove_file("/ca.pem")  # a device whose bundle was deployed without /ca.pem
        res = dev.run(stdin=["hello", "/quit"], timeout=60)
        assert res.returncode == 0, res.stderr
        assert "[error] cannot read the CA certificates /ca.pem: deploy the whole app bundle again" in res.stdout
        assert server.requests == 0
    finally:
        server.close()
