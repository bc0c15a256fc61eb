"""The secret size limit `clawgen validate` enforces is what the device really reads back from NVS
(issue 9, item 7), on the real MicroPython unix-port VM with the generated claw_boot."""

from __future__ import annotations

from pathlib import Path

from clawgen.secretcheck import SECRET_MAX_BYTES
from tests.runtime.agent_builds import build, make_spec

PROG = (
    "import claw_boot\n"
    "for key in ('m0_key', 'brave_key'):\n"
    "    v = claw_boot.secret(key)\n"
    "    print('LEN', key, None if v is None else len(v), v is not None and v == b'k' * len(v))\n"
)


def test_largest_allowed_secret_is_read_back_whole_and_one_more_byte_is_not(tmp_path: Path, unix_run):
    key = "k" * SECRET_MAX_BYTES  # the largest key validate accepts: the build must take it
    spec = make_spec("https://api.example.com/v1", capabilities=["system", "web_browsing"],
                     web={"brave_api_key": "!secret brave"})
    spec["model"]["api_key"] = "!secret key"
    out = build(tmp_path, spec, secrets={"key": key, "brave": "b" * 8})
    nvs = {"m0_key": key.encode(), "brave_key": b"k" * (SECRET_MAX_BYTES + 1)}
    res = unix_run(out, secrets=nvs, modules={"prog": PROG}, entry="import prog")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("LEN ")]
    assert lines == [f"LEN m0_key {SECRET_MAX_BYTES} True", "LEN brave_key None False"], res.stdout
    assert "k" * 64 not in res.stdout + res.stderr  # a secret is never printed
