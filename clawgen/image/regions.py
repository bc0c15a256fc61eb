"""What `clawgen flash` writes: one image file at one flash offset.

Its own module so that both the flasher (image/flash.py) and the fleet builds (fleet.py, which
tells the flasher where a device's NVS image goes) use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FlashRegion:
    name: str
    offset: int
    path: Path
