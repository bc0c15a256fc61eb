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
from typing import Any, BinaryIO, NamedTuple

from clawgen.diagnostics import peer_text, terminal_safe
from clawgen.telnetauth import PASSWORD_PROMPT  # the device's question for the Telnet password

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
            note: Callable[[str], Any] = lambda s: print(s, file=sys.stderr), wait: float = 0.0) -> str:
    """Run the console on ``port``; UsageError if the port cannot be opened.

    ``wait``: keep trying to open the port that long (right after flashing, a board on its own USB
    port re-enumerates when it resets, so its port is briefly gone)."""
    from serial import SerialException

    from clawgen.diagnostics import UsageError
    from clawgen.image.flash import explain_open_failure

    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    end = time.monotonic() + wait
    while True:
        try:
            ser = open_console(port, baud)
            break
        except ValueError as e:  # a malformed port URL: no use retrying
            raise explain_open_failure(str(e), port) from e
        except (SerialException, OSError) as e:
            if time.monotonic() >= end:
                raise explain_open_failure(str(e), port) from e
            time.sleep(0.2)
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



# -- the agent's Telnet console (`clawgen logs --host`, `clawgen run --host`) ---------------------

TELNET_CONNECT_TIMEOUT = 10.0
# After an update: how long a new connection may stay silent before the console takes it as it is
# (the agent greets a Telnet client at once; see connect_greeted).
GREETING_SECONDS = 3.0


class SocketPort:
    """A TCP connection that `run_console` drives like a serial port.

    ``read`` returns b"" when nothing arrived within the poll interval and raises EOFError when the
    device closed the connection (``closed_by_peer`` tells an orderly close from a lost link);
    ``write`` sends line ends as CR LF, as a Telnet client does.
    """

    in_waiting = 0

    def __init__(self, sock: Any, first: bytes = b"") -> None:
        self.sock = sock
        self.sock.settimeout(POLL_SECONDS)
        self.closed_by_peer = False
        self.first = first  # bytes already read (connect_greeted), returned by the first read

    def read(self, n: int) -> bytes:
        if self.first:
            data, self.first = self.first, b""
            return data
        try:
            data = self.sock.recv(max(n, 4096))
        except TimeoutError:
            return b""
        if not data:
            self.closed_by_peer = True
            raise EOFError("connection closed by the device")
        return data

    def write(self, data: bytes) -> None:
        self.sock.sendall(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def connect_tcp(host: str, port: int, what: str, timeout: float = TELNET_CONNECT_TIMEOUT,
                wait: float = 0.0) -> Any:
    """A TCP connection to the device; UsageError with a one-line cause when it cannot be made.
    ``wait``: keep trying that long (a device restarting after an update: refused while it boots,
    no answer or no route while it joins the network again; a name it announces over mDNS may be
    unknown for a while too)."""
    import socket

    from clawgen.diagnostics import UsageError

    end = time.monotonic() + wait
    while True:
        try:
            left = end - time.monotonic()
            return socket.create_connection((host, port), timeout=min(timeout, max(left, 1.0)) if wait else timeout)
        except ConnectionRefusedError:
            if time.monotonic() >= end:
                raise UsageError(f"{host}:{port} refused the connection: the device is up but does not serve "
                                 f"{what} on port {port} (is this the right device and port, and was it flashed "
                                 "with this spec?)") from None
        except socket.gaierror as e:
            if time.monotonic() >= end:
                hint = (" (.local names need mDNS on this computer: give the device's IP address with --host)"
                        if host.endswith(".local") else "")
                raise UsageError(f"cannot resolve host {host}: {e.strerror or e}{hint}") from None
        except TimeoutError:
            if time.monotonic() >= end:
                raise UsageError(f"no answer from {host}:{port}{f' within {timeout:g} s' if not wait else ''}: "
                                 "the device is off, not on this network, or a firewall drops the connection"
                                 ) from None
        except OSError as e:
            if time.monotonic() >= end:
                raise UsageError(f"cannot reach {host}:{port}: {e.strerror or e}") from None
        time.sleep(0.2)


def connect_greeted(host: str, port: int, what: str, wait: float) -> tuple[Any, bytes]:
    """``connect_tcp`` with ``wait`` for a device that is restarting (after an update), and the
    device's first bytes: the agent greets a Telnet client at once. A connection that ends before
    any byte came was made to the old bundle's listening socket in its last moment (the system
    accepts it, nobody serves it): it is dropped and made again within ``wait``. A connection that
    stays silent for GREETING_SECONDS is taken as it is (b"")."""
    from clawgen.diagnostics import UsageError

    end = time.monotonic() + wait
    while True:
        sock = connect_tcp(host, port, what, wait=max(0.0, end - time.monotonic()))
        sock.settimeout(GREETING_SECONDS)
        try:
            first = sock.recv(4096)
        except TimeoutError:
            return sock, b""
        except OSError:  # reset: the old bundle's socket went away
            first = b""
        if first:
            return sock, first
        sock.close()
        if time.monotonic() >= end:
            raise UsageError(f"{host}:{port} closed every connection for {wait:g} s without a word: the device "
                             f"keeps restarting, or something else serves {what} on that port") from None
        time.sleep(0.2)


LOGIN_SECONDS = 5.0  # how long the device may take to answer the password
GREETING_MAX = 4096  # bytes of the prompt or the password's answer read at most (a peer that never ends its line)


class PasswordOrigin(NamedTuple):
    """Where a Telnet password came from: how a refusal names it, and what to try then."""

    whose: str
    hint: str


SPEC_PASSWORD = PasswordOrigin("the Telnet password from secrets.yaml (transports.telnet.password)",
                               "is the board running this spec's build, flashed with these secrets?")
TYPED_PASSWORD = PasswordOrigin("the password you typed", "try again")


def telnet_login(sock: Any, first: bytes, password: bytes | None, where: str,
                 origin: PasswordOrigin = SPEC_PASSWORD) -> bytes:
    """Answer the device's password prompt on a new Telnet connection. ``first``: bytes already
    read. Returns what to show the user first: the device's greeting after the password, or, when
    the device asks for no password, what it sent (the password is then not sent: it goes only to a
    device that asks for it). Without ``password`` the prompt is left for the user to answer.
    UsageError when the device refuses the password (``origin`` names it there)."""
    from clawgen.diagnostics import UsageError

    data = first
    sock.settimeout(GREETING_SECONDS)
    with contextlib.suppress(TimeoutError):
        while not data.endswith(PASSWORD_PROMPT) and b"\n" not in data and len(data) < GREETING_MAX:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.endswith(PASSWORD_PROMPT) or password is None:
        return data
    sock.sendall(password + b"\r\n")
    reply = b""
    end = time.monotonic() + LOGIN_SECONDS
    try:
        while b"\n" not in reply and len(reply) < GREETING_MAX and (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    except TimeoutError:
        pass
    except OSError:  # reset: closed with our bytes unread
        pass
    if reply.startswith(b"[error]") or not reply:
        said = peer_text(reply) or "it closed the connection"
        raise UsageError(f"{where} refused {origin.whose}: {said}; {origin.hint}")
    return reply


CONSOLE_KEEP = "\n\r\t\b"  # the controls a console's output keeps (line ends, tab, backspace)


class TerminalSafe:
    """A byte stream that writes what a network peer sent to ``out`` as the terminal may show it:
    what is not printable as "?" but line ends, tab and backspace (diagnostics.terminal_safe), bytes
    that are not UTF-8 as U+FFFD (decoded incrementally: a character split between two reads stays
    whole). The agent's own console never sends those (the device filters its output,
    claw_log.shown); a machine answering in its place on the network must not drive the terminal
    (an escape sequence can set the window title, write the clipboard, redraw the screen)."""

    def __init__(self, out: BinaryIO) -> None:
        import codecs

        self.out = out
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: bytes) -> int:
        self.out.write(terminal_safe(self._decoder.decode(data), CONSOLE_KEEP).encode("utf-8"))
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def telnet_console(host: str, port: int, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                   note: Callable[[str], Any] = lambda s: print(s, file=sys.stderr), wait: float = 0.0,
                   password: bytes | None = None) -> str:
    """The agent's Telnet console on ``host:port``: typed lines go to the device (line-edited by the
    terminal, as a Telnet client would send them), its output to stdout. End of input (Ctrl-D) or
    Ctrl-C leaves; the device closing the connection (`/quit`) ends it normally.

    ``password``: the answer to the device's password prompt (``telnet_login``).

    Returns why it stopped: "end-of-input", "closed-by-device" or "interrupted"."""
    from clawgen.diagnostics import UsageError

    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    if wait > 0:  # a device restarting: not the old bundle's last breath (connect_greeted)
        sock, first = connect_greeted(host, port, "a Telnet console", wait)
    else:
        sock, first = connect_tcp(host, port, "a Telnet console"), b""
    is_tty = hasattr(stdin, "fileno") and _isatty(stdin)
    import getpass  # (outside the try below: nothing here guards an import)

    try:
        first = telnet_login(sock, first, password, f"{host}:{port}")
        if password is None and first.endswith(PASSWORD_PROMPT) and is_tty:
            # The device asks and the spec has no password (a board flashed from another spec):
            # asked here without echo, rather than typed into the console where it would show.
            typed = getpass.getpass(f"{host}:{port} asks for its Telnet password: ")
            first = telnet_login(sock, first, typed.encode(), f"{host}:{port}", TYPED_PASSWORD)
    except BaseException:
        sock.close()
        raise
    conn = SocketPort(sock, first)
    stdout = TerminalSafe(stdout)  # type: ignore[assignment]
    note(f"--- clawgen console on {host}:{port} (Telnet); Ctrl-D or Ctrl-C to quit ---")
    keys = stream_keys(stdin)
    try:
        reason = run_console(conn, keys, stdout, exit_key=b"\x1d",
                             linger=0.0 if is_tty else PIPE_LINGER_SECONDS)
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        keys.close()
        conn.close()
    if reason == "port-closed":
        if not conn.closed_by_peer:
            raise UsageError(f"lost the connection to {host}:{port}: the device restarted or left the network; "
                             "run `clawgen logs` again")
        reason = "closed-by-device"
        note("\n--- the device closed the connection ---")
    else:
        note("\n--- console closed ---")
    return reason
