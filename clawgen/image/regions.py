"""What `clawgen flash` writes: one image file at one flash offset, and the file that lists them.

Its own module so that both the flasher (image/flash.py) and the fleet builds (fleet.py, which
tells the flasher where a device's NVS image goes) use it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from clawgen.records import record

# The flash plan the image stage writes and the flasher and the web installer read (relative to
# the build directory).
FLASH_ARGS = Path("image") / "flash_args.json"


@record
class FlashRegion:
    name: str
    offset: int
    path: Path
