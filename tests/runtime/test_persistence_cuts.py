"""Session persistence on the MicroPython unix-port VM: the device's own session code (compiled .mpy)
restores the history after its log is cut at every byte offset of the last turn's records, and the
agent carries on with what survived after a power cycle (a second run of the same device)."""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clawgen.sim.unixvm import UnixDevice
from clawgen.sim.vm import DEFAULT_ENTRY, SimResult
from tests.llm_server import LLMServer, Reply

MAGIC = b"\xc1\x0a"  # record layout as docs in claw_session: MAGIC | len u32 | crc32 u32 | role + JSON
HDR = struct.Struct("<2sII")

SPEC = """\
name: persisttest
board: esp32s3
system_prompt: You are a test agent.
model:
  base_url: http://127.0.0.1:9/v1
  model: test-model
  connect_timeout: 2
  read_timeout: 2
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
persistence:
  mode: flash
  max_bytes: 16384
"""


@dataclass
class Env:
    server: LLMServer
    build: Path
    secrets: dict[str, bytes]

    def device(self, make: Callable[..., UnixDevice], modules: dict[str, str] | None = None) -> UnixDevice:
        return make(self.build, secrets=self.secrets, modules=modules)

    @staticmethod
    def run(dev: UnixDevice, lines: list[str], entry: str = DEFAULT_ENTRY) -> SimResult:
        res = dev.run(stdin=lines, entry=entry, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        return res


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, unixvm: str) -> Iterator[Env]:
    from clawgen.build import build_spec

    d = tmp_path_factory.mktemp("persist")
    (d / "agent.yaml").write_text(SPEC)
    (d / "secrets.yaml").write_text("wifi_ssid: testnet\nwifi_password: testpass\n")
    server = LLMServer()
    try:
        result = build_spec(d / "agent.yaml", out_dir=d / "build", images=False, model_override=server.base_url)
        yield Env(server, result.out_dir, dict(result.nvs_values))
    finally:
        server.close()


def parse_log(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, payload) of each intact record, as the host reads the format."""
    out, pos = [], 0
    while pos + HDR.size <= len(data):
        magic, n, crc = HDR.unpack_from(data, pos)
        payload = data[pos + HDR.size:pos + HDR.size + n]
        if magic != MAGIC or len(payload) < n or zlib.crc32(payload) != crc:
            break
        out.append((pos, pos + HDR.size + n, payload))
        pos += HDR.size + n
    return out


def the_log(files: dict[str, bytes]) -> tuple[str, bytes]:
    logs = [(p, b) for p, b in files.items() if b.startswith(MAGIC) and not p.endswith(".tmp")]
    assert len(logs) == 1, sorted(files)
    return logs[0]


def test_restore_after_truncation_at_every_offset_of_the_last_turn(env: Env, unix_device) -> None:
    env.server.push(Reply.text("First answer."), Reply.text("Second answer, a bit longer."))
    res = env.run(env.device(unix_device), ["first question", "second question"])
    _, log = the_log(res.files)
    recs = parse_log(log)
    assert [r[2][:1] for r in recs] == [b"u", b"a", b"u", b"a"]
    assert b"Second answer" in recs[3][2]
    turn1_end, turn2_start, end = recs[1][1], recs[2][0], recs[3][1]
    assert turn1_end == turn2_start and end == len(log)

    # One VM run tries every cut: the device's Session restores from the cut log, and must keep
    # exactly turn 1 (a cut anywhere in turn 2) or both turns (no cut), and rewrite the file clean.
    prog = f"""
import claw_config as C
import claw_session
LOG = {log!r}
for cut in range({turn2_start}, {end} + 1):
    with open(C.PERSIST_PATH, "wb") as f:
        f.write(LOG[:cut])
    s = claw_session.Session(C.PERSIST_PATH, C.PERSIST_MAX_BYTES)
    with open(C.PERSIST_PATH, "rb") as f:
        after = f.read()
    print("cut", cut, len(s), len(after), after == LOG[:len(after)], s.size)
"""
    probe = env.run(env.device(unix_device, modules={"persistprobe": prog}), [], entry="import persistprobe")
    rows = [tuple(int(x) if x.isdigit() else x for x in line.split()[1:])
            for line in probe.stdout.splitlines() if line.startswith("cut ")]
    assert [r[0] for r in rows] == list(range(turn2_start, end + 1))
    for cut, n_msgs, file_len, prefix_ok, size in rows:
        if cut < end:
            assert (n_msgs, file_len, prefix_ok, size) == (2, turn1_end, "True", turn1_end), cut
        else:
            assert (n_msgs, file_len, prefix_ok, size) == (4, end, "True", end)
    assert "Traceback" not in probe.stderr


@pytest.mark.parametrize("cut_into_last_record", [1, 11, -1])
def test_agent_continues_from_a_torn_log(env: Env, unix_device, cut_into_last_record: int) -> None:
    dev = env.device(unix_device)
    env.server.requests.clear()
    env.server.push(Reply.text("Alpha."), Reply.text("Beta."))
    path, log = the_log(env.run(dev, ["question one", "question two"]).files)
    last_start = parse_log(log)[-1][0]
    cut = len(log) + cut_into_last_record if cut_into_last_record < 0 else last_start + cut_into_last_record
    env.server.requests.clear()
    dev.write_file(path, log[:cut])  # the power was cut while the last record was written
    env.server.push(Reply.text("Gamma."))
    res = env.run(dev, ["question three"])
    assert re.search(r"(?m)^> Gamma\.$", res.stdout), res.stdout
    (req,) = env.server.requests
    history = [(m["role"], m["content"]) for m in req.json["messages"][1:]]
    assert history == [("user", "question one"), ("assistant", "Alpha."), ("user", "question three")]
    _, new_log = the_log(res.files)
    assert [(p[2][:1], json.loads(p[2][1:])) for p in parse_log(new_log)][-2:] == [
        (b"u", {"role": "user", "content": "question three"}),
        (b"a", {"role": "assistant", "content": "Gamma."})]
    assert len(parse_log(new_log)) == 4 and sum(e - s for s, e, _ in parse_log(new_log)) == len(new_log)
