"""``--host`` values: ``HOST``, ``HOST:PORT``, a bare IPv6 address or ``[IPV6]:PORT``.

One parser for every command that reaches a device over the network (``ota``, ``run --host``,
``logs``); a malformed value is invalid input (``InputError``, exit 2): a port out of range, and
a host that is neither an IP address nor a DNS name (labels of letters, digits, ``-`` and ``_``,
1 to 63 characters each, 253 in all; a name in another script as IDNA spells it), which the
resolver would otherwise refuse with an error of its own codec.
"""

from __future__ import annotations

import ipaddress
import re

from clawgen.diagnostics import InputError, peer_text

MAX_NAME = 253  # a DNS name, dots included (RFC 1035)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def parse_host(text: str, default_port: int | None) -> tuple[str, int | None]:
    """``text`` -> (host, port); the port is ``default_port`` when ``text`` gives none."""
    host, port = text.strip(), None
    bracketed = host.startswith("[")
    if bracketed:
        end = host.find("]")
        if end < 0:
            raise InputError(f"--host {_shown(text)}: missing ']' after the IPv6 address")
        rest, host = host[end + 1:], host[1:end]
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"--host {_shown(text)}: expected [ADDRESS]:PORT")
            port = rest[1:]
    elif host.count(":") == 1:  # (more than one: a bare IPv6 address)
        host, port = host.split(":")
    if not host:
        raise InputError(f"--host {_shown(text)}: no host name")
    _check_host(host, text, bracketed)
    if port is None:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--host {_shown(text)}: the port must be a number from 1 to 65535, "
                         f"not {_shown(port)}")
    return host, int(port)


def _check_host(host: str, text: str, bracketed: bool) -> None:
    """Refuse a host that is neither an IP address nor a DNS name (InputError)."""
    if bracketed or ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(f"--host {_shown(text)}: {_shown(host)} is not an IPv6 address") from None
        return
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise InputError(f"--host {_shown(text)}: not a host name ({_shown(str(e.__cause__ or e))})") from None
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if len(name) > MAX_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        raise InputError(f"--host {_shown(text)}: not a host name or address (a name is made of labels of "
                         f"letters, digits and '-', 1 to 63 characters each and {MAX_NAME} in all, "
                         "separated by dots)")


def _shown(text: str) -> str:
    """A value of the user's for a message: control characters as "?", cut at 80 characters."""
    return peer_text(text, 80)
