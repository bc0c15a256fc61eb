import os
import struct
import zlib

import pytest

from clawgen.diagnostics import UsageError
from clawgen.image import nvs

SECRETS = {
    "llm_api_key": b"sk-test-" + os.urandom(24).hex().encode(),
    "wifi_password": b"correct horse battery staple",
    "big_blob": os.urandom(6000),  # spans pages: stored as BLOB_DATA chunks + BLOB_IDX
}


def test_image_decodes_back_to_the_secrets():
    data = nvs.build_nvs_image(SECRETS, 0x6000)
    assert len(data) == 0x6000
    decoded = nvs.decode_nvs_image(data)
    assert decoded == {("clawgen", k): v for k, v in SECRETS.items()}


def test_encrypted_image_hides_values_and_decrypts_with_the_key():
    key = os.urandom(nvs.ENCRYPTION_KEY_LEN)
    data = nvs.build_nvs_image(SECRETS, 0x6000, key)
    for value in SECRETS.values():
        assert value[:16] not in data
    assert nvs.decode_nvs_image(data, key) == {("clawgen", k): v for k, v in SECRETS.items()}


def test_plain_image_holds_values_in_clear_only_in_nvs_format():
    data = nvs.build_nvs_image({"k": b"value-in-clear-123"}, 0x3000)
    # page header: state ACTIVE or FULL, version byte 0xFE (v2, multi-page blobs)
    assert struct.unpack_from("<I", data, 0)[0] in (0xFFFFFFFE, 0xFFFFFFFC)
    assert data[8] == 0xFE


def test_overflow_reports_needed_size():
    with pytest.raises(nvs.NvsOverflowError) as err:
        nvs.build_nvs_image({"huge": os.urandom(30_000)}, 0x6000)
    assert err.value.capacity == 0x6000
    assert err.value.needed > 30_000


@pytest.mark.parametrize("key", ["", "a_key_that_is_too_long", "clé"])
def test_bad_keys(key):
    with pytest.raises(UsageError, match="NVS key"):
        nvs.build_nvs_image({key: b"x"}, 0x6000)


def test_key_file_formats(tmp_path):
    key = os.urandom(64)
    raw = tmp_path / "raw.bin"
    raw.write_bytes(key)
    assert nvs.load_encryption_key(raw) == key
    # nvs_keys partition layout, as `esp_idf_nvs_partition_gen generate-key` writes it
    part = bytearray(b"\xff" * 4096)
    part[:64] = key
    struct.pack_into("<I", part, 64, zlib.crc32(key, 0xFFFFFFFF) & 0xFFFFFFFF)
    keys = tmp_path / "keys.bin"
    keys.write_bytes(bytes(part))
    assert nvs.load_encryption_key(keys) == key
    part[70] ^= 0xFF  # outside the CRC: still fine
    part[3] ^= 0xFF
    keys.write_bytes(bytes(part))
    with pytest.raises(UsageError, match="CRC"):
        nvs.load_encryption_key(keys)
    short = tmp_path / "short.bin"
    short.write_bytes(b"x" * 10)
    with pytest.raises(UsageError, match="needs 64"):
        nvs.load_encryption_key(short)


def test_same_bytes_as_the_generator_cli(tmp_path):
    """In-process generation equals `python -m esp_idf_nvs_partition_gen generate` on a CSV."""
    import subprocess
    import sys

    values = {"api_key": b"not-a-real-key", "wifi": b"\x00\x01binary\xff"}
    csv = tmp_path / "in.csv"
    rows = ["key,type,encoding,value", "clawgen,namespace,,"]
    rows += [f"{k},data,hex2bin,{v.hex()}" for k, v in sorted(values.items())]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.bin"
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", str(csv), str(out),
                    "0x6000"], check=True, capture_output=True)
    assert nvs.build_nvs_image(values, 0x6000) == out.read_bytes()


def _cases() -> list[dict[str, bytes]]:
    import random

    rnd = random.Random(9)
    cases: list[dict[str, bytes]] = [{}, {"empty": b""}, {"k": b"x"}]
    # blob sizes around entry and page boundaries, single- and multi-page
    cases += [{"big": rnd.randbytes(n)} for n in (31, 32, 33, 3999, 4000, 4001, 4032, 4033, 5000, 8100, 12000)]
    for _ in range(40):  # many keys: page changes at every possible entry position
        sizes = [0, 1, 31, 32, 33, 100, 500, 3000, 4000, 4064, 4065]
        cases.append({f"k{i}": rnd.randbytes(rnd.choice(sizes)) for i in range(rnd.randrange(1, 40))})
    return cases


def test_plain_writer_is_byte_identical_to_espressifs_generator():
    """build_nvs_image writes plain images itself (no 25 ms import of the generator and its CLI
    stack); Espressif's generator is the reference it must match exactly."""
    for case in _cases():
        size = 0x3000 + -(-(sum(len(v) for v in case.values()) + 64 * len(case)) // 0x1000) * 0x2000
        assert nvs.build_nvs_image(case, size) == nvs._generate(case, size, None), {k: len(v) for k, v in case.items()}


def test_plain_writer_overflows_where_the_generator_does():
    from esp_idf_nvs_partition_gen import nvs_partition_gen as gen

    overflowed = 0
    for n in (14000, 14500, 15000, 15500, 16000, 30000):
        case = {"a": os.urandom(n), "b": os.urandom(n // 3)}
        try:
            ref = nvs._generate(case, 0x6000, None)
        except (gen.InsufficientSizeError, gen.PageFullError):
            ref = None
        if ref is not None:
            assert nvs.build_nvs_image(case, 0x6000) == ref
            continue
        overflowed += 1
        with pytest.raises(nvs.NvsOverflowError) as err:
            nvs.build_nvs_image(case, 0x6000)
        assert err.value.needed == nvs._needed_bytes(case, None)
    assert 0 < overflowed < 6  # both sides of the limit were tried
