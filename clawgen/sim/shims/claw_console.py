# Simulator `claw_console`: the UART is the host's stdin/stdout (through the sim bridge).
import _simhost


def readline(timeout_ms=None):
    """One input line without its newline; None at end of input.

    With timeout_ms (a simulator extension), returns "" when nothing arrived in time.
    """
    r = _simhost.readline(-1 if timeout_ms is None else timeout_ms)
    if r == -1:
        return ""
    return r


def write(text):
    _simhost.out(text)


def flush():
    _simhost.flush()
