"""`clawgen monitor`'s console loop against pyserial's loop:// port and a scripted TCP board."""

from __future__ import annotations

import io
import os
import socket
import threading
import time

import pytest
import serial

from clawgen.diagnostics import UsageError
from clawgen.image.monitor import EXIT_KEY, monitor, run_console


def loop_port() -> serial.SerialBase:
    return serial.serial_for_url("loop://", timeout=0.05)


def test_keys_reach_the_board_until_ctrl_bracket() -> None:
    ser, out = loop_port(), io.BytesIO()
    keys = [b"print(1+1)\r", b"\x03\x04", b"after" + EXIT_KEY + b"never sent", b"nor this"]
    reason = run_console(ser, keys, out)
    ser.close()
    assert reason == "exit-key"
    # loop:// echoes what was written: everything before Ctrl-], Ctrl-C/Ctrl-D included
    assert out.getvalue() == b"print(1+1)\r\x03\x04after"


def test_end_of_input_stops_the_console() -> None:
    ser, out = loop_port(), io.BytesIO()
    assert run_console(ser, [b"import os\r"], out) == "end-of-input"
    ser.close()
    assert out.getvalue() == b"import os\r"


class ScriptedBoard:
    """A TCP 'board' that answers each line like the REPL."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.received = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.server.getsockname()[1]}"

    def _run(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while True:
                data = conn.recv(1024)
                if not data:
                    return
                self.received += data
                if data.endswith(b"\r"):
                    conn.sendall(b"\r\nok\r\n>>> ")

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=2)


def test_monitor_over_a_socket_port_with_piped_input() -> None:
    board = ScriptedBoard()
    stdout = io.BytesIO()
    notes: list[str] = []
    try:
        # piped (non-TTY) input: no raw mode; the board's answer still arrives after the input ends
        reason = monitor(board.url, 115200, stdin=io.BytesIO(b"help()\r"), stdout=stdout,
                         note=notes.append)
    finally:
        board.close()
    assert reason == "end-of-input"
    assert bytes(board.received) == b"help()\r"
    assert stdout.getvalue() == b"\r\nok\r\n>>> "
    assert any("Ctrl-]" in n for n in notes)


def test_monitor_on_a_missing_port_explains() -> None:
    with pytest.raises(UsageError) as err:
        monitor("/dev/ttyUSB-clawgen-missing", 115200, stdin=io.BytesIO(b""), stdout=io.BytesIO(),
                note=lambda _: None)
    assert "does not exist" in str(err.value)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_monitor_on_a_busy_port_explains() -> None:
    controller, device = os.openpty()
    name = os.ttyname(device)
    try:
        with serial.Serial(name, exclusive=True), pytest.raises(UsageError) as err:
            monitor(name, 115200, stdin=io.BytesIO(b""), stdout=io.BytesIO(), note=lambda _: None)
    finally:
        os.close(controller)
        os.close(device)
    assert "busy" in str(err.value)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_monitor_from_a_terminal_uses_raw_mode_and_restores_it() -> None:
    import termios

    board = ScriptedBoard()
    controller, device = os.openpty()
    before = termios.tcgetattr(device)

    def type_keys() -> None:
        # type only once the console has put the terminal in raw mode (ICANON off)
        for _ in range(500):
            if not termios.tcgetattr(device)[3] & termios.ICANON:
                break
            threading.Event().wait(0.01)
        # Ctrl-C reaches the board as a byte in raw mode; Ctrl-] ends the session
        os.write(controller, b"1+1\r\x03" + EXIT_KEY)

    typist = threading.Thread(target=type_keys, daemon=True)
    typist.start()
    try:
        with os.fdopen(device, "rb", buffering=0, closefd=False) as stdin:
            reason = monitor(board.url, 115200, stdin=stdin, stdout=io.BytesIO(), note=lambda _: None)
        after = termios.tcgetattr(device)
    finally:
        os.close(controller)
        os.close(device)
        board.close()
    typist.join(timeout=5)
    assert reason == "exit-key"
    assert bytes(board.received) == b"1+1\r\x03"
    assert after == before


def test_board_going_away_ends_the_console() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    ser = serial.serial_for_url(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.05)
    conn, _ = server.accept()
    conn.close()  # unplugged
    server.close()

    def idle_terminal():  # type: ignore[no-untyped-def]
        while True:  # a user who types nothing: only the lost port can end the session
            threading.Event().wait(0.01)
            yield b""

    try:
        assert run_console(ser, idle_terminal(), io.BytesIO()) == "port-closed"
    finally:
        ser.close()


# -- connecting to a device that restarts (after an OTA update) -------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_later(port: int, delay: float, greet: bytes, conns: list[socket.socket]) -> threading.Thread:
    """After ``delay`` s, listen on ``port`` and greet each client with ``greet`` (b"": close it at
    once, as an old bundle's socket does in its last moment)."""
    import time

    def run() -> None:
        time.sleep(delay)
        with socket.create_server(("127.0.0.1", port)) as srv:
            srv.settimeout(5)
            c, _ = srv.accept()
            conns.append(c)
            if greet:
                c.sendall(greet)
            else:
                c.close()
                c2, _ = srv.accept()  # the client comes back: this one greets
                conns.append(c2)
                c2.sendall(b"clawgen agent x - /help for commands\r\n")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_connect_waits_for_a_device_that_is_still_booting() -> None:
    from clawgen.image.monitor import connect_tcp

    port = _free_port()
    conns: list[socket.socket] = []
    t = _serve_later(port, 0.6, b"hi", conns)
    sock = connect_tcp("127.0.0.1", port, "a Telnet console", wait=10)
    t.join(5)
    sock.close()
    assert len(conns) == 1
    with pytest.raises(UsageError, match="refused the connection"):
        connect_tcp("127.0.0.1", _free_port(), "a Telnet console", wait=0.5)


def test_connect_greeted_passes_over_a_socket_closed_without_a_word() -> None:
    from clawgen.image.monitor import SocketPort, connect_greeted

    port = _free_port()
    conns: list[socket.socket] = []
    t = _serve_later(port, 0.3, b"", conns)
    sock, first = connect_greeted("127.0.0.1", port, "a Telnet console", wait=10)
    t.join(5)
    assert first.startswith(b"clawgen agent x") and len(conns) == 2
    port_ = SocketPort(sock, first)
    assert port_.read(1) == first  # the greeting is the console's first output, not lost
    sock.close()


def test_connect_greeted_takes_a_silent_device_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from clawgen.image import monitor

    monkeypatch.setattr(monitor, "GREETING_SECONDS", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        sock, first = monitor.connect_greeted("127.0.0.1", srv.getsockname()[1], "a Telnet console", wait=5)
        sock.close()
    assert first == b""


@pytest.mark.parametrize("error", [TimeoutError("timed out"), OSError(113, "No route to host"),
                                   socket.gaierror(-2, "Name or service not known")])
def test_connect_with_a_wait_retries_a_device_that_is_still_joining_the_network(
        monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    # A board rebooting after an update: no answer, no route, or its .local name unknown for a
    # while. Without a wait that is one error at once (clawgen logs); with one, tried again.
    from clawgen.image import monitor

    calls: list[float] = []

    def create_connection(addr: object, timeout: float = 0) -> str:
        calls.append(timeout)
        if len(calls) < 3:
            raise error
        return "connected"

    monkeypatch.setattr(socket, "create_connection", create_connection)
    assert monitor.connect_tcp("board.local", 2323, "a Telnet console", wait=30) == "connected"
    assert len(calls) == 3 and all(t <= monitor.TELNET_CONNECT_TIMEOUT for t in calls)
    calls.clear()
    with pytest.raises(UsageError):
        monitor.connect_tcp("board.local", 2323, "a Telnet console")  # no wait: one try
    assert len(calls) == 1


def _peer(script) -> tuple[socket.socket, threading.Thread]:
    """Our end of a socket pair whose other end runs script(sock) in a thread (a device)."""
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=script, args=(theirs,), daemon=True)
    t.start()
    return ours, t


def test_a_devices_refusal_reaches_the_terminal_without_its_escape_sequences() -> None:
    from clawgen.image.monitor import telnet_login

    def device(s: socket.socket) -> None:
        s.sendall(b"password: ")
        s.recv(100)
        s.sendall(b"[error] \x1b]0;owned\x07\x1b[2Jwrong password\r\n")
        s.close()

    ours, t = _peer(device)
    with pytest.raises(UsageError) as e:
        telnet_login(ours, b"", b"secret-pw", "the device")
    t.join(5)
    ours.close()
    assert "the device refused" in str(e.value) and "[error] ?]0;owned??[2Jwrong password" in str(e.value)
    assert "\x1b" not in str(e.value)


def test_a_greeting_that_never_ends_its_line_is_read_within_a_bound() -> None:
    from clawgen.image.monitor import GREETING_MAX, telnet_login

    def device(s: socket.socket) -> None:
        try:
            for _ in range(64):  # 64 KB without a line end, and more if it were read
                s.sendall(b"x" * 1024)
        except OSError:
            pass

    ours, t = _peer(device)
    first = telnet_login(ours, b"", b"secret-pw", "the device")
    ours.close()
    t.join(5)
    assert GREETING_MAX <= len(first) < GREETING_MAX + 4096  # taken as the greeting; no password sent


def test_a_telnet_peer_s_escape_sequences_do_not_reach_the_terminal() -> None:
    # `clawgen logs --host`: whatever answers on the device's name (a machine impersonating it on the
    # network) wrote its bytes to the terminal as sent: an OSC title or clipboard write, a screen
    # clear, an 8-bit CSI. The agent's own console never sends them (the device filters its output).
    import io

    from clawgen.image import monitor

    shown = "agent ready: 23 °C, ok\tdone\r\n> "
    payload = (b"\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J" + "\u009b31m".encode() + b"\x00\x7f"
               + shown.encode() + b"\xff")
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def device() -> None:
            conn, _ = srv.accept()
            with conn:
                for i in range(0, len(payload), 3):  # (a multi-byte character split between reads)
                    conn.sendall(payload[i:i + 3])
                    time.sleep(0.002)

        t = threading.Thread(target=device, daemon=True)
        t.start()
        out = io.BytesIO()
        reason = monitor.telnet_console("127.0.0.1", port, stdin=io.BytesIO(b""), stdout=out, note=lambda s: None,
                                        password=None)
        t.join(5)
    got = out.getvalue().decode("utf-8")
    assert reason == "closed-by-device"
    assert got == "?]0;owned??]52;c;ZXZpbA==??[2J?31m??" + shown + "\ufffd", repr(got)
