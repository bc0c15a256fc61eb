"""``--host`` values: ``HOST``, ``HOST:PORT``, a bare IPv6 address or ``[IPV6]:PORT``.

One parser for every command that reaches a device over the network (``ota``, ``run --host``,
``logs``); a malformed value is invalid input (``InputError``, exit 2).
"""

from __future__ import annotations

from clawgen.diagnostics import InputError


def parse_host(text: str, default_port: int | None) -> tuple[str, int | None]:
    """``text`` -> (host, port); the port is ``default_port`` when ``text`` gives none."""
    host, port = text.strip(), None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise InputError(f"--host {text}: missing ']' after the IPv6 address")
        rest, host = host[end + 1:], host[1:end]
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"--host {text}: expected [ADDRESS]:PORT")
            port = rest[1:]
    elif host.count(":") == 1:  # (more than one: a bare IPv6 address)
        host, port = host.split(":")
    if not host:
        raise InputError(f"--host {text!r}: no host name")
    if port is None:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--host {text}: the port must be a number from 1 to 65535, not {port!r}")
    return host, int(port)
