"""The device's UART console module (claw_console, which the simulators swap for a shim) on the
MicroPython unix-port VM, with only sys.stdin/stdout and select faked: line editing, the
content_bytes bound (UTF-8 aware, in a buffer that exists only while a line is typed), Ctrl-C and
Ctrl-D."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runtime.agent_builds import build, make_spec

# The hardware edge: a scripted stdin that select.poll always finds readable, a recorded stdout.
FAKE_SYS = """
import sys as _sys
class _In:
    def __init__(self):
        self.data = ""
    def read(self, n):
        ch, self.data = self.data[:1], self.data[1:]
        return ch
class _Out:
    def __init__(self):
        self.parts = []
    def write(self, s):
        self.parts.append(s)
stdin = _In()
stdout = _Out()
"""
FAKE_SELECT = """
POLLIN = 1
class _Poll:
    def register(self, obj, mask):
        pass
    def poll(self, timeout=-1):
        import fakesys
        return [(fakesys.stdin, POLLIN)] if fakesys.stdin.data else []
def poll():
    return _Poll()
"""
PROGRAM = """
import json, fakesys, devconsole
fakesys.stdin.data = SCRIPT
lines = []
while True:
    line = devconsole.readline(0)
    if line == "" and fakesys.stdin.data:
        continue
    if line == "" :
        break
    lines.append(line)
    if line is None:
        break
print("RESULT " + json.dumps({"lines": lines, "out": "".join(fakesys.stdout.parts)}))
"""


def run_console(tmp_path: Path, unix_run, script: str, content_bytes: int = 256) -> dict:
    out = build(tmp_path, make_spec("http://127.0.0.1:9/v1", limits={"content_bytes": content_bytes}))
    src = (out / "app" / "claw_console.py").read_text()
    assert "import sys\n" in src and "import select\n" in src
    src = src.replace("import sys\n", "import fakesys as sys\n").replace("import select\n", "import fakeselect as select\n")
    res = unix_run(None, modules={"fakesys": FAKE_SYS, "fakeselect": FAKE_SELECT, "devconsole": src},
                  entry=f"SCRIPT = {json.dumps(script)}\n" + PROGRAM)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.split("RESULT ", 1)[1])


def test_line_editing_and_control_keys(tmp_path: Path, unix_run):
    got = run_console(tmp_path, unix_run, "helo\x08\x08llo\r\ncaf\u00e9\x7f\u00e9!\nabc\x03xyz\n\x04")
    assert got["lines"] == ["hello", "caf\u00e9!", "xyz", None]
    assert "\x08 \x08" in got["out"] and "^C\r\n" in got["out"]


def test_line_longer_than_content_bytes_is_bounded(tmp_path: Path, unix_run):
    # 300 two-byte characters into a 256-byte line: 128 are kept (never half of one), the rest beep.
    got = run_console(tmp_path, unix_run, "\u00e9" * 300 + "\nnext\n\x04")
    assert got["lines"] == ["\u00e9" * 128, "next", None]
    assert got["out"].count("\x07") == 300 - 128


def test_real_stdin_pipe_and_select(tmp_path: Path, unix_run):
    """The device module unchanged, on the unix port's own sys.stdin (a pipe) and select.poll:
    read(1) gives whole UTF-8 characters, CR LF gives a line and an empty one, Ctrl-D ends."""
    out = build(tmp_path, make_spec("http://127.0.0.1:9/v1", limits={"content_bytes": 256}))
    src = (out / "app" / "claw_console.py").read_text()
    prog = (
        "import json, devconsole\n"
        "lines = []\n"
        "while True:\n"
        "    line = devconsole.readline()\n"
        "    lines.append(line)\n"
        "    if line is None:\n"
        "        break\n"
        "print('RESULT ' + json.dumps(lines))\n"
    )
    res = unix_run(None, modules={"devconsole": src, "prog": prog}, entry="import prog",
                   stdin="helo\x08\x08llo\r\ncaf\u00e9\x7f\u00e9!\nabc\x03xyz\n\x04")
    assert res.returncode == 0, res.stderr
    echo, result = res.stdout.split("RESULT ", 1)
    assert json.loads(result) == ["hello", "", "caf\u00e9!", "xyz", None]
    assert "\x08 \x08" in echo and "^C\r\n" in echo and "caf\u00e9" in echo


def test_the_line_buffer_exists_only_while_a_line_is_typed(tmp_path: Path, unix_run):
    """No buffer before the first character; one of content_bytes from it until the line is returned
    (or dropped by Ctrl-C); none after: a turn (claw_main reads no line during one) runs without it.
    With no room for the buffer the character is dropped with a beep and the console goes on."""
    out = build(tmp_path, make_spec("http://127.0.0.1:9/v1", limits={"content_bytes": 256}))
    src = (out / "app" / "claw_console.py").read_text()
    src = src.replace("import sys\n", "import fakesys as sys\n").replace("import select\n", "import fakeselect as select\n")
    prog = (
        "import json, fakesys, devconsole as c\n"
        "seen = [c._buf is None]\n"
        "fakesys.stdin.data = 'ab'\n"
        "seen += [c.readline(0), len(c._buf), bytes(c._buf[:2]).decode()]\n"
        "fakesys.stdin.data = 'c\\n'\n"
        "seen += [c.readline(0), c._buf is None]\n"
        "fakesys.stdin.data = 'xy\\x03'\n"
        "seen += [c.readline(0), c._buf is None]\n"
        "def full(n):\n"
        "    raise MemoryError\n"
        "c.bytearray = full\n"
        "fakesys.stdin.data = 'q\\n'\n"
        "seen += [c.readline(0), c._buf is None]\n"
        "del c.bytearray\n"
        "fakesys.stdin.data = 'ok\\n'\n"
        "seen += [c.readline(0), c._buf is None]\n"
        "print('RESULT ' + json.dumps({'seen': seen, 'out': ''.join(fakesys.stdout.parts)}))\n"
    )
    res = unix_run(None, modules={"fakesys": FAKE_SYS, "fakeselect": FAKE_SELECT, "devconsole": src, "prog": prog},
                   entry="import prog")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.split("RESULT ", 1)[1])
    assert got["seen"] == [True, "", 256, "ab", "abc", True, "", True, "", True, "ok", True]
    assert got["out"].count("\x07") == 1  # the one character without room for a buffer
