"""`clawgen monitor`'s console loop against pyserial's loop:// port and a scripted TCP board."""

from __future__ import annotations

import io
import os
import socket
import threading

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
