"""`clawgen monitor`: a serial console to the board (the MicroPython REPL and its log).

Keystrokes go to the board byte for byte (in raw terminal mode, so Ctrl-C and Ctrl-D
reach MicroPython), the board's output goes to stdout, and Ctrl-] leaves. The loop takes
any iterable of input chunks and any writable output, so it is tested against pyserial's
``loop://`` port with scripted input; the terminal is switched to raw mode only when
stdin is a TTY.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

EXIT_KEY = b"\x1d"  # Ctrl-]
POLL_SECONDS = 0.1
PIPE_LINGER_SECONDS = 1.0  # piped input: how long a quiet board is still listened to


def run_console(ser: Any, keys: Iterable[bytes], out: BinaryIO,
                exit_key: bytes = EXIT_KEY, linger: float = 0.0) -> str:
    """Pump ``keys`` to ``ser`` and ``ser`` to ``out`` until ``exit_key``, end of input or a lost port.

    At the end of input (piped, not typed) the board's answer is still shown until it has
    been quiet for ``linger`` seconds. Returns why it stopped: "exit-key", "end-of-input"
    or "port-closed".
    """
    stop = threading.Event()
    lost: list[BaseException] = []
    last_rx = [time.monotonic()]

    def pump_output() -> None:
        while not stop.is_set():
            try:
                data = ser.read(ser.in_waiting or 1)
            except Exception as e:  # pyserial raises SerialException/OSError on unplug
                lost.append(e)
                stop.set()
                return
            if data:
                last_rx[0] = time.monotonic()
                out.write(data)
                out.flush()

    reader = threading.Thread(target=pump_output, name="clawgen-monitor-rx", daemon=True)
    reader.start()
    reason = "end-of-input"
    try:
        for chunk in keys:
            if stop.is_set():
                break
            head, found, _ = chunk.partition(exit_key)
            if head:
                try:
                    ser.write(head)
                    ser.flush()
                except Exception as e:
                    lost.append(e)
                    break
            if found:
                reason = "exit-key"
                break
        if reason == "end-of-input" and linger > 0:
            last_rx[0] = max(last_rx[0], time.monotonic())
            while not stop.is_set() and (idle := time.monotonic() - last_rx[0]) < linger:
                stop.wait(linger - idle)
    finally:
        stop.set()
        reader.join(timeout=2)
    if lost:
        return "port-closed"
    _drain(ser, out)
    return reason


def _drain(ser: Any, out: BinaryIO) -> None:
    """Show what the board already sent before we stopped reading."""
    with contextlib.suppress(Exception):
        waiting = ser.in_waiting
        if waiting:
            out.write(ser.read(waiting))
            out.flush()


def tty_keys(fd: int) -> Iterator[bytes]:
    """Keystrokes from a terminal in raw mode; the terminal is restored afterwards.

    Yields b"" at every idle poll so the console loop notices a lost port while waiting.
    """
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        while True:
            ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
            if not ready:
                yield b""
                continue
            data = os.read(fd, 1024)
            if not data:
                return
            yield data
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def windows_console_keys() -> Iterator[bytes]:
    """Keystrokes from a Windows console (msvcrt has no raw mode to restore)."""
    import msvcrt  # type: ignore[import-not-found]

    while True:
        if msvcrt.kbhit():
            yield msvcrt.getch()
        else:
            time.sleep(POLL_SECONDS)
            yield b""


def stream_keys(stream: BinaryIO) -> Iterator[bytes]:
    """Input from a pipe or file (not a terminal), as it arrives."""
    read = getattr(stream, "read1", stream.read)
    while True:
        data = read(1024)
        if not data:
            return
        yield data


def open_console(port: str, baud: int) -> Any:
    """Open ``port`` without touching DTR/RTS (which would reset many ESP32 boards)."""
    import serial

    ser = serial.serial_for_url(port, do_not_open=True, baudrate=baud, timeout=POLL_SECONDS,
                                exclusive=True)
    ser.dtr = False
    ser.rts = False
    ser.open()
    return ser


def monitor(port: str, baud: int, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
            note: Callable[[str], Any] = lambda s: print(s, file=sys.stderr)) -> str:
    """Run the console on ``port``; UsageError if the port cannot be opened."""
    from serial import SerialException

    from clawgen.diagnostics import UsageError
    from clawgen.image.flash import explain_open_failure

    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    try:
        ser = open_console(port, baud)
    except (SerialException, OSError, ValueError) as e:  # ValueError: a malformed port URL
        raise explain_open_failure(str(e), port) from e
    note(f"--- clawgen monitor on {port} at {baud} baud; Ctrl-] to quit ---")
    is_tty = hasattr(stdin, "fileno") and _isatty(stdin)
    if not is_tty:
        keys = stream_keys(stdin)
    elif os.name == "nt":
        keys = windows_console_keys()
    else:
        keys = tty_keys(stdin.fileno())
    try:
        reason = run_console(ser, keys, stdout, linger=0.0 if is_tty else PIPE_LINGER_SECONDS)
    finally:
        keys.close()  # restores the terminal now, not whenever the generator is collected
        ser.close()
    if reason == "port-closed":
        raise UsageError(f"lost the connection to {port}: the board was unplugged or reset; "
                         "run `clawgen monitor` again")
    note("\n--- monitor closed ---")
    return reason


def _isatty(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False

