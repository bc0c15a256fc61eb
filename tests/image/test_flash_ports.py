"""Picking the serial port: one candidate is used, none or several ask for --port."""

from __future__ import annotations

import errno
import os

import pytest
from serial.tools.list_ports_common import ListPortInfo

from clawgen.diagnostics import UsageError
from clawgen.image.flash import explain_open_failure
from clawgen.image.ports import candidate_ports, choose_port


def port(device: str, vid: int | None = None, pid: int | None = None, description: str = "") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, description or "n/a"
    return info


BUILTIN_UART = port("/dev/ttyS0")  # no USB IDs: a motherboard UART, never a board
BLUETOOTH = port("/dev/rfcomm0", 0x8087, 0x0A2B)
S3_USB = port("/dev/ttyACM0", 0x303A, 0x1001, "USB JTAG/serial debug unit")
CP2102 = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller")
CH340 = port("/dev/ttyUSB1", 0x1A86, 0x7523)


def listing(*ports: ListPortInfo):  # type: ignore[no-untyped-def]
    return lambda: list(ports)


def test_explicit_port_wins_without_looking() -> None:
    def no_listing() -> list[ListPortInfo]:
        raise AssertionError("must not enumerate ports when --port is given")

    assert choose_port("/dev/ttyXYZ", comports=no_listing) == "/dev/ttyXYZ"


def test_single_board_is_picked_among_other_ports() -> None:
    assert choose_port(None, comports=listing(BUILTIN_UART, BLUETOOTH, CP2102)) == "/dev/ttyUSB0"


def test_no_board_explains_how_to_connect() -> None:
    with pytest.raises(UsageError) as err:
        choose_port(None, comports=listing(BUILTIN_UART, BLUETOOTH))
    message = str(err.value)
    assert message.startswith("no serial port found") and "--port" in message and "BOOT" in message


def test_several_boards_are_listed() -> None:
    with pytest.raises(UsageError) as err:
        choose_port(None, comports=listing(CH340, S3_USB, CP2102))
    message = str(err.value)
    for device in ("/dev/ttyACM0", "/dev/ttyUSB0", "/dev/ttyUSB1"):
        assert device in message
    assert "--port" in message and "\n" not in message


def test_candidates_are_classified() -> None:
    kinds = {c.device: c.kind for c in candidate_ports(listing(S3_USB, CP2102, CH340, BLUETOOTH))}
    assert kinds == {"/dev/ttyACM0": "Espressif USB-Serial/JTAG", "/dev/ttyUSB0": "Silicon Labs CP210x",
                     "/dev/ttyUSB1": "WCH CH340"}


@pytest.mark.parametrize(("code", "expect"), [
    (errno.EACCES, "no permission"),
    (errno.EBUSY, "busy"),
    (errno.ENOENT, "does not exist"),
])
def test_open_failures_are_explained(code: int, expect: str) -> None:
    # the text pyserial and esptool produce: esptool's wrapper around pyserial's OSError text
    os_error = OSError(code, os.strerror(code))
    text = (f"Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n"
            f"(could not open port /dev/ttyUSB0: {os_error})\n")
    message = str(explain_open_failure(text, "/dev/ttyUSB0"))
    assert expect in message and "/dev/ttyUSB0" in message
