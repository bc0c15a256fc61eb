"""The device runtime talking HTTPS to its model through the simulator's ssl (node TLS, verified
against the CA certificates compiled into the build)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from clawgen.sim import vm
from tests.llm_server import LLMServer, Reply
from tests.sim.certs import make_certs

SPEC = """\
name: tlstest
board: esp32s3
system_prompt: You are a test agent.
model:
  base_url: https://localhost/v1
  model: test-model
  api_key: !secret api_key
  connect_timeout: 2
  read_timeout: 2
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
tls:
  ca_certs: ca.pem
"""


def _build(d: Path, ca_pem: str, server: LLMServer) -> tuple[Path, dict[str, bytes]]:
    from clawgen.build import build_spec

    d.mkdir(parents=True, exist_ok=True)
    (d / "agent.yaml").write_text(SPEC)
    (d / "ca.pem").write_text(ca_pem)
    (d / "secrets.yaml").write_text("api_key: sk-tls-test-key\nwifi_ssid: n\nwifi_password: password\n")
    res = build_spec(d / "agent.yaml", out_dir=d / "build", images=False, model_override=server.base_url)
    return res.out_dir, dict(res.nvs_values)


def test_https_model_with_the_right_and_a_wrong_ca(tmp_path: Path, mpvm: Path) -> None:
    ca_pem, cert, key = make_certs(tmp_path / "server")
    other_ca, _, _ = make_certs(tmp_path / "other", name="some other CA")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with LLMServer(tls=ctx) as server:
        server.push(Reply.text("Encrypted hello."), Reply.text("Still encrypted."))
        good, secrets = _build(tmp_path / "good", ca_pem, server)
        res = vm.run(good, stdin=["hi", "again", "/quit"], secrets=secrets, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert re.findall(r"(?m)^> (.*)$", res.stdout)[:2] == ["Encrypted hello.", "Still encrypted."]
        assert [r.headers["authorization"] for r in server.requests] == ["Bearer sk-tls-test-key"] * 2
        assert server.tls_errors == []

        bad, secrets = _build(tmp_path / "bad", other_ca, server)
        res = vm.run(bad, stdin=["hi", "/help", "/quit"], secrets=secrets, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        first = re.findall(r"(?m)^> (.*)$", res.stdout)[0]
        assert first.startswith("[error]") and "certificate" in first, first
        assert "/status" in res.stdout  # the session goes on: /help answered after the failure
        # nothing was sent over the rejected link (node checks the certificate after the handshake and
        # drops the link, so unlike mbedTLS's alert the server may not see a handshake error)
        assert len(server.requests) == 2
