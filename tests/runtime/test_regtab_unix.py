"""The register tables as the device file /clawreg.tab (clawgen/regtab.py), read by offset, on the
MicroPython unix-port VM: every public answer of clawreg/clawsheet is the same as with the same
tables inline in the module (how a bare register plan renders them), the .mpy no longer carries
them, and a missing file is a clear tool error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.chips.render import RegisterPlan, render_app_module
from clawgen.diagnostics import DiagnosticError
from tests.runtime.agent_builds import build, make_spec

GPIO_OUT = 0x60004004  # ESP32-S3 GPIO_OUT_REG

PROG = """
import json
import clawreg
import clawsheet

out = []


def q(f, *a):
    try:
        out.append(repr(f(*a)))
    except clawreg.RegError as e:
        out.append("RegError: %s" % e)


for a in (0x60004004, 0x60004008, 0x60004000, 0x60004038, 0x60004003, 0x10, 0x600040FC):
    q(clawreg.describe, a)
    q(clawreg.read, a)
q(clawreg.write, 0x60004004, 5)
q(clawreg.write, 0x60004004, 0x1FFFFFFFF)
q(clawreg.write_field, "GPIO.OUT.DATA_ORIG", 3)
q(clawreg.write_field, "GPIO.OUT.NOPE", 3)
q(clawreg.write_field, "GPIO.IN.DATA_NEXT", 1)
for name in ("GPIO.OUT", "gpio.enable", "0x60004004", "GPIO.NOPE", ""):
    q(clawreg.resolve, name)
q(clawsheet.modules)
for name in ("GPIO.OUT", "GPIO.OUT.DATA_ORIG", "GPIO.OUT.NOPE", "GPIO", "LEDC", "UART0", "EFUSE.X", "NOPE", ""):
    q(clawsheet.lookup, name)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def reg_build(tmp_path: Path, monkeypatch) -> tuple[Path, object]:
    from clawgen.resources import chips_dir

    monkeypatch.setenv("CLAWGEN_CHIP_PATH", str(chips_dir()))
    spec = make_spec("http://127.0.0.1:9/v1", capabilities=["hw_register_control", "hw_datasheet"], tools=[],
                     registers={"defaults": True, "allow": [{"match": "GPIO.OUT*", "access": "read-write"},
                                                            {"match": "GPIO.ENABLE*", "access": "read-write"}]})
    try:
        out = build(tmp_path / "b", spec)
    except DiagnosticError as e:
        if "unknown chip" in str(e):
            pytest.skip("the chip database is not available in this checkout")
        raise
    from clawgen.build import BuildOptions, load_and_plan

    planned = load_and_plan(tmp_path / "b" / "agent.yaml", BuildOptions())
    return out, planned.plan


def _answers(res) -> list[str]:
    assert res.returncode == 0, res.stderr
    (line,) = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


def test_file_tables_answer_like_inline_tables(reg_build, unix_run):
    out, plan = reg_build
    assert (out / "app" / "clawreg.tab").is_file()
    assert "/clawreg.tab" in json.loads((out / "build.json").read_text())["device_files"]
    src = (out / "app" / "clawreg.py").read_text()
    assert "_TAB = '/clawreg.tab'" in src and "_INLINE = b''" in src
    from_file = _answers(unix_run(out, modules={"prog": PROG}, entry="import prog", registers={GPIO_OUT: 0}))
    # The same policy rendered alone (no build, no file): the tables inline in the module.
    bare = RegisterPlan(plan.registers.chip, plan.registers)
    inline = {"clawreg": render_app_module("clawreg", bare), "clawsheet": render_app_module("clawsheet", bare),
              "prog": PROG}
    assert "_TAB = None" in inline["clawreg"]
    from_inline = _answers(unix_run(None, modules=inline, entry="import prog", registers={GPIO_OUT: 0}))
    assert from_file == from_inline
    assert "'GPIO.OUT'" in from_file[0]
    assert any(a.startswith("'GPIO.OUT 0x60004004 rw") for a in from_file)
    assert any("RegError: unknown: GPIO.OUT has no field NOPE" == a for a in from_file)


def test_missing_table_file_is_a_clear_error(reg_build, unix_device):
    out, _plan = reg_build
    dev = unix_device(out, registers={GPIO_OUT: 0})
    (dev.root / "clawreg.tab").unlink()
    res = dev.run(entry="import clawreg\ntry:\n    clawreg.read(0x60004004)\n"
                  "except clawreg.RegError as e:\n    print('ERR', e)\n"
                  "import claw_hwtools\ntry:\n    claw_hwtools.hw_module_list()\n"  # (reads the file itself)
                  "except Exception as e:\n    print('LIST', e)\n", timeout=30)
    assert res.returncode == 0, res.stderr
    assert "ERR cannot read the register tables /clawreg.tab: deploy the whole app bundle again" in res.stdout
    assert "LIST cannot read the register tables /clawreg.tab: deploy the whole app bundle again" in res.stdout
