"""An idle device allocates nothing in the event loop (claw_loop, docs/runtime.md "Heap on a real
GC"): on the MicroPython unix-port VM, the real boot of an agent with the console and a Telnet
server, then 200 rounds of the loop with nothing to read (the console and the listening socket
registered with the poll object where the console is pollable, plus one task resumed every round;
the loop's clock frozen, so that no other deadline passes), with the collector off so
that every byte allocated counts. Registering an object with select.poll allocates, so objects a
task keeps waiting on stay registered from round to round; the console then still answers a command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.runtime.agent_builds import build, make_spec
from tests.runtime.telnet_client import free_port

ROUNDS = 200
WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22"}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}

# Boot as main.py does; claw_loop.run is replaced: ROUNDS idle rounds measured, then a command.
ENTRY = f"""
import gc
import claw_loop as L
import claw_main

Z = (None, 0, L.now())  # a deadline already passed: resumed every round, yields nothing new


def spin():
    while True:
        yield Z


def run():
    t = L.add("spin", spin)
    for _ in range(20):
        L._round()
    now = L.now
    T = now()
    L.now = lambda: T  # frozen: no deadline but the spinner's passes while measuring
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range({ROUNDS}):
        L._round()
    b = gc.mem_alloc()
    gc.enable()
    L.now = now
    print("IDLE %d bytes, %d tasks, %d registered" % (b - a, len(L._tasks), len(L._regd)))
    uart, s = next(x[2] for x in L._tasks if x[0] == "console")
    claw_main.submit(s, "/status", uart)  # the console session still answers


L.run = run
claw_main.main()
"""


def test_idle_rounds_allocate_nothing(tmp_path: Path, unix_device: Any) -> None:
    spec = make_spec("http://127.0.0.1:9/v1", transports={"uart": True, "telnet": {"port": free_port()}},
                     network=WIFI)
    dev = unix_device(build(tmp_path / "b", spec, secrets=SECRETS), secrets=NVS)
    run = dev.start(entry=ENTRY, open_stdin=True)
    try:  # (the UART stays open and silent: the program ends by itself)
        res = run.wait(60)
    finally:
        run.kill()
    line = next((ln for ln in res.stdout.splitlines() if "IDLE " in ln), None)
    assert line is not None, res.stdout[-2000:] + res.stderr[-2000:]
    assert line.endswith("IDLE 0 bytes, 5 tasks, 1 registered"), res.stdout  # (the Telnet server)
    assert "uptime" in res.stdout.split(line, 1)[1], res.stdout[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
