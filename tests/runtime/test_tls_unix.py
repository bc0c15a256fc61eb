"""Real TLS on the MicroPython unix-port VM (its own mbedTLS, nothing shimmed) against a local
HTTPS server (CPython ssl) with a CA made by the test.

The build ships the CA certificates as the PEM device file /ca.pem; the device reads it a line
at a time and hands each certificate to mbedTLS as DER (MicroPython's mbedTLS parses DER
everywhere, PEM only where it was built with PEM support, which the unix port is not). Verified
by default; another CA, another host name and an expired certificate are each refused with one
clear line; keep-alive works over TLS (several requests, one handshake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.diagnostics import DiagnosticError
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.httpscript import CLOSE, Drip, Pause, ScriptServer, Stall, answer, chunked, response
from tests.runtime.tlscerts import Ca, make_ca, server_context


@pytest.fixture(scope="module")
def cas() -> dict[str, Ca]:
    return {name: make_ca(f"clawgen {name} test CA") for name in ("good", "other", "third")}


@pytest.fixture
def server():
    made: list[ScriptServer] = []

    def make(*replies, **kw) -> ScriptServer:
        made.append(ScriptServer(*replies, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def bundle(cas: dict[str, Ca]) -> str:
    """Several CAs with comment lines between them, the one that signed the server last: the
    device must load every certificate of the file, not only the first."""
    return "".join(f"# {ca.name}\n{ca.pem}\n" for ca in (cas["other"], cas["third"], cas["good"]))


def agent(tmp: Path, srv: ScriptServer, ca_text: str, read_timeout: float = 3, **overrides) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "roots.pem").write_text(ca_text)
    url = srv.url(host="localhost")
    model = {"base_url": url, "model": "test-model", "read_timeout": read_timeout, "connect_timeout": 3}
    return build(tmp, make_spec(url, model=model, tls={"ca_certs": "roots.pem"}, **overrides))


def answers(stdout: str) -> list[str]:
    lines = stdout.split("for commands\n", 1)[1].splitlines()
    return [ln[2:] if ln.startswith("> ") else ln for ln in lines if ln != "> bye"]


def test_verified_keep_alive_over_tls(tmp_path, cas, server, unix_run):
    body = chunked(answer("chunked over TLS"), size=20)
    pieces: list = [response(b"", "Transfer-Encoding: chunked", length=False)]
    for i in range(0, len(body), 13):
        pieces += [body[i:i + 13], Pause(0.02)]
    srv = server([response(answer("first over TLS"))], pieces, [response(answer("third over TLS"))],
                 tls=server_context(tmp_path / "pki", cas["good"]))
    out = agent(tmp_path / "build", srv, bundle(cas))
    res = unix_run(out, stdin=["a", "b", "c", "/quit"], timeout=90)
    assert res.returncode == 0, res.stderr
    assert answers(res.stdout) == ["first over TLS", "chunked over TLS", "third over TLS"]
    assert srv.handshakes == 1 and srv.connections == 1  # three requests on one TLS connection
    # The device read the build's CA file, as deployed.
    info = json.loads((out / "build.json").read_text())
    assert res.files["/ca.pem"] == (out / info["device_files"]["/ca.pem"]).read_bytes()
    assert res.files["/ca.pem"].decode() == bundle(cas)


@pytest.mark.parametrize(("case", "reason"), [
    ("other CA", "it is not signed by a CA in /ca.pem (tls.ca_certs)"),
    ("other host", "it is not for the name localhost (use the name the certificate is for in base_url)"),
    ("expired", "it is outside its validity period (expired, or the device clock is wrong)"),
])
def test_bad_certificates_are_refused_with_one_line(tmp_path, cas, server, unix_run, case, reason):
    pki = tmp_path / "pki"
    ctx = {"other CA": lambda: server_context(pki, cas["other"]),
           "other host": lambda: server_context(pki, cas["good"], host="example.com"),
           "expired": lambda: server_context(pki, cas["good"], expired=True)}[case]()
    srv = server([response(answer("must not be seen"))], tls=ctx)
    out = agent(tmp_path / "build", srv, cas["good"].pem)
    res = unix_run(out, stdin=["a", "/quit"], timeout=60)
    assert res.returncode == 0, res.stderr
    assert answers(res.stdout) == [f"[error] connect localhost: TLS certificate verification failed: {reason}"]
    assert srv.requests == []  # no request went out, and it was not retried on another connection
    assert srv.connections == 1
    assert "Traceback" not in res.stdout + res.stderr


def test_slow_reply_and_a_stall_over_tls(tmp_path, cas, server, unix_run):
    # Non-blocking TLS reads: one byte per TLS record, then a server that stops mid-body
    # (a clean timeout), then a fresh TLS connection for the next turn.
    reply = response(b'{"choices":[{"message":{"content":"slow TLS"}}]}')
    part = response(answer("never completed"))[:-8]
    srv = server([Drip(reply, 0.05)], [part, Stall(8)], [part, Stall(8)], [response(answer("recovered"))],
                 tls=server_context(tmp_path / "pki", cas["good"]))
    out = agent(tmp_path / "build", srv, cas["good"].pem, read_timeout=1)
    res = unix_run(out, stdin=["a", "b", "c", "/quit"], timeout=90)
    assert res.returncode == 0, res.stderr
    got = answers(res.stdout)
    assert got[0] == "slow TLS"
    assert got[1] in ("[error] read from localhost: timed out after 1s",
                      "[error] read from localhost: timed out after 1.0s")
    assert got[2] == "recovered"
    assert srv.handshakes == 3


def test_web_fetch_over_tls_with_the_device_ca(tmp_path, cas, server, unix_run):
    srv = server([response(b"<p>secure page</p>")], tls=server_context(tmp_path / "pki", cas["good"]))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "roots.pem").write_text(bundle(cas))
    out = build(tmp_path / "b", make_spec("http://127.0.0.1:9/v1", capabilities=["web_browsing"], tools=[],
                                          tls={"ca_certs": "roots.pem"}))
    prog = f"import claw_webtools as W\nprint(repr(W.web_fetch({srv.url('/page', host='localhost')!r})))\n"
    res = unix_run(out, modules={"prog": prog}, entry="import prog")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == repr("HTTP 200\nsecure page")


@pytest.mark.parametrize("content", [
    b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    b"# a comment and no certificate\n",
    b"-----END CERTIFICATE-----\n",
], ids=["bad base64", "not a certificate", "no certificate", "END without BEGIN"])
def test_a_damaged_ca_file_is_a_clear_error(tmp_path, cas, server, unix_device, content):
    # The build checked the file; one changed on the device afterwards is reported, never a traceback.
    error = "[error] the CA certificates in /ca.pem are damaged: deploy the whole app bundle again"
    srv = server(tls=server_context(tmp_path / "pki", cas["good"]))
    dev = unix_device(agent(tmp_path / "build", srv, cas["good"].pem))
    (dev.root / "ca.pem").write_bytes(content)
    res = dev.run(stdin=["a", "/quit"], timeout=60)
    assert res.returncode == 0, res.stderr
    assert answers(res.stdout) == [error]
    assert srv.requests == []


def test_idle_tls_connection_closed_by_the_server_reconnects(tmp_path, cas, server, unix_run):
    # The server closes the kept-alive TLS connection after the first answer (no close_notify,
    # like most servers): the next request notices and reconnects with a new handshake, silently.
    srv = server([response(answer("first")), CLOSE], [response(answer("second"))],
                 tls=server_context(tmp_path / "pki", cas["good"]))
    out = agent(tmp_path / "build", srv, cas["good"].pem)
    res = unix_run(out, stdin=["a", "b", "/quit"], timeout=60)
    assert res.returncode == 0, res.stderr
    assert answers(res.stdout) == ["first", "second"]
    assert srv.handshakes == 2 and len(srv.requests) == 2


@pytest.mark.parametrize(("pem", "problem"), [
    ("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", "certificate 1 is not valid base64"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1 is not a DER-encoded certificate"),
    ("{good}-----BEGIN CERTIFICATE-----\nMIIB\n", "certificate 2 has no -----END CERTIFICATE----- line"),
])
def test_a_ca_file_the_device_could_not_load_is_refused_at_build_time(tmp_path, cas, pem, problem):
    # The build reads tls.ca_certs as the device will (line by line, base64 to DER), so a bundle
    # the device could not load never ships.
    (tmp_path / "roots.pem").write_text(pem.format(good=cas["good"].pem))
    with pytest.raises(DiagnosticError) as e:
        build(tmp_path, make_spec("https://localhost:1/v1", tls={"ca_certs": "roots.pem"}))
    assert str(e.value).endswith(f"error: at tls.ca_certs: roots.pem: {problem}; export the CA certificates "
                                 "again as PEM")
    assert "agent.yaml:" in str(e.value)
