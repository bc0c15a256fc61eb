"""Heap behaviour of the device runtime on the VM: turns run one per top-level VM call (the only
place this VM collects garbage), and the live heap must level off once the history is full."""

from __future__ import annotations

from pathlib import Path

from clawgen.sim import vm
from tests.llm_server import LLMServer, Reply, tool_call

HISTORY = 4  # messages: full after 2 turns

SPEC = f"""\
name: heaptest
board: esp32s3
system_prompt: You are a test agent.
model:
  base_url: http://127.0.0.1:9/v1
  model: test-model
  read_timeout: 5
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
capabilities: [system]
limits:
  request_bytes: 8192
  response_bytes: 8192
  history_messages: {HISTORY}
"""

# Boots the runtime the way claw_main.main does, without entering its serving loop.
BOOT = """
import claw_config as C
import claw_transport as T
import claw_boot, claw_session, claw_agent, claw_tools, claw_main
uart = T.Uart()
if claw_boot.wifi(uart.note):
    claw_boot.clock(uart.note)
session = claw_session.Session(C.PERSIST_PATH, C.PERSIST_MAX_BYTES)
agent = claw_agent.Agent(session, claw_tools, {})
"""


def test_live_heap_levels_off_over_turns(tmp_path: Path, mpvm: Path, llm_server: LLMServer) -> None:
    from clawgen.build import build_spec

    (tmp_path / "agent.yaml").write_text(SPEC)
    (tmp_path / "secrets.yaml").write_text("wifi_ssid: n\nwifi_password: password\n")
    out = build_spec(tmp_path / "agent.yaml", out_dir=tmp_path / "build", images=False,
                     model_override=llm_server.base_url)
    turns = 8
    for i in range(turns):
        llm_server.push(Reply.tool_calls(tool_call("system_uptime", {}, f"c{i}")),
                        Reply.text(f"Answer number {i} " + "with some padding " * 10))
    # The questions are made at run time: a string literal in each step's source would be interned
    # when the step is compiled, and the interned-string pool growing is not the runtime's heap.
    boot = BOOT + f"QS = ['question %d' % i for i in range({turns})]\n"
    steps = [f"claw_main.handle(QS[{i}], uart, agent, session, 0)" for i in range(turns)]
    res = vm.run(out.out_dir, entry=boot, steps=steps, secrets=dict(out.nvs_values), timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [s["returncode"] for s in res.steps] == [0] * turns
    assert res.stdout.count("Answer number") == turns and llm_server.pending == 0
    live = [s["heap"]["mem_alloc"] for s in res.steps]
    # the same-size answers: once the history holds HISTORY messages, every turn leaves the same heap
    steady = live[HISTORY // 2:]
    assert max(steady) - min(steady) <= 64, live
