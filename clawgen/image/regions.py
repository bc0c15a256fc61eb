"""What `clawgen flash` writes: one image file at one flash offset.

Its own module so that both the flasher (image/flash.py) and the fleet builds (fleet.py, which
tells the flasher where a device's NVS image goes) use it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from clawgen.records import record


@record
class FlashRegion:
    name: str
    offset: int
    path: Path
