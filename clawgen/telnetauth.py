"""The Telnet password's wire form, shared by the device (templates/app/claw_login.py.j2, rendered
from here) and the host's console (clawgen.image.monitor.telnet_login): one source for both ends."""

from __future__ import annotations

# What the device sends a new connection; the console answers it with the password line.
PASSWORD_PROMPT = b"password: "
