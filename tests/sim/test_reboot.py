"""The WebAssembly simulator's restart (`Simulation(..., reboot_entry=...)`, used by `clawgen sim` for
OTA updates): machine.reset() boots a fresh VM on the same filesystem and NVS, with the simulator's
shims put back over whatever the device wrote to /lib, and the device's listeners back on the same
host ports."""

from __future__ import annotations

import socket
from pathlib import Path

from clawgen.sim import vm

PROG = """
import esp32
import machine
import os
import socket

try:
    n = int(open("/boots.txt").read())
except OSError:
    n = 0
n += 1
with open("/boots.txt", "w") as f:
    f.write(str(n))
print("boot", n, "nonce bytes", len(os.urandom(32)), "distinct", os.urandom(16) != os.urandom(16))
srv = socket.socket()
srv.bind(socket.getaddrinfo("0.0.0.0", 4567)[0][-1])
srv.listen(1)
nvs = esp32.NVS("clawgen")
if n == 1:
    nvs.set_blob("runtime", b"kept")
    with open("/lib/machine.mpy", "wb") as f:
        f.write(b"an update's board module, not the simulator's")
    machine.reset()
buf = bytearray(4)
nvs.get_blob("runtime", buf)
print("nvs", bytes(buf), "machine shim", hasattr(machine, "reset"))
c, _ = srv.accept()
c.write(b"hello from boot %d\\n" % n)
c.close()
"""


def test_reset_restarts_on_the_same_flash_and_nvs(mpvm: Path) -> None:
    sim = vm.Simulation(None, stdin=None, modules={"prog": PROG}, entry="import prog", reboot_entry="import prog",
                        port_map={4567: 0})
    try:
        first = sim.wait_event("listening", timeout=60)
        assert sim.wait_event("reset", timeout=60)["boot"] == 2
        second = sim.wait_event("listening", timeout=60)
        assert second["port"] == first["port"]  # the restarted device listens on the same host port
        with socket.create_connection(("127.0.0.1", second["port"]), timeout=30) as c:
            c.settimeout(30)
            assert c.makefile("rb").readline() == b"hello from boot 2\n"
        res = sim.wait(60)
    finally:
        sim.kill()
    assert res.returncode == 0 and res.reason == "exit", res.stdout + res.stderr
    assert "boot 1 nonce bytes 32 distinct True" in res.stdout
    assert "boot 2 nonce bytes 32 distinct True" in res.stdout
    assert "nvs b'kept' machine shim True" in res.stdout
    assert res.files["/boots.txt"] == b"2"
