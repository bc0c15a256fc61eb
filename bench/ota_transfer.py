"""OTA transfer of the register-assistant bundle over loopback, to the MicroPython unix-port VM.

    python bench/ota_transfer.py [--runs 3]

The example spec (examples/agents/register-assistant.yaml) plus an ``ota:`` block is built twice
(two system prompts, so the second upload really replaces files); a simulated device boots build A
and listens for OTA on a free 127.0.0.1 port; ``clawgen.ota.push`` sends build B. Printed per run:
bytes sent, files, time from connect to the device's "installed" reply (HMAC check, staged write,
sha256 of every file, the switch), and the throughput; then the median and its ratio to the time
the same bytes take through a plain loopback socket in this run (the protocol's and the VM's cost).
The device's own reset and restart are not in the time. Figures depend on the machine; the unix
port is not an ESP32 on Wi-Fi (there the radio, ~0.5-2 MB/s, and flash writes dominate).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clawgen import ota  # noqa: E402
from clawgen.build import build_spec  # noqa: E402
from clawgen.sim.unixvm import UnixDevice  # noqa: E402
from clawgen.sim.vm import SHIM_MODULES  # noqa: E402

KEY = "bench-ota-key-0123456789abcdef"
ENTRY = 'exec(open("/main.py").read(), {"__name__": "__main__"})'
EXCLUDE = tuple(f"/lib/{m}.mpy" for m in SHIM_MODULES)  # the simulator's hardware shims stay


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_build(tmp: Path, port: int, prompt_extra: str) -> Path:
    src = ROOT / "examples" / "agents"
    d = tmp / f"spec{prompt_extra}"
    shutil.copytree(src, d)
    spec = d / "register-assistant.yaml"
    text = spec.read_text().replace("Answer briefly.", f"Answer briefly.{prompt_extra}")
    spec.write_text(text + f"ota:\n  port: {port}\n  key: !secret ota_key\n")
    with open(d / "secrets.yaml", "a") as f:
        f.write(f"ota_key: {KEY}\n")
    return build_spec(spec, out_dir=d / "out", images=False, force=True).out_dir


def wait_listening(port: int) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.makefile("rb").readline()
            return
        except ConnectionRefusedError:
            time.sleep(0.05)
    raise SystemExit("the device did not start its OTA server")


def loopback_seconds(nbytes: int) -> float:
    """The same bytes through a plain loopback socket, in chunks of the OTA chunk size."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def sink() -> None:
        c, _ = srv.accept()
        while c.recv(65536):
            pass
        c.sendall(b"x")
        c.close()

    t = threading.Thread(target=sink, daemon=True)
    t.start()
    data = bytes(ota.CHUNK_BYTES)
    t0 = time.perf_counter()
    with socket.create_connection(srv.getsockname()) as c:
        left = nbytes
        while left > 0:
            c.sendall(data[:min(left, len(data))])
            left -= len(data)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
    dt = time.perf_counter() - t0
    t.join()
    srv.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clawota-bench-"))
    try:
        port = free_port()
        a = make_build(tmp, port, "")
        b = make_build(tmp, port, " Be exact.")
        times = []
        sent = 0
        for i in range(args.runs):
            with UnixDevice(a, secrets={"ota_key": KEY.encode(), "wifi_ssid": b"example-wifi",
                                        "wifi_pw": b"example-password"}, workdir=tmp / f"dev{i}") as dev:
                dev.write_file("/main.py", (a / "app" / "main.py").read_bytes())
                run = dev.start(open_stdin=True, entry=ENTRY)
                wait_listening(port)
                res = ota.push(b, "127.0.0.1", port, KEY.encode(), exclude=EXCLUDE)
                out = run.wait(30)
                if out.reason != "reset":
                    raise SystemExit(f"the device did not restart after the upload:\n{out.stdout}{out.stderr}")
                sent = res.bytes_sent
                times.append(res.seconds)
                print(f"run {i + 1}: {res.bytes_sent} bytes in {res.files} files, {res.seconds * 1000:.0f} ms, "
                      f"{res.bytes_sent / res.seconds / 1024:.0f} KiB/s")
        med = statistics.median(times)
        base = loopback_seconds(sent)
        best = min(times)
        print(f"register-assistant bundle: {sent} bytes; OTA transfer median {med * 1000:.0f} ms "
              f"({sent / med / 1024:.0f} KiB/s), fastest {best * 1000:.0f} ms, over loopback to the unix-port "
              f"VM; a plain loopback socket moves the same bytes in {base * 1000:.1f} ms (OTA median / plain = "
              f"{med / base:.0f}x)")
        print("(the device's OTA task is woken by the upload's data; each file is written to flash and its "
              "hash checked before the next one is read)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
