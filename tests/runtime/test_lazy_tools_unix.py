"""Tool modules in the heap only when used (issue 8, item 6), on the MicroPython unix-port VM: the
boot imports no tool module, nor the tool dispatcher (claw_tools: imported for a response's tool
calls, dropped after them); a tool's module is imported at its first call; the register tools'
modules (claw_hwtools, clawreg, clawregx, clawsheet, clawhw) leave the heap after each call and
work the same on the next one (the register file, the audit's deciding rule and entry numbers, the
policy's refusals). claw_audit, claw_limits and the HTTP exchange (claw_httpx) leave it after each
use too, and a plain-http build never imports ssl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.heap_runs import ANSWER, build_example, reset, script_turn

HW_MODULES = ("claw_hwtools", "clawreg", "clawregx", "clawsheet", "clawhw")
# Loaded for a moment each (an audit entry, a model request's rate limit, its exchange, a response's
# tool calls): none of them stays in the heap after a turn.
PASSING = ("claw_audit", "claw_limits", "claw_httpx", "claw_tools")
GPIO_OUT = 0x60004004

# Boot exactly as main.py does, but keep what main() hands to its serving loop (like the heap bench),
# then report which of the runtime's modules are in sys.modules.
BOOT = ("import sys\nimport claw_main\nS = []\nclaw_main.serve = lambda *a: S.extend(a)\nclaw_main.main()\n"
        "print('MODS boot', sorted(m for m in sys.modules if m.startswith('claw')))\n"
        "print('SSL', 'ssl' in sys.modules)\n")
TURN = ("claw_main.handle({line!r}, S[2], S[0], S[1], S[4])\n"
        "print('MODS {tag}', sorted(m for m in sys.modules if m.startswith('claw')))\n")


def _mods(stdout: str, tag: str) -> list[str]:
    (line,) = [x for x in stdout.splitlines() if x.startswith(f"MODS {tag} ")]
    return json.loads(line.split(" ", 2)[2].replace("'", '"'))


@pytest.fixture
def register_assistant(tmp_path: Path, llm_server, monkeypatch):
    from clawgen.resources import chips_dir

    monkeypatch.setenv("CLAWGEN_CHIP_PATH", str(chips_dir()))
    return build_example("register-assistant", tmp_path, llm_server.base_url)


def test_tool_modules_load_on_first_call_and_register_modules_leave_after_it(register_assistant, llm_server,
                                                                              unix_run):
    res = register_assistant
    reset(llm_server)
    # Turn 1: the four register tools (lookup, read, write 0x1, module list); turn 2: a write the
    # policy denies, a read of the value turn 1 wrote, the uptime, the lookup again.
    script_turn(llm_server)
    script_turn(llm_server, [("hw_register_write", {"address": "0x60004038", "value": "0x1"}),
                             ("hw_register_read", {"address": "GPIO.OUT"}), ("system_uptime", {}),
                             ("hw_register_lookup", {"query": "GPIO.OUT"})])
    r = unix_run(res.out_dir, entry=BOOT, steps=[TURN.format(line="first", tag="turn1"),
                                                 TURN.format(line="second", tag="turn2"),
                                                 TURN.format(line="/audit 8", tag="audit")],
                 secrets=dict(res.nvs_values), timeout=60)
    out = r.stdout
    assert r.returncode == 0 and "Traceback" not in out + r.stderr, out + r.stderr
    assert out.count(ANSWER) == 2 and "[error]" not in out, out
    assert llm_server.pending == 0 and len(llm_server.requests) == 6

    boot = _mods(out, "boot")
    assert "claw_agent" in boot and "claw_http" in boot  # the runtime itself is there
    assert not {*HW_MODULES, "claw_systools", *PASSING} & set(boot), boot  # no tool module at boot
    assert "SSL False" in out  # the model is plain http: the firmware's ssl module is never imported
    for tag in ("turn1", "turn2"):
        assert not {*HW_MODULES, *PASSING} & set(_mods(out, tag)), (tag, out)
    assert "claw_systools" in _mods(out, "turn2")  # imported at its first call, and kept (not a register tool)

    # The tools worked on every call although their modules were imported anew each time: the
    # register file kept turn 1's write, the policy still refuses, the datasheet still answers.
    tools = [x for x in out.splitlines() if x.startswith("[tool] ")]
    assert len(tools) == 8, tools
    assert "wrote 0x00000001 to 0x60004004; register now 0x00000001" in tools[2]
    assert tools[3].startswith("[tool] hw_module_list {} -> UART0 0x60000000")
    assert "error: denied" in tools[4], tools[4]
    assert "0x60004004 = 0x00000001 (1)" in tools[5]
    assert "system_uptime" in tools[6] and "error" not in tools[6]
    assert tools[7] == tools[0]  # the same lookup, the same answer
    assert r.register_writes == [(GPIO_OUT, 1)]

    # The audit still names the register rule that decided each call (clawreg.decided() on the
    # module the call imported, before it left the heap), in both turns.
    audit = [x for x in out[out.index("MODS turn2"):].splitlines() if x.startswith("#")]
    assert len(audit) == 8, audit
    read_rule = "allow (registers.defaults allow[0] (GPIO.OUT*) on GPIO.OUT read) ok"
    assert read_rule in audit[1] and read_rule in audit[5], audit
    assert "allow (registers.defaults allow[0] (GPIO.OUT*) on GPIO.OUT write) ok" in audit[2], audit
    assert "deny (registers: no rule allows GPIO+0x38 (not in the allowlist) write)" in audit[4], audit


def test_a_turn_that_fails_during_its_tool_calls_drops_the_dispatcher_too(register_assistant, llm_server,
                                                                         unix_run):
    # The dispatcher (claw_tools) leaves the heap after a response's calls; a turn that runs out of
    # memory in the middle of them must not leave it there (on the 32-bit VM that kept /help from
    # running after such a turn at every heap size from 55 to 60 KB).
    res = register_assistant
    reset(llm_server)
    script_turn(llm_server)
    script_turn(llm_server)
    fail = ("import claw_openai\n_tm = claw_openai.tool_msg\n"
            "def boom(*a):\n    raise MemoryError('test')\n"
            "claw_openai.tool_msg = boom\n")
    again = "claw_openai.tool_msg = _tm\n"
    r = unix_run(res.out_dir, entry=BOOT, steps=[fail + TURN.format(line="first", tag="failed"),
                                                 again + TURN.format(line="second", tag="after")],
                 secrets=dict(res.nvs_values), timeout=60)
    out = r.stdout
    assert r.returncode == 0 and "Traceback" not in out + r.stderr, out + r.stderr
    assert "[error] out of memory during this turn" in out, out
    assert "claw_tools" not in _mods(out, "failed"), out
    assert ANSWER in out and "claw_tools" not in _mods(out, "after"), out  # the next turn works as before


def test_the_harness_shims_of_the_boards_c_modules_leave_the_heap(register_assistant, unix_run):
    # On the board esp32 and network are C modules in flash: their code costs the GC heap nothing.
    # On this VM the harness loads its shims of them (_esp32, _network) for each use and drops them,
    # and _simhost's rare parts (_simhost_rare) likewise: after a boot that read NVS and joined Wi-Fi,
    # and a Wi-Fi check as before each turn, none of them is in sys.modules.
    res = register_assistant
    prog = BOOT + ("import claw_main as M\nprint('LINK', M._wlan.isconnected(), M._wlan.status())\n"
                   "print('SHIMS', sorted(m for m in sys.modules if m in ('_esp32', '_network', '_simhost_rare')))\n"
                   "print('NET', 'STAT_GOT_IP' in sys.modules['network'].__dict__, __import__('network').STAT_GOT_IP)\n")
    r = unix_run(res.out_dir, entry=prog, secrets=dict(res.nvs_values), timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "wifi: connected, address 127.0.0.1" in r.stdout and "ready: " in r.stdout, r.stdout
    assert "LINK True 1010" in r.stdout, r.stdout  # the station interface works through its front
    assert "SHIMS []" in r.stdout, r.stdout
    # The module the device imported holds none of the shim's names, yet answers for them.
    assert "NET False 1010" in r.stdout, r.stdout


def test_a_register_read_or_write_does_not_load_the_datasheet_reader(register_assistant, unix_run):
    prog = ("import sys\nimport claw_hwtools\n"
            "print('R', claw_hwtools.hw_register_write('GPIO.OUT', '0x3'))\n"
            "print('R', claw_hwtools.hw_register_read('GPIO.OUT'))\n"
            "print('SHEET', 'clawsheet' in sys.modules)\n"
            "print('R', claw_hwtools.hw_register_lookup('GPIO.OUT').split(' - ')[0])\n"
            "print('SHEET', 'clawsheet' in sys.modules, 'RARE', 'clawregx' in sys.modules)\n"
            "print('R', claw_hwtools.hw_register_write('0x60004038', '1'))\n"
            "print('RARE', 'clawregx' in sys.modules)\n")
    r = unix_run(register_assistant.out_dir, entry=prog)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # An allowed read or write loads neither the datasheet reader nor clawregx (write_field and the
    # refusal messages); a refusal imports clawregx for its message.
    assert lines == ["R wrote 0x00000003 to 0x60004004; register now 0x00000003", "R 0x60004004 = 0x00000003 (3)",
                     "SHEET False", "R GPIO.OUT 0x60004004 rw reset=0x00000000 policy=rw", "SHEET True RARE False",
                     "R error: denied: GPIO+0x38 (0x60004038) is not in this build's register allowlist",
                     "RARE True"], lines


def test_the_peripheral_list_does_not_load_the_register_policy(register_assistant, unix_run):
    prog = ("import sys\nimport claw_hwtools\n"
            "print('R', claw_hwtools.hw_module_list().split(chr(10))[0])\n"
            "print('MODS', sorted(m for m in sys.modules if m.startswith('claw')))\n")
    r = unix_run(register_assistant.out_dir, entry=prog)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "R UART0 0x60000000 33 regs" in r.stdout, r.stdout
    mods = _mods(r.stdout.replace("MODS [", "MODS list ["), "list")
    # The list is read from the table file by claw_hwtools itself: neither the datasheet reader
    # (clawsheet) nor the table reader (clawtab) nor the policy is loaded beside its text.
    assert not {"clawsheet", "clawtab", "clawreg", "clawhw"} & set(mods), mods


# claw_tools.call's refusals and notices, whose words live in claw_toolx (imported for the one text,
# dropped right after): each text as the model gets it, and the module gone after each call.
TEXTS = """
import sys
import claw_tools

class Io:
    name = "console"
    via = ""

claw_tools.TABLE["pick"] = ("claw_systools", "system_uptime", False, [], {"mode": ("string", ["a", "b"])}, False)
for name, args in (("nope", "{}"), ("pick", '{"x": "' + "a" * 2000 + '"}'), ("pick", "{oops"),
                   ("pick", "[1]"), ("pick", '{"mode": "c"}'), ("pick", '{"mode": 1}'),
                   ("pick", '{"mode": "a", "x": 1}'), ("system_free_heap", '{"_meta": {}}'),
                   ("hw_register_read", "{}"), ("hw_register_read", '{"address": "NOPE"}')):
    print("R", claw_tools.call(name, args, Io()))
    print("X", "claw_toolx" in sys.modules)
print("A", claw_tools.call("system_reboot", "{}", Io()))
"""


def test_refusal_texts_come_from_claw_toolx_for_the_moment(register_assistant, unix_run):
    r = unix_run(register_assistant.out_dir, modules={"prog": TEXTS}, entry="import prog\nimport claw_commands\n"
                 "print(claw_commands.run('/audit 3', None, None, 0))")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    results = [x[2:] for x in out if x.startswith("R ")]
    unknown = "error: unknown tool 'nope'; available: "
    assert results[0].startswith(unknown), results[0]
    assert sorted(results[0][len(unknown):].split(", ")) == sorted(
        ["hw_register_read", "hw_register_write", "hw_module_list", "hw_register_lookup", "system_uptime",
         "system_free_heap", "system_reboot", "pick"]), results[0]
    assert results[1:] == [
        "error: arguments of 2009 bytes exceed limits.tool_args_bytes (1024)",
        "error: arguments are not valid JSON",
        "error: invalid arguments for pick: arguments must be a JSON object",
        "error: invalid arguments for pick: argument 'mode' must be one of [\"a\", \"b\"]",
        "error: invalid arguments for pick: argument 'mode' must be of type string",
        # An argument the tool does not declare (its handler takes no **kwargs): refused with what
        # it takes, where the handler would fail with "unexpected keyword argument".
        "error: invalid arguments for pick: unknown argument 'x' (it takes mode)",
        "error: invalid arguments for system_free_heap: unknown argument '_meta' (it takes no arguments)",
        "error: invalid arguments for hw_register_read: missing required argument 'address'",
        "error: unknown: no register named NOPE in this build's register allowlist",
    ], results
    assert [x for x in out if x.startswith("X ")] == ["X False"] * 10
    # A confirm: true tool on a channel that cannot ask is declined, in claw_toolx's words.
    assert "A refused: the user declined to run system_reboot; do not retry it unless the user asks" in out
    # The register read that failed before any access: the audit's rule read from the result's words.
    audit = "\n".join(out)
    assert "hw_register_read deny (registers: unknown: no register named NOPE" in audit, audit
