"""transports.telnet.password on the MicroPython unix-port VM, on a real host port: a connection's
first line must be the password before it gets the console; until then the current client keeps
it; wrong passwords close the connection and, five in a row from one address, keep that address's
new connections out for a while (from eight addresses, everyone's); a web page's HTTP request is not
a try; the password is never printed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clawgen.sim.unixvm import UnixRun
from tests.llm_server import Reply
from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import TelnetClient, free_port

PASSWORD = "correct horse 42"
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22", "telnet_password": PASSWORD}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22", "telnet_pw": PASSWORD.encode()}
HOST = "127.0.0.1"


def password_build(tmp_path: Path, base_url: str, port: int) -> Path:
    spec = make_spec(base_url, network=WIFI,
                     transports={"uart": True, "telnet": {"port": port, "password": "!secret telnet_password"}})
    return build(tmp_path, spec, secrets=SECRETS)


def start(unix_device, out: Path, nvs: dict[str, bytes]) -> UnixRun:
    return unix_device(out, secrets=nvs).start(open_stdin=True)


@pytest.fixture
def device(tmp_path: Path, llm_server, unix_device) -> Iterator[tuple[UnixRun, int]]:
    port = free_port()
    run = start(unix_device, password_build(tmp_path, llm_server.base_url, port), NVS)
    try:
        yield run, port
    finally:
        run.kill()


def asked(run: UnixRun, port: int, wait: float = 0, source: str | None = None) -> TelnetClient:
    """A connection (from the local address ``source``) that got the password prompt."""
    c = TelnetClient(HOST, port, wait=wait, alive=lambda: run.proc.poll() is None, source=source)
    assert c.read_until(b"password: ") == "password: "
    return c


def logged_in(run: UnixRun, port: int, wait: float = 0) -> TelnetClient:
    c = asked(run, port, wait)
    c.send_line(PASSWORD)
    assert "/help for commands" in c.read_until(b"\n> ")
    return c


def closed(c: TelnetClient, timeout: float = 10) -> str:
    """What the device sent before it closed the connection."""
    c.sock.settimeout(timeout)
    data = c.buf
    while True:
        try:
            chunk = c.sock.recv(4096)
        except ConnectionResetError:  # (closed with bytes of ours still unread)
            chunk = b""
        if not chunk:
            return data.decode()
        data += chunk


def stop(run: UnixRun) -> str:
    run.end_input()  # the console's input ends: the agent stops
    res = run.wait(20)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "[error] task" not in out, out  # (a failed task restarts: the tests above would still pass)
    return out


def test_the_password_opens_the_console_and_a_wrong_one_closes_the_connection(device, llm_server):
    run, port = device
    llm_server.push(Reply.text("hello over telnet"))
    c = asked(run, port, wait=20)
    c.send_line("swordfish")
    assert closed(c) == "[error] wrong password\r\n"
    c = logged_in(run, port)
    c.send_line("hi")
    assert "hello over telnet" in c.read_until(b"\n> ")
    assert llm_server.requests[0].messages[-1]["content"] == "hi"  # (not the password)
    c.close()
    out = stop(run)
    assert f"telnet: listening on port {port} (password required)" in out
    assert "telnet: 127.0.0.1: wrong password (1 in a row)" in out and "telnet: password accepted" in out
    assert PASSWORD not in out and "swordfish" not in out


def test_a_connection_without_the_password_does_not_take_the_console(device, llm_server):
    run, port = device
    first = logged_in(run, port, wait=20)
    second = asked(run, port)  # connected, says nothing
    first.send_line("/status")
    assert "turns 0" in first.read_until(b"\n> ")  # still served, not moved
    assert b"session moved" not in first.buf
    second.send_line("wrong password")
    assert "[error] wrong password" in closed(second)
    first.send_line("/status")
    assert "turns 0" in first.read_until(b"\n> ")
    third = asked(run, port)
    third.send_line(PASSWORD)
    third.read_until(b"\n> ")
    assert "[session moved to a new Telnet connection]" in first.read_until(b"connection]")
    third.send_line("/quit")
    third.read_until(b"bye")
    first.close()
    stop(run)


def test_a_newer_connection_at_the_prompt_replaces_an_older_one(device, llm_server):
    run, port = device
    older = asked(run, port, wait=20)
    newer = asked(run, port)
    assert closed(older) == "\r\n[error] a newer connection is logging in\r\n"
    newer.send_line(PASSWORD)
    assert "/help for commands" in newer.read_until(b"\n> ")
    newer.close()
    out = stop(run)
    assert "wrong password" not in out


def test_a_password_typed_in_character_mode_with_corrections(device, llm_server):
    # A client in character mode sends each key: BS and DEL take back the byte before them, and
    # Telnet commands (IAC WILL/DO ...) in between are skipped.
    run, port = device
    c = asked(run, port, wait=20)
    keys = b"\xff\xfb\x01" + PASSWORD[:5].encode() + b"xy\x08\x7f" + b"\xff\xfd\x03" + PASSWORD[5:].encode() + b"\r\x00"
    for k in range(0, len(keys), 3):
        c.sock.sendall(keys[k:k + 3])
        time.sleep(0.01)
    assert "/help for commands" in c.read_until(b"\n> ")
    c.close()
    assert "wrong password" not in stop(run)


def test_lines_sent_with_the_password_are_read(device, llm_server):
    run, port = device
    c = asked(run, port, wait=20)
    c.sock.sendall(PASSWORD.encode() + b"\r\n/status\r\n")  # one packet, as a script sends it
    c.read_until(b"/help for commands")
    assert "turns 0" in c.read_until(b"turns")  + c.read_until(b"\n> ")
    c.close()
    stop(run)


def test_five_wrong_passwords_keep_new_connections_out(device, llm_server):
    run, port = device
    for i in range(5):
        c = asked(run, port, wait=20 if i == 0 else 0)
        c.send_line(f"guess {i}")
        assert "[error] wrong password" in closed(c)
    c = TelnetClient(HOST, port)
    assert closed(c) == "[error] too many wrong passwords; try again later\r\n"  # not even asked
    out = stop(run)
    assert "telnet: 5 wrong tries from 127.0.0.1: its connections refused for 60 s" in out
    assert "telnet: refused a connection from 127.0.0.1 (too many wrong passwords)" in out


def _guess(run: UnixRun, port: int, source: str, times: int) -> None:
    for i in range(times):
        c = asked(run, port, source=source)
        c.send_line(f"guess {i}")
        assert "[error] wrong password" in closed(c)


def test_wrong_passwords_from_one_address_do_not_keep_the_others_out(device, llm_server):
    # Five wrong guesses from anywhere on the network refused every connection for a minute: the
    # owner too. Now only the guessing address is refused.
    run, port = device
    logged_in(run, port, wait=20).sock.close()  # (the device is up)
    _guess(run, port, "127.0.0.2", 5)
    refused = TelnetClient(HOST, port, source="127.0.0.2")
    assert closed(refused) == "[error] too many wrong passwords; try again later\r\n"
    c = logged_in(run, port)  # 127.0.0.1: let in
    c.sock.close()
    out = stop(run)
    assert "telnet: 127.0.0.2: wrong password (5 in a row)" in out
    assert "telnet: refused a connection from 127.0.0.2 (too many wrong passwords)" in out
    assert out.count("telnet: password accepted") == 2


def test_taking_the_prompt_again_and_again_is_counted_against_the_taker(device, llm_server):
    # The newest connection at the prompt replaces an older one: connecting again and again from one
    # address kept everyone else from logging in. Each time it takes another address's place counts
    # as a wrong try: after five, its connections are refused and the owner's login goes through.
    run, port = device
    logged_in(run, port, wait=20).sock.close()
    for _ in range(5):
        owner = asked(run, port)  # 127.0.0.1 at the prompt...
        taker = asked(run, port, source="127.0.0.2")  # ...replaced
        assert "a newer connection is logging in" in closed(owner)
        taker.sock.close()
    owner = asked(run, port)
    refused = TelnetClient(HOST, port, source="127.0.0.2")
    assert closed(refused) == "[error] too many wrong passwords; try again later\r\n"
    owner.send_line(PASSWORD)
    assert "/help for commands" in owner.read_until(b"\n> ")
    owner.sock.close()
    out = stop(run)
    assert "telnet: 127.0.0.2: took the prompt from 127.0.0.1 (5 in a row)" in out
    assert "telnet: 5 wrong tries from 127.0.0.2: its connections refused for 60 s" in out


def test_wrong_passwords_from_many_addresses_keep_everyone_out(device, llm_server):
    # The table of addresses is bounded (8): guessing from more of them than that would otherwise
    # never be slowed down. When every counted address is refused, every address is.
    run, port = device
    logged_in(run, port, wait=20).sock.close()
    for k in range(2, 10):
        _guess(run, port, f"127.0.0.{k}", 5)
    _guess(run, port, "127.0.0.10", 1)
    for source in ("127.0.0.1", "127.0.0.11"):
        refused = TelnetClient(HOST, port, source=source)
        assert closed(refused) == "[error] too many wrong passwords; try again later\r\n"
    out = stop(run)
    assert "telnet: wrong tries from 8 addresses: every connection refused for 60 s" in out
    assert "telnet: refused a connection from 127.0.0.1 (too many wrong passwords)" in out


def test_an_http_request_is_no_try_and_reaches_nobody(device, llm_server):
    # A web page can make a browser POST to http://DEVICE:2323/; that must not lock the user out.
    run, port = device
    for i in range(6):
        c = asked(run, port, wait=20 if i == 0 else 0)
        c.sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert closed(c) == ""  # closed without a word after the prompt (and without a try counted)
    c = logged_in(run, port)  # not locked out
    c.close()
    out = stop(run)
    assert out.count("telnet: refused an HTTP request (a web page?)") == 6
    assert "wrong password" not in out
    assert not llm_server.requests


def test_no_password_line_in_time_closes_the_connection(device, llm_server):
    run, port = device
    c = asked(run, port, wait=20)
    c.sock.sendall(b"\xff\xfb\x01\xff\xfd\x03")  # Telnet negotiation only, no line
    start_t = time.monotonic()
    text = closed(c, timeout=40)
    assert text.endswith("[error] no password within 30 s\r\n") and 25 < time.monotonic() - start_t < 40
    out = stop(run)
    assert "telnet: closed a connection that sent no password" in out


def test_without_the_password_in_nvs_there_is_no_telnet_server(tmp_path, llm_server, unix_device):
    port = free_port()
    run = start(unix_device, password_build(tmp_path, llm_server.base_url, port),
                {k: v for k, v in NVS.items() if k != "telnet_pw"})
    try:
        llm_server.push(Reply.text("ok"))
        run.send("hi\n")  # a turn on the UART: once its model request comes, the boot is over
        deadline = time.monotonic() + 20
        while not llm_server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert llm_server.requests, "the device never sent the UART line's request"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=5)
        text = stop(run)
        assert "telnet: no password in NVS (key telnet_pw); the Telnet server is off" in text
        assert "listening on port" not in text
    finally:
        run.kill()


def test_the_password_is_not_in_the_generated_sources(tmp_path, llm_server):
    out = password_build(tmp_path, llm_server.base_url, free_port())
    for p in out.rglob("*"):
        if p.is_file():
            assert PASSWORD.encode() not in p.read_bytes(), p
    assert "TELNET_PW_KEY = 'telnet_pw'" in (out / "app" / "claw_config.py").read_text()


def _logs(spec: Path, stdin: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from clawgen.cli import cli

    return CliRunner().invoke(cli, ["logs", str(spec), "--host", HOST], input=stdin)


def test_logs_answers_the_password_prompt_from_secrets_yaml(tmp_path: Path, llm_server, unix_device):
    port = free_port()
    out = password_build(tmp_path, llm_server.base_url, port)
    run = start(unix_device, out, NVS)
    try:
        asked(run, port, wait=20).close()  # listening
        r = _logs(tmp_path / "agent.yaml", "/status\n/quit\n")
        assert r.exit_code == 0, r.output
        assert "agent rt-agent on esp32s3" in r.stdout and "bye" in r.stdout
        assert r.stdout.startswith("clawgen agent rt-agent - /help for commands")  # (the prompt was answered)
        # The secrets.yaml beside the spec changes; the device still has the old password.
        (tmp_path / "secrets.yaml").write_text((tmp_path / "secrets.yaml").read_text().replace(PASSWORD, "not it, 12"))
        r = _logs(tmp_path / "agent.yaml", "/status\n")
        assert r.exit_code == 1
        assert (f"clawgen: error: {HOST}:{port} refused the Telnet password from secrets.yaml "
                "(transports.telnet.password): [error] wrong password;") in r.output
        text = stop(run)
    finally:
        run.kill()
    assert "telnet: password accepted" in text and "telnet: 127.0.0.1: wrong password (1 in a row)" in text
    for secret in (PASSWORD, "not it, 12", "hunter22"):
        assert secret not in r.output and secret not in text


def test_a_device_without_a_password_is_not_sent_one(tmp_path: Path, llm_server, unix_device):
    # A board still running a build without transports.telnet.password: the console works, and the
    # password of the spec (now with one) goes nowhere.
    from clawgen.image.monitor import telnet_login

    port = free_port()
    spec = make_spec(llm_server.base_url, network=WIFI, transports={"uart": True, "telnet": {"port": port}})
    run = start(unix_device, build(tmp_path, spec, secrets=SECRETS), NVS)
    try:
        c = TelnetClient(HOST, port, wait=20, alive=lambda: run.proc.poll() is None)
        first = telnet_login(c.sock, b"", PASSWORD.encode(), "the device")
        assert first.startswith(b"clawgen agent rt-agent - /help for commands")
        c.sock.settimeout(10)
        c.send_line("/status")
        assert "turns 0" in c.read_until(b"\n> ")  # (the banner's prompt may come first: one read)
        c.close()
        text = stop(run)
    finally:
        run.kill()
    assert PASSWORD not in text
    assert not llm_server.requests  # the password never reached the agent as a line


def test_a_console_on_a_terminal_asks_for_a_password_the_spec_does_not_have(
        device, llm_server, monkeypatch: pytest.MonkeyPatch):
    # `clawgen logs --host` on a terminal, for a spec without a password, to a board that asks:
    # the password is asked without echo (getpass), not typed into the console where it would show.
    import getpass
    import io

    from clawgen.diagnostics import UsageError
    from clawgen.image import monitor

    run, port = device
    asked(run, port, wait=20).close()  # listening
    prompts: list[str] = []
    answers = iter(["not it at all", PASSWORD])

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(monitor, "_isatty", lambda stream: True)
    with pytest.raises(UsageError) as e:
        monitor.telnet_console(HOST, port, stdin=io.BytesIO(b""), stdout=io.BytesIO(), note=lambda s: None)
    assert str(e.value) == (f"{HOST}:{port} refused the password you typed: [error] wrong password; try again")
    out = io.BytesIO()

    def console(conn, keys, stdout, **kw):  # type: ignore[no-untyped-def]
        # What the console does, for one line: what the device sent first, then /status's answer.
        conn.write(b"/status\n")
        shown = b""
        while shown.count(b"\n> ") < 2:
            shown += conn.read(4096)
        stdout.write(shown)
        return "end-of-input"

    monkeypatch.setattr(monitor, "run_console", console)
    monitor.telnet_console(HOST, port, stdin=io.BytesIO(b""), stdout=out, note=lambda s: None)
    assert prompts == [f"{HOST}:{port} asks for its Telnet password: "] * 2
    shown = out.getvalue().decode()
    assert shown.startswith("clawgen agent rt-agent - /help for commands") and "turns 0" in shown
    assert PASSWORD not in shown
    stop(run)
