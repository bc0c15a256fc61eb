"""The audit log on the MicroPython unix-port VM: one entry per tool call (channel, tool, arguments
with secrets redacted, the policy decision and the rule that decided, the result status), in a ring
file of audit.entries fixed slots that survives power cycles; /audit [n] lists the last entries."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

from tests.llm_server import Reply
from tests.runtime.agent_builds import CUSTOM_TOOLS, build, make_spec

LOG = "/claw_audit.log"
MAGIC = b"\xa0\x0d"
KEY = "sk-audit-secret-0123456789"

LOGIN = '''
def login(user, api_token):
    return "logged in " + user
'''
LOGIN_TOOL = {"name": "login", "description": "Log in.", "handler": "tools/login.py:login",
              "parameters": {"type": "object", "properties": {"user": {"type": "string"},
                                                              "api_token": {"type": "string"}},
                             "required": ["user", "api_token"]}}


def slots(data: bytes, entry_bytes: int) -> list[tuple[int, list[str]]]:
    """Independent reader of the documented slot format (templates/app/claw_audit.py.j2): valid
    entries as (seq, fields), oldest first."""
    out = []
    for i in range(len(data) // entry_bytes):
        magic, seq, n, crc = struct.unpack_from("<2sIHI", data, i * entry_bytes)
        payload = data[i * entry_bytes + 12:i * entry_bytes + 12 + n]
        if magic == MAGIC and zlib.crc32(payload) == crc and seq % (len(data) // entry_bytes) == i:
            out.append((seq, payload.decode().split("\t")))
    return sorted(out)


def _agent(tmp_path: Path, base_url: str, **audit: Any) -> Path:
    (tmp_path / "tools").mkdir(parents=True, exist_ok=True)
    (tmp_path / "tools" / "login.py").write_text(LOGIN)
    spec = make_spec(base_url, tools=[*CUSTOM_TOOLS, LOGIN_TOOL])
    spec["model"]["api_key"] = "!secret llm_key"
    if audit:
        spec["audit"] = audit
    return build(tmp_path, spec, secrets={"llm_key": KEY})


def test_each_call_is_recorded_with_decision_rule_and_redacted_arguments(tmp_path: Path, llm_server,
                                                                        unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url), secrets={"m0_key": KEY.encode()})
    llm_server.push(
        Reply.tool_calls(("add", {"a": 2, "b": 3}), ("add", {"a": "two", "b": 3}), ("nosuch", {}),
                         ("explode", {"reason": "bus " + KEY})),
        Reply.text("done"),
        Reply.tool_calls(("login", {"user": "ann", "api_token": "tok-123456"})), Reply.text("in"),
        Reply.tool_calls(("set_relay", {"on": True})), Reply.text("left off"))
    res = dev.run(stdin=["go", "log in", "relay", "no", "/audit 3", "/audit", "/quit"])
    assert res.returncode == 0, res.stderr
    entries = slots(res.files[LOG], 256)
    rows = [f[1:5] for _, f in entries]
    assert rows == [
        ["uart", "add", "allow", "default"],
        ["uart", "add", "deny", "parameters schema"],
        ["uart", "nosuch", "deny", "unknown tool"],
        ["uart", "explode", "allow", "default"],
        ["uart", "login", "allow", "default"],
        ["uart", "set_relay", "deny", "confirm: declined"],
    ]
    status = [f[5] for _, f in entries]
    assert status[0] == status[4] == "ok"
    assert status[1] == "error: invalid arguments for add: argument 'a' must be of type number"
    assert status[2].startswith("error: unknown tool 'nosuch'; available: ") and len(status[2]) == 80
    assert status[3] == "error: explode failed: ValueError: sensor bus stuck: bus ***"
    assert status[5].startswith("refused: the user declined to run set_relay")
    assert {f[6] for _, f in entries} == {"test-model"}  # the model that asked for the calls
    args = [f[7] for _, f in entries]
    assert args[0] == '{"a": 2, "b": 3}' and args[3] == '{"reason": "bus ***"}'
    assert args[4] in ('{"user": "ann", "api_token": "***"}', '{"api_token": "***", "user": "ann"}')
    assert all(re.fullmatch(r"\+\d+s|\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", f[0]) for _, f in entries)
    assert [s for s, _ in entries] == list(range(6))
    raw = res.files[LOG]
    assert KEY.encode() not in raw and b"tok-123456" not in raw
    listed = [line for line in res.stdout.splitlines() if re.match(r"(> )?#\d+ ", line)]
    assert len(listed) == 9 and not any(KEY in line or "tok-123456" in line for line in listed)
    # /audit 3: the last three, oldest first; /audit: up to 10.
    shown = re.findall(r"^(?:> )?#(\d+) .*? uart (\w+) (allow|deny) \(([^)]*)\)", res.stdout, re.M)
    assert shown[:3] == [("3", "explode", "allow", "default"), ("4", "login", "allow", "default"),
                         ("5", "set_relay", "deny", "confirm: declined")]
    assert [s[0] for s in shown[3:]] == ["0", "1", "2", "3", "4", "5"]


def test_the_ring_is_bounded_and_survives_a_power_cycle(tmp_path: Path, llm_server, unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url, entries=4, entry_bytes=128),
                      secrets={"m0_key": KEY.encode()})
    calls = [("add", {"a": i, "b": 1}) for i in range(3)]
    llm_server.push(Reply.tool_calls(*calls), Reply.text("ok"))
    first = dev.run(stdin=["three", "/quit"])
    assert first.returncode == 0, first.stderr
    assert len(first.files[LOG]) == 4 * 128
    llm_server.push(Reply.tool_calls(*[("add", {"a": 10 + i, "b": 1}) for i in range(3)]), Reply.text("ok"))
    second = dev.run(stdin=["three more", "/audit 10", "/quit"])
    assert second.returncode == 0, second.stderr
    data = second.files[LOG]
    assert len(data) == 4 * 128  # bounded: the oldest two were overwritten
    assert [(s, f[7]) for s, f in slots(data, 128)] == [
        (2, '{"a": 2, "b": 1}'), (3, '{"a": 10, "b": 1}'), (4, '{"a": 11, "b": 1}'), (5, '{"a": 12, "b": 1}')]
    assert re.findall(r"^(?:> )?#(\d+) ", second.stdout, re.M) == ["2", "3", "4", "5"]


def test_a_torn_slot_is_skipped(tmp_path: Path, llm_server, unix_device) -> None:
    dev = unix_device(_agent(tmp_path, llm_server.base_url, entries=4, entry_bytes=128),
                      secrets={"m0_key": KEY.encode()})
    llm_server.push(Reply.tool_calls(("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2})), Reply.text("ok"))
    first = dev.run(stdin=["two", "/quit"])
    assert first.returncode == 0, first.stderr
    data = bytearray(first.files[LOG])
    data[128 + 20] ^= 0xFF  # the power went off while slot 1 was written
    dev.write_file(LOG, bytes(data))
    res = dev.run(stdin=["/audit", "/quit"])
    assert res.returncode == 0, res.stderr
    assert re.findall(r"^(?:> )?#(\d+) ", res.stdout, re.M) == ["0"]
    assert "usage: /audit" not in res.stdout


def test_audit_usage_and_an_empty_log(tmp_path: Path, llm_server, unix_run) -> None:
    res = unix_run(_agent(tmp_path, llm_server.base_url), stdin=["/audit", "/audit x", "/help", "/quit"],
                   secrets={"m0_key": KEY.encode()})
    assert res.returncode == 0, res.stderr
    assert "no tool calls recorded yet" in res.stdout
    assert "usage: /audit [n] (n: how many of the last tool calls, default 10)" in res.stdout
    assert "/audit [n]" in res.stdout.split("usage")[1]  # in /help


def test_register_policy_decisions_name_the_rule_that_decided(tmp_path: Path, llm_server, unix_device,
                                                              monkeypatch) -> None:
    """Each register access's entry names the spec's `registers:` rule that decided it (a rule index
    in the policy table, clawgen/chips/tables.py), for allowed and denied accesses alike."""
    from clawgen.resources import chips_dir

    monkeypatch.setenv("CLAWGEN_CHIP_PATH", str(chips_dir()))
    spec = make_spec(llm_server.base_url, capabilities=["hw_register_control"], tools=[],
                     registers={"defaults": False,
                                "allow": [{"match": "GPIO.OUT", "access": "read"}, "GPIO.ENABLE*"],
                                "deny": [{"match": "GPIO.ENABLE", "access": "write"},
                                         {"match": "GPIO.ENABLE_W1TS", "access": "write"}]})
    dev = unix_device(build(tmp_path, spec), registers={0x60004004: 7})
    llm_server.push(Reply.tool_calls(("hw_register_read", {"address": "GPIO.OUT"}),
                                     ("hw_register_write", {"address": "GPIO.OUT", "value": "1"}),
                                     ("hw_register_read", {"address": "GPIO.ENABLE"}),
                                     ("hw_register_write", {"address": "GPIO.ENABLE", "value": "1"})),
                    Reply.text("done"),
                    Reply.tool_calls(("hw_register_read", {"address": "0x60004008"}),
                                     ("hw_register_read", {"address": "GPIO.NOPE"}),
                                     ("hw_register_write", {"address": "0x60004024", "value": "1"})),
                    Reply.text("done"))
    res = dev.run(stdin=["poke", "more", "/audit 6", "/quit"])
    assert res.returncode == 0, res.stderr
    rows = [f[2:6] for _, f in slots(res.files[LOG], 256)]
    assert rows[0] == ["hw_register_read", "allow", "registers.allow[0] (GPIO.OUT read) on GPIO.OUT read", "ok"]
    assert rows[1][:3] == ["hw_register_write", "deny", "registers: no rule allows GPIO.OUT write"]
    assert rows[1][3].startswith("error: denied: GPIO.OUT is not writable by policy")
    assert rows[2] == ["hw_register_read", "allow", "registers.allow[1] (GPIO.ENABLE*) on GPIO.ENABLE read", "ok"]
    assert rows[3][:3] == ["hw_register_write", "deny", "registers.deny[0] (GPIO.ENABLE write) on GPIO.ENABLE write"]
    assert rows[4][:3] == ["hw_register_read", "deny",
                           "registers: no rule allows GPIO+0x8 (not in the allowlist) read"]
    # A name that resolves to no allowlisted register never reaches the policy check.
    assert rows[5][:2] == ["hw_register_read", "deny"] and rows[5][2].startswith("registers: unknown: no register")
    # GPIO.ENABLE_W1TS: named by allow[1], taken away by deny[1] (it is write-only): not in the
    # allowlist, and still the rule is named.
    assert rows[6][:3] == ["hw_register_write", "deny", "registers.deny[1] (GPIO.ENABLE_W1TS write) on GPIO+0x24 write"]
    assert rows[6][3].startswith("error: denied: GPIO+0x24 (0x60004024) is not in this build's register allowlist")
    assert "deny (registers.deny[0] (GPIO.ENABLE write) on GPIO.ENABLE write) error: denied" in res.stdout
    assert res.register_writes == []


def test_the_model_that_asked_and_why_is_recorded(tmp_path: Path, unix_device) -> None:
    from clawgen.sim.llmserver import LLMServer

    with LLMServer() as primary, LLMServer() as light:
        spec = make_spec(primary.base_url)
        spec["model"]["light"] = {"base_url": light.base_url, "model": "light-model"}
        dev = unix_device(build(tmp_path, spec))
        light.push(Reply.tool_calls(("add", {"a": 1, "b": 2})), Reply.text("3"))
        primary.push(Reply.tool_calls(("add", {"a": 3, "b": 4})), Reply.text("7"))
        res = dev.run(stdin=["add 1 and 2", "x" * 400, "/audit 2", "/quit"])
        assert res.returncode == 0, res.stderr
        vias = [f[6] for _, f in slots(res.files[LOG], 256)]
        assert vias == ["light-model (light, score 0.008 < 0.300)", "test-model (primary, score 0.402 >= 0.300)"]
        assert "ok [light-model (light, score 0.008 < 0.300)] {" in res.stdout
