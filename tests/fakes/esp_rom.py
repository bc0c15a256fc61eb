"""An emulated ESP32-S3 ROM serial bootloader (download mode), served over TCP.

The real esptool talks to it through pyserial's ``socket://127.0.0.1:PORT`` URL, so a
test exercises esptool's own protocol code end to end: SLIP framing, SYNC, register
reads/writes (including the SPI peripheral's "user command" sequence esptool uses to
read the flash JEDEC ID and SFDP), GET_SECURITY_INFO chip detection, SPI_SET_PARAMS,
SPI_ATTACH, FLASH_BEGIN/DATA/END, FLASH_DEFL_BEGIN/DATA/END, SPI_FLASH_MD5 and
CHANGE_BAUDRATE. Commands only esptool's flasher stub implements (ERASE_FLASH,
ERASE_REGION, READ_FLASH, ...) get the ROM's "invalid message" answer.

esptool's default path uploads its flasher stub to RAM (MEM_BEGIN/MEM_DATA/MEM_END) and
runs it; the emulator accepts the upload (checksummed blocks), greets with "OHAI" as the
stub does, and from then on answers with the stub's conventions: 2 status bytes, MD5 as
16 raw bytes, SYNC value 0, ERASE_FLASH / ERASE_REGION, flash access without SPI_ATTACH,
FLASH_DEFL_BEGIN taking the exact uncompressed size. The uploaded code is not executed.

Every protocol fact here is taken from esptool 5.6's loader.py / targets/esp32s3.py:
- request  ``<BBHI``: 0x00, op, data length, checksum; then data
- response ``<BBHI``: 0x01, op, data length, value; then data, then status bytes.
  ROMs after the ESP8266 send 4 status bytes (status, error, 2 reserved); esptool reads
  the first two, right after any command-specific payload.
- error codes are ROM codes 0x05 (invalid message), 0x06 (failed), 0x07 (checksum) ...
  (esptool.util.FatalError.WithResult shows them as 0x1xx).
- the ROM answers one SYNC with eight responses and a non-zero value (the stub's is 0).
- SPI_FLASH_MD5 from the ROM is 32 lowercase hex ASCII characters (the stub: 16 bytes).
- the ROM erases the whole region at FLASH_BEGIN / FLASH_DEFL_BEGIN.

The flash behaves like NOR flash: erasing sets bytes to 0xFF, programming can only clear
bits (new = old & data), so a write without its erase shows up as corrupt content.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field

# Opcodes (esptool ESPLoader.ESP_CMDS)
FLASH_BEGIN = 0x02
FLASH_DATA = 0x03
FLASH_END = 0x04
MEM_BEGIN = 0x05
MEM_END = 0x06
MEM_DATA = 0x07
SYNC = 0x08
WRITE_REG = 0x09
READ_REG = 0x0A
SPI_SET_PARAMS = 0x0B
SPI_ATTACH = 0x0D
CHANGE_BAUDRATE = 0x0F
FLASH_DEFL_BEGIN = 0x10
FLASH_DEFL_DATA = 0x11
FLASH_DEFL_END = 0x12
SPI_FLASH_MD5 = 0x13
GET_SECURITY_INFO = 0x14

COMMAND_NAMES = {
    FLASH_BEGIN: "FLASH_BEGIN", FLASH_DATA: "FLASH_DATA", FLASH_END: "FLASH_END",
    MEM_BEGIN: "MEM_BEGIN", MEM_END: "MEM_END", MEM_DATA: "MEM_DATA", SYNC: "SYNC",
    WRITE_REG: "WRITE_REG", READ_REG: "READ_REG", SPI_SET_PARAMS: "SPI_SET_PARAMS",
    SPI_ATTACH: "SPI_ATTACH", CHANGE_BAUDRATE: "CHANGE_BAUDRATE",
    FLASH_DEFL_BEGIN: "FLASH_DEFL_BEGIN", FLASH_DEFL_DATA: "FLASH_DEFL_DATA",
    FLASH_DEFL_END: "FLASH_DEFL_END", SPI_FLASH_MD5: "SPI_FLASH_MD5",
    GET_SECURITY_INFO: "GET_SECURITY_INFO",
    0xD0: "ERASE_FLASH", 0xD1: "ERASE_REGION", 0xD2: "READ_FLASH", 0xD3: "RUN_USER_CODE",
}
ERASE_FLASH = 0xD0  # stub only
ERASE_REGION = 0xD1  # stub only
STUB_GREETING = b"OHAI"

# ROM error codes (second status byte)
ERR_INVALID_MESSAGE = 0x05
ERR_FAILED = 0x06
ERR_CHECKSUM = 0x07
ERR_DEFLATE = 0x0B

CHECKSUM_SEED = 0xEF  # ESPLoader.ESP_CHECKSUM_MAGIC
SECTOR = 0x1000
SYNC_PAYLOAD = b"\x07\x07\x12\x20" + 32 * b"\x55"
ROM_SYNC_VALUE = 0x20120707  # any non-zero value means "ROM, not stub" to esptool

# ESP32-S3 SPI0/1 peripheral registers (esptool targets/esp32s3.py)
SPI_REG_BASE = 0x60002000
SPI_CMD_REG = SPI_REG_BASE + 0x00
SPI_ADDR_REG = SPI_REG_BASE + 0x04
SPI_USR2_REG = SPI_REG_BASE + 0x20
SPI_W0_REG = SPI_REG_BASE + 0x58
SPI_CMD_USR = 1 << 18
CHIP_DETECT_MAGIC_REG_ADDR = 0x40001000

# SPI flash commands esptool sends through the user-command registers
SPIFLASH_RDID = 0x9F
SPIFLASH_RDSFDP = 0x5A
SFDP_SIGNATURE = 0x50444653  # "SFDP"

# JEDEC capacity byte for each flash size (esptool cmds.DETECTED_FLASH_SIZES)
JEDEC_CAPACITY = {0x100000: 0x14, 0x200000: 0x15, 0x400000: 0x16, 0x800000: 0x17, 0x1000000: 0x18}
GIGADEVICE = 0xC8

MB = 1024 * 1024


def checksum(data: bytes) -> int:
    state = CHECKSUM_SEED
    for b in data:
        state ^= b
    return state


def slip_encode(packet: bytes) -> bytes:
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class SlipDecoder:
    """Incremental SLIP decoder: feed bytes, get complete packets."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._in_packet = False

    def feed(self, data: bytes) -> list[bytes]:
        packets: list[bytes] = []
        self._pending += data
        while True:
            if not self._in_packet:
                start = self._pending.find(b"\xc0")
                if start < 0:
                    self._pending.clear()  # noise between packets is ignored, as the ROM does
                    return packets
                del self._pending[:start + 1]
                self._in_packet = True
            end = self._pending.find(b"\xc0")
            if end < 0:
                return packets
            raw = bytes(self._pending[:end])
            del self._pending[:end + 1]
            if not raw:
                continue  # back-to-back delimiters: this one opens the packet
            self._in_packet = False
            packets.append(raw.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb"))


class RomError(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


@dataclass
class _WriteSession:
    offset: int
    block_size: int
    num_blocks: int
    next_seq: int = 0
    written: int = 0
    inflater: zlib._Decompress | None = None  # set for FLASH_DEFL_* sessions


@dataclass
class EspRomEmulator:
    """The ROM download-mode bootloader of an ESP32-S3 with ``flash_size`` bytes of flash.

    ``chip_id`` is what GET_SECURITY_INFO reports (9 = ESP32-S3; 5 would pose as an
    ESP32-C3). With ``chip_id=None`` the ROM behaves like a chip without the command
    (ESP32, ESP8266) and answers the magic-value register instead. ``silent=True``
    accepts connections but never answers: a board that is not in download mode.
    """

    flash_size: int = 8 * MB
    chip_id: int | None = 9
    magic_value: int = 0
    silent: bool = False
    accepts_stub: bool = True  # False: MEM_* answered as invalid (a ROM that refuses RAM loading)
    fill: int = 0xA5  # flash content before the test: "old firmware", not erased
    flash: bytearray = field(init=False)
    commands: list[str] = field(init=False, default_factory=list)
    md5_requests: list[tuple[int, int]] = field(init=False, default_factory=list)
    erased: list[tuple[int, int]] = field(init=False, default_factory=list)
    writes: list[tuple[int, int]] = field(init=False, default_factory=list)
    baud_changes: list[int] = field(init=False, default_factory=list)
    attached: bool = field(init=False, default=False)
    stub_running: bool = field(init=False, default=False)
    stub_code_bytes: int = field(init=False, default=0)  # bytes uploaded to RAM
    bytes_received: int = field(init=False, default=0)  # on the wire, SLIP framing included

    def __post_init__(self) -> None:
        self.flash = bytearray([self.fill]) * self.flash_size
        self._regs: dict[int, int] = {}
        self._session: _WriteSession | None = None
        self._mem: dict[str, int] | None = None  # MEM_BEGIN state
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, name="esp-rom-emulator", daemon=True)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.getsockname()[:2]
        return f"socket://{host}:{port}"

    def start(self) -> EspRomEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def __enter__(self) -> EspRomEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ran(self, name: str) -> bool:
        with self._lock:
            return name in self.commands

    # -- transport -----------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._serve_connection(conn)

    def _serve_connection(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answer each command at once
        decoder = SlipDecoder()
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return  # esptool closed the port
            self.bytes_received += len(data)
            if self.silent:
                continue
            for packet in decoder.feed(data):
                for response in self._handle(packet):
                    try:
                        conn.sendall(slip_encode(response))
                    except OSError:
                        return

    # -- protocol ------------------------------------------------------------------

    def _handle(self, packet: bytes) -> list[bytes]:
        if len(packet) < 8 or packet[0] != 0x00:
            return []  # not a request: the ROM ignores it
        _, op, size, chk = struct.unpack("<BBHI", packet[:8])
        data = packet[8:]
        with self._lock:
            self.commands.append(COMMAND_NAMES.get(op, f"0x{op:02x}"))
            try:
                if len(data) != size:
                    raise RomError(ERR_INVALID_MESSAGE)
                if op == SYNC:
                    if data != SYNC_PAYLOAD:
                        raise RomError(ERR_INVALID_MESSAGE)
                    value = 0 if self.stub_running else ROM_SYNC_VALUE
                    return [self._response(op, b"", value=value)] * 8
                if op == MEM_END and not self.stub_running and self.accepts_stub:
                    return self._mem_end(data)
                value, payload = self._dispatch(op, data, chk)
            except RomError as e:
                return [self._response(op, b"", status=1, error=e.code)]
        return [self._response(op, payload, value=value)]

    def _response(self, op: int, payload: bytes, value: int = 0, status: int = 0, error: int = 0) -> bytes:
        # the ROM sends 2 reserved bytes after status and error; the stub does not
        status_bytes = bytes([status, error]) if self.stub_running else bytes([status, error, 0, 0])
        body = payload + status_bytes
        return struct.pack("<BBHI", 0x01, op, len(body), value) + body

    def _mem_end(self, data: bytes) -> list[bytes]:
        if len(data) != 8 or self._mem is None or self._mem["next_seq"] != self._mem["blocks"]:
            raise RomError(ERR_FAILED)
        no_entry, entry = struct.unpack("<II", data)
        self._mem = None
        done = self._response(MEM_END, b"")
        if no_entry or entry == 0:
            return [done]
        # jump to the uploaded flasher stub: it says hello, then speaks the stub protocol
        self.stub_running = True
        return [done, STUB_GREETING]

    def _dispatch(self, op: int, data: bytes, chk: int) -> tuple[int, bytes]:
        if op == READ_REG:
            (addr,) = struct.unpack("<I", data)
            return self._read_reg(addr), b""
        if op == WRITE_REG:
            if len(data) % 16:
                raise RomError(ERR_INVALID_MESSAGE)
            for i in range(0, len(data), 16):
                addr, value, mask, _delay = struct.unpack("<IIII", data[i:i + 16])
                self._write_reg(addr, value, mask)
            return 0, b""
        if op == GET_SECURITY_INFO:
            if self.chip_id is None:
                raise RomError(ERR_INVALID_MESSAGE)
            # flags, flash_crypt_cnt, 7 key purposes, chip_id, api_version
            return 0, struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.chip_id, 0)
        if op == SPI_SET_PARAMS:
            _id, total, _block, sector, _page, _mask = struct.unpack("<IIIIII", data)
            if sector != SECTOR or total == 0:
                raise RomError(ERR_FAILED)
            return 0, b""
        if op == SPI_ATTACH:
            if len(data) != (4 if self.stub_running else 8):  # the ROM takes an extra "is legacy" word
                raise RomError(ERR_INVALID_MESSAGE)
            self.attached = True
            return 0, b""
        if op == CHANGE_BAUDRATE:
            new_baud, _old = struct.unpack("<II", data)
            self.baud_changes.append(new_baud)
            return 0, b""
        if op in (FLASH_BEGIN, FLASH_DEFL_BEGIN):
            return self._flash_begin(op, data)
        if op in (FLASH_DATA, FLASH_DEFL_DATA):
            return self._flash_data(op, data, chk)
        if op in (FLASH_END, FLASH_DEFL_END):
            self._session = None
            return 0, b""
        if op == SPI_FLASH_MD5:
            addr, size, _, _ = struct.unpack("<IIII", data)
            self._check_range(addr, size)
            self.md5_requests.append((addr, size))
            md5 = hashlib.md5(self.flash[addr:addr + size])
            return 0, md5.digest() if self.stub_running else md5.hexdigest().encode("ascii")
        if op in (MEM_BEGIN, MEM_DATA) and not self.stub_running and self.accepts_stub:
            return self._mem_load(op, data, chk)
        if op == ERASE_FLASH and self.stub_running:
            self._erase(0, self.flash_size)
            return 0, b""
        if op == ERASE_REGION and self.stub_running:
            offset, size = struct.unpack("<II", data)
            if offset % SECTOR or size % SECTOR:
                raise RomError(ERR_FAILED)
            self._erase(offset, size)
            return 0, b""
        # stub-only commands in the ROM, ROM-only ones in the stub, and anything unknown
        raise RomError(ERR_INVALID_MESSAGE)

    def _mem_load(self, op: int, data: bytes, chk: int) -> tuple[int, bytes]:
        if op == MEM_BEGIN:
            size, blocks, block_size, _load_addr = struct.unpack("<IIII", data)
            self._mem = {"size": size, "blocks": blocks, "block_size": block_size, "next_seq": 0}
            return 0, b""
        if self._mem is None:
            raise RomError(ERR_FAILED)
        size, seq, _, _ = struct.unpack("<IIII", data[:16])
        block = data[16:]
        if size != len(block) or size > self._mem["block_size"]:
            raise RomError(ERR_INVALID_MESSAGE)
        if checksum(block) != chk:
            raise RomError(ERR_CHECKSUM)
        if seq != self._mem["next_seq"]:
            raise RomError(ERR_FAILED)
        self._mem["next_seq"] += 1
        self.stub_code_bytes += len(block)
        return 0, b""

    def _erase(self, offset: int, size: int) -> None:
        end = min(-(-(offset + size) // SECTOR) * SECTOR, self.flash_size)
        self._check_range(offset, end - offset)
        if end > offset:
            self.flash[offset:end] = b"\xff" * (end - offset)
            self.erased.append((offset, end - offset))

    def _read_reg(self, addr: int) -> int:
        if addr == CHIP_DETECT_MAGIC_REG_ADDR and self.chip_id is None:
            return self.magic_value
        return self._regs.get(addr, 0)  # eFuses read as 0: no security features

    def _write_reg(self, addr: int, value: int, mask: int) -> None:
        old = self._regs.get(addr, 0)
        self._regs[addr] = (old & ~mask) | (value & mask)
        if addr == SPI_CMD_REG and self._regs[addr] & SPI_CMD_USR:
            self._run_spi_user_command()

    def _run_spi_user_command(self) -> None:
        command = self._regs.get(SPI_USR2_REG, 0) & 0xFF
        addr = self._regs.get(SPI_ADDR_REG, 0)  # ESP32-S3: address is LSB-aligned
        if command == SPIFLASH_RDID:
            result = GIGADEVICE | (0x40 << 8) | (JEDEC_CAPACITY.get(self.flash_size, 0x17) << 16)
        elif command == SPIFLASH_RDSFDP:
            result = SFDP_SIGNATURE if addr == 0 else 0
        else:
            result = 0  # status reads, reset enable/reset: nothing to report
        self._regs[SPI_W0_REG] = result
        self._regs[SPI_CMD_REG] &= ~SPI_CMD_USR  # command done

    def _check_range(self, addr: int, size: int) -> None:
        if addr < 0 or size < 0 or addr + size > self.flash_size:
            raise RomError(ERR_FAILED)

    def _flash_begin(self, op: int, data: bytes) -> tuple[int, bytes]:
        if not self.attached and not self.stub_running:
            raise RomError(ERR_FAILED)  # the ROM cannot reach the flash before SPI_ATTACH
        if len(data) not in (16, 20):
            raise RomError(ERR_INVALID_MESSAGE)
        # erase size: the ROM gets whole write blocks, the stub the exact byte count
        erase_size, num_blocks, block_size, offset = struct.unpack("<IIII", data[:16])
        if offset % SECTOR:
            raise RomError(ERR_FAILED)
        self._erase(offset, erase_size)
        self._session = _WriteSession(
            offset, block_size, num_blocks,
            inflater=zlib.decompressobj() if op == FLASH_DEFL_BEGIN else None,
        )
        return 0, b""

    def _flash_data(self, op: int, data: bytes, chk: int) -> tuple[int, bytes]:
        session = self._session
        if session is None or (op == FLASH_DEFL_DATA) != (session.inflater is not None):
            raise RomError(ERR_FAILED)
        size, seq, _, _ = struct.unpack("<IIII", data[:16])
        block = data[16:]
        if size != len(block):
            raise RomError(ERR_INVALID_MESSAGE)
        if checksum(block) != chk:
            raise RomError(ERR_CHECKSUM)
        if seq != session.next_seq or seq >= session.num_blocks:
            raise RomError(ERR_FAILED)
        if session.inflater is not None:
            try:
                block = session.inflater.decompress(block)
            except zlib.error as e:
                raise RomError(ERR_DEFLATE) from e
        addr = session.offset + session.written
        self._check_range(addr, len(block))
        # NOR programming: bits only go from 1 to 0
        n = len(block)
        old = int.from_bytes(self.flash[addr:addr + n], "little")
        self.flash[addr:addr + n] = (old & int.from_bytes(block, "little")).to_bytes(n, "little")
        self.writes.append((addr, len(block)))
        session.written += len(block)
        session.next_seq += 1
        return 0, b""
