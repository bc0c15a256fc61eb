"""Serial port discovery: which of the host's ports can be an ESP32 board.

A port is a candidate when its USB vendor/product ID is an Espressif chip's own USB
(Serial/JTAG or a MicroPython USB CDC device) or a USB-UART bridge that ESP32 dev boards
carry (CP210x, CH340/CH9102, FTDI). With exactly one candidate the commands use it; with
none or several they ask for ``--port``, naming what they found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from clawgen.diagnostics import UsageError
from clawgen.records import record

ESPRESSIF_VID = 0x303A  # every PID: USB-Serial/JTAG (0x1001), ROM USB-OTG, MicroPython CDC

# (vid, pid) of the USB-UART bridges found on ESP32 boards
USB_UART_BRIDGES: dict[tuple[int, int], str] = {
    (0x10C4, 0xEA60): "Silicon Labs CP210x",
    (0x10C4, 0xEA70): "Silicon Labs CP2105",
    (0x1A86, 0x7523): "WCH CH340",
    (0x1A86, 0x7522): "WCH CH340K",
    (0x1A86, 0x55D4): "WCH CH9102",
    (0x1A86, 0x55D3): "WCH CH343",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6010): "FTDI FT2232",
    (0x0403, 0x6014): "FTDI FT232H",
    (0x0403, 0x6015): "FTDI FT231X",
}

NO_PORT_HINT = ("connect the board by USB (and hold BOOT while pressing RESET if it does not "
                "enumerate), or pass --port")


@record
class PortCandidate:
    device: str
    kind: str  # what the USB IDs say it is
    description: str = ""

    def label(self) -> str:
        extra = f", {self.description}" if self.description and self.description != "n/a" else ""
        return f"{self.device} ({self.kind}{extra})"


def classify(vid: int | None, pid: int | None) -> str | None:
    """What a USB device is, if it can be an ESP32 board; None otherwise."""
    if vid is None or pid is None:
        return None
    if vid == ESPRESSIF_VID:
        return "Espressif USB-Serial/JTAG" if pid == 0x1001 else f"Espressif USB {pid:04x}"
    return USB_UART_BRIDGES.get((vid, pid))


def _list_comports() -> list[Any]:
    from serial.tools import list_ports

    return list(list_ports.comports())


def candidate_ports(comports: Callable[[], Iterable[Any]] = _list_comports) -> list[PortCandidate]:
    """Ports whose USB IDs match an ESP32 board, in device-name order."""
    found = []
    for info in comports():
        kind = classify(getattr(info, "vid", None), getattr(info, "pid", None))
        if kind is not None:
            found.append(PortCandidate(info.device, kind, getattr(info, "description", "") or ""))
    return sorted(found, key=lambda c: c.device)


def choose_port(explicit: str | None,
                comports: Callable[[], Iterable[Any]] = _list_comports) -> str:
    """The port to use: ``explicit`` when given, else the only candidate; UsageError otherwise."""
    if explicit:
        return explicit
    candidates = candidate_ports(comports)
    if len(candidates) == 1:
        return candidates[0].device
    if not candidates:
        raise UsageError(f"no serial port found: {NO_PORT_HINT}")
    listed = ", ".join(c.label() for c in candidates)
    raise UsageError(f"{len(candidates)} serial ports could be the board: {listed}; "
                     "pick one with --port")
