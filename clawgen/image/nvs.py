"""Secrets in an NVS partition image, made with Espressif's esp-idf-nvs-partition-gen.

Every secret is a blob in namespace "clawgen"; the device reads it with
`esp32.NVS("clawgen").get_blob(key, buf)` (ports/esp32/esp32_nvs.c opens the default "nvs"
partition, which nvs_get_blob reads whether the blob is stored single- or multi-page).
The generator runs in-process on an in-memory stream: secret values never touch a CSV
file, a temporary file or a log. Only the returned bytes (written as image/nvs.bin) hold them.

`decode_nvs_image` reads an image back (tests, and `clawgen` self-checks); it understands
the format the generator writes (v2 pages, namespaces, SZ/BLOB/BLOB_DATA/BLOB_IDX entries)
and optionally the XTS-AES encryption it applies.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from clawgen.diagnostics import UsageError
from clawgen.files import read_input_file

NAMESPACE = "clawgen"
KEY_MAX = 15  # NVS_KEY_NAME_MAX_SIZE - 1
PAGE_SIZE = 4096
ENTRY_SIZE = 32
ENTRIES_PER_PAGE = 126
FIRST_ENTRY = 64
ENCRYPTION_KEY_LEN = 64  # XTS-AES-256: 32-byte data key + 32-byte tweak key, as in nvs_keys

_PAGE_ACTIVE = 0xFFFFFFFE
_PAGE_FULL = 0xFFFFFFFC
_VERSION2 = 0xFE
_TYPE_U8, _TYPE_SZ, _TYPE_BLOB, _TYPE_BLOB_DATA, _TYPE_BLOB_IDX = 0x01, 0x21, 0x41, 0x42, 0x48


class NvsOverflowError(Exception):
    def __init__(self, needed: int, capacity: int):
        super().__init__(f"needs {needed} bytes, has {capacity}")
        self.needed = needed
        self.capacity = capacity


def write_private(path: Path, data: bytes) -> None:
    """Write a file that holds secrets (an NVS image, a merged image with one): readable and
    writable by its owner only (0600), also when the file was there before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def check_secret_keys(secrets: dict[str, bytes]) -> None:
    for key, value in secrets.items():
        if not key or len(key.encode()) > KEY_MAX or not key.isascii():
            raise UsageError(f"NVS key {key!r} must be 1-{KEY_MAX} ASCII characters")
        if not isinstance(value, (bytes, bytearray)):
            raise UsageError(f"secret {key!r} must be bytes")


def load_encryption_key(path: Path) -> bytes:
    """A key file as nvs_partition_gen writes it (nvs_keys partition, 4096 bytes) or 64 raw bytes."""
    data = read_input_file(path, "NVS encryption key", PAGE_SIZE, UsageError)
    if len(data) < ENCRYPTION_KEY_LEN:
        raise UsageError(f"NVS encryption key {path} has {len(data)} bytes; it needs "
                         f"{ENCRYPTION_KEY_LEN} (XTS-AES data key + tweak key, e.g. from "
                         "`python -m esp_idf_nvs_partition_gen generate-key`)")
    key = data[:ENCRYPTION_KEY_LEN]
    if len(data) == PAGE_SIZE:  # nvs_keys partition layout: key, then CRC32 of it
        (crc,) = struct.unpack_from("<I", data, ENCRYPTION_KEY_LEN)
        if crc != zlib.crc32(key, 0xFFFFFFFF) & 0xFFFFFFFF:
            raise UsageError(f"NVS encryption key {path}: CRC does not match (not an nvs_keys image?)")
    return key


def _generate(secrets: dict[str, bytes], size: int, key: bytes | None) -> bytes:
    from esp_idf_nvs_partition_gen import nvs_partition_gen as gen

    out = io.BytesIO()
    # One page is kept free for NVS's garbage collection, as the generator's CLI does.
    nvs = gen.nvs_open(out, size - PAGE_SIZE, gen.Page.VERSION2, is_encrypt=key is not None, key=key)
    nvs.write_namespace(NAMESPACE)
    for name in sorted(secrets):
        # NVS.write_entry directly: the module-level helper special-cases Wi-Fi driver keys.
        nvs.write_entry(name, bytes(secrets[name]), "binary")
    gen.nvs_close(nvs)
    return out.getvalue()


def build_nvs_image(secrets: dict[str, bytes], partition_size: int, key: bytes | None = None) -> bytes:
    """The NVS partition image holding `secrets` (blobs in namespace "clawgen").

    A plain image is written by ``encode_plain`` (this module, no third-party import); an
    encrypted one by Espressif's generator, which ``encode_plain`` matches byte for byte
    (tests/image/test_nvs.py compares them).
    """
    check_secret_keys(secrets)
    if partition_size % PAGE_SIZE or partition_size < 3 * PAGE_SIZE:
        raise UsageError(f"NVS partition size {partition_size:#x} must be a multiple of 0x1000, at least 0x3000")
    if key is None:
        pages = _plain_pages(secrets)
        # One page is kept free for NVS's garbage collection, as the generator's CLI does.
        if len(pages) + 1 > partition_size // PAGE_SIZE:
            raise NvsOverflowError((len(pages) + 1) * PAGE_SIZE, partition_size)
        return b"".join(pages) + b"\xff" * (partition_size - len(pages) * PAGE_SIZE)
    from esp_idf_nvs_partition_gen import nvs_partition_gen as gen

    try:
        data = _generate(secrets, partition_size, key)
    except (gen.InsufficientSizeError, gen.PageFullError):
        raise NvsOverflowError(_needed_bytes(secrets, key), partition_size) from None
    except gen.InputError as e:
        raise UsageError(f"NVS image: {e}") from None
    if len(data) != partition_size:
        raise NvsOverflowError(len(data), partition_size)
    return data


def encode_plain(secrets: dict[str, bytes], partition_size: int) -> bytes:
    """A plain (unencrypted) NVS image of ``secrets``: what build_nvs_image writes without a key."""
    return build_nvs_image(secrets, partition_size, None)


class _PageWriter:
    """Fills NVS v2 pages entry by entry, the way the on-flash format and Espressif's generator lay
    them out: a 32-byte header (state, sequence number, version, CRC), a 2-bit-per-entry state
    bitmap, then 126 entries of 32 bytes. Blobs are BLOB_DATA chunks (split across pages) followed
    by a BLOB_IDX entry."""

    def __init__(self) -> None:
        self.pages: list[bytearray] = []
        self.n = 0  # entries used on the current page
        self._new_page()

    def _new_page(self) -> None:
        if self.pages:
            struct.pack_into("<I", self.pages[-1], 0, _PAGE_FULL)
        page = bytearray(b"\xff" * PAGE_SIZE)
        header = bytearray(b"\xff" * 32)
        struct.pack_into("<II", header, 0, _PAGE_ACTIVE, len(self.pages))
        header[8] = _VERSION2
        struct.pack_into("<I", header, 28, zlib.crc32(bytes(header[4:28]), 0xFFFFFFFF) & 0xFFFFFFFF)
        page[:32] = header
        self.pages.append(page)
        self.n = 0

    def _put(self, data: bytes, entries: int) -> None:
        page = self.pages[-1]
        at = FIRST_ENTRY + ENTRY_SIZE * self.n
        page[at:at + len(data)] = data
        for _ in range(entries):
            bit = self.n * 2
            page[32 + bit // 8] &= ~(1 << (bit & 7)) & 0xFF  # 0b11 empty -> 0b10 written
            self.n += 1

    @staticmethod
    def _entry(ns: int, etype: int, span: int, chunk: int, key: str, data8: bytes) -> bytes:
        e = bytearray(b"\xff" * ENTRY_SIZE)
        e[0:4] = bytes((ns, etype, span, chunk))
        e[8:24] = key.encode().ljust(16, b"\0")
        e[24:32] = data8
        struct.pack_into("<I", e, 4, zlib.crc32(bytes(e[0:4]) + bytes(e[8:32]), 0xFFFFFFFF) & 0xFFFFFFFF)
        return bytes(e)

    def u8(self, ns: int, key: str, value: int) -> None:
        if self.n >= ENTRIES_PER_PAGE:
            self._new_page()
        self._put(self._entry(ns, _TYPE_U8, 1, 0xFF, key, bytes((value,)) + b"\xff" * 7), 1)

    def blob(self, ns: int, key: str, value: bytes) -> None:
        if self.n >= ENTRIES_PER_PAGE:
            self._new_page()
        offset, chunks = 0, 0
        while True:
            room = (ENTRIES_PER_PAGE - self.n - 1) * ENTRY_SIZE
            size = min(room, len(value) - offset)
            part = value[offset:offset + size]
            data_entries = (size + ENTRY_SIZE - 1) // ENTRY_SIZE
            meta = struct.pack("<HHI", size, 0xFFFF, zlib.crc32(part, 0xFFFFFFFF) & 0xFFFFFFFF)
            self._put(self._entry(ns, _TYPE_BLOB_DATA, data_entries + 1, chunks, key, meta), 1)
            self._put(part, data_entries)
            chunks += 1
            offset += size
            if offset < len(value) or room - size < ENTRY_SIZE:
                self._new_page()
            if offset >= len(value):
                break
        index = struct.pack("<IBBH", len(value), chunks, 0, 0xFFFF)
        self._put(self._entry(ns, _TYPE_BLOB_IDX, 1, 0xFF, key, index), 1)


def _plain_pages(secrets: dict[str, bytes]) -> list[bytes]:
    w = _PageWriter()
    w.u8(0, NAMESPACE, 1)  # namespace "clawgen" is index 1
    for name in sorted(secrets):
        w.blob(1, name, bytes(secrets[name]))
    return [bytes(p) for p in w.pages]


def _needed_bytes(secrets: dict[str, bytes], key: bytes | None) -> int:
    total = sum(len(v) for v in secrets.values())
    big = (total // PAGE_SIZE + 4) * 2 * PAGE_SIZE
    data = _generate(secrets, big, key)
    used = sum(1 for p in range(0, len(data), PAGE_SIZE)
               if struct.unpack_from("<I", data, p)[0] in (_PAGE_ACTIVE, _PAGE_FULL))
    return (used + 1) * PAGE_SIZE  # + the reserved page


def _decrypt_entry(raw: bytes, key: bytes, address: int) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    tweak = address.to_bytes(16, "little")
    dec = Cipher(algorithms.AES(key), modes.XTS(tweak)).decryptor()
    return dec.update(raw) + dec.finalize()


def decode_nvs_image(data: bytes, key: bytes | None = None) -> dict[tuple[str, str], bytes]:
    """Read an NVS image back: {(namespace, key): value bytes} for every string/blob entry."""
    namespaces: dict[int, str] = {}
    singles: dict[tuple[int, str], bytes] = {}
    chunks: dict[tuple[int, str, int], bytes] = {}
    indexes: dict[tuple[int, str], tuple[int, int, int]] = {}
    for page in range(len(data) // PAGE_SIZE):
        base = page * PAGE_SIZE
        if struct.unpack_from("<I", data, base)[0] not in (_PAGE_ACTIVE, _PAGE_FULL):
            continue
        bitmap = data[base + 32:base + 64]
        entries = []
        for i in range(ENTRIES_PER_PAGE):
            raw = data[base + FIRST_ENTRY + i * ENTRY_SIZE:base + FIRST_ENTRY + (i + 1) * ENTRY_SIZE]
            if key is not None and raw != b"\xff" * ENTRY_SIZE:
                raw = _decrypt_entry(raw, key, base + FIRST_ENTRY + i * ENTRY_SIZE)
            entries.append(raw)
        i = 0
        while i < ENTRIES_PER_PAGE:
            state = (bitmap[i // 4] >> ((i % 4) * 2)) & 3
            if state != 2:  # 0b10 = written
                i += 1
                continue
            e = entries[i]
            ns, etype, span, chunk = e[0], e[1], e[2], e[3]
            name = e[8:24].split(b"\0", 1)[0].decode("ascii", "replace")
            payload = b"".join(entries[i + 1:i + span])
            if ns == 0 and etype == _TYPE_U8:
                namespaces[e[24]] = name
            elif etype in (_TYPE_SZ, _TYPE_BLOB, _TYPE_BLOB_DATA):
                (size,) = struct.unpack_from("<H", e, 24)
                if etype == _TYPE_BLOB_DATA:
                    chunks[(ns, name, chunk)] = payload[:size]
                else:
                    singles[(ns, name)] = payload[:size]
            elif etype == _TYPE_BLOB_IDX:
                size, count, start = struct.unpack_from("<IBB", e, 24)
                indexes[(ns, name)] = (size, count, start)
            i += max(span, 1)
    out: dict[tuple[str, str], bytes] = {}
    for (ns, name), value in singles.items():
        out[(namespaces.get(ns, str(ns)), name)] = value
    for (ns, name), (size, count, start) in indexes.items():
        blob = b"".join(chunks.get((ns, name, start + c), b"") for c in range(count))
        out[(namespaces.get(ns, str(ns)), name)] = blob[:size]
    return out
