"""How fast a command is answered while a model request is in flight (issue 10: within 0.5 s), on
the MicroPython unix-port VM, measured from a Telnet client on the host.

    python bench/loop_latency_unix.py [--n 20]

The scripted model server holds each reply until the bench releases it. Printed: the round trip
of `/status` typed on Telnet (send -> the whole answer back) with the device idle, while the
console's turn waits for the model, and while the Telnet session's own turn waits; median and
maximum over --n commands, and the ratio of each in-flight median to the idle one, all measured in
this one run. The tests (tests/runtime/test_loop_unix.py) check the order of events, not times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clawgen.sim.llmserver import LLMServer, Reply, wait_for  # noqa: E402
from clawgen.sim.unixvm import UnixDevice  # noqa: E402
from tests.runtime.agent_builds import build, make_spec  # noqa: E402
from tests.runtime.telnet_client import TelnetClient, free_port  # noqa: E402

WIFI = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
SECRETS = {"wifi_ssid": "lab-net", "wifi_password": "hunter22"}
NVS = {"wifi_ssid": b"lab-net", "wifi_pw": b"hunter22"}
LIMIT_S = 0.5


def status_rtts(c: TelnetClient, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.send_line("/status")
        text = c.read_until(b"\n> ")
        out.append(time.perf_counter() - t0)
        if "uptime" not in text:
            raise SystemExit(f"not a /status answer: {text!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="/status commands per condition")
    args = ap.parse_args()
    gate = threading.Semaphore(0)

    def held(_req: Any) -> Reply:
        gate.acquire(timeout=120)
        return Reply.text("the held answer")

    with tempfile.TemporaryDirectory() as d, LLMServer(responder=held) as server:
        port = free_port()
        spec = make_spec(server.base_url, transports={"uart": True, "telnet": {"port": port}}, network=WIFI)
        spec["model"]["read_timeout"] = 120
        out = build(Path(d) / "agent", spec, secrets=SECRETS)
        with UnixDevice(out, secrets=NVS) as dev:
            run = dev.start(open_stdin=True)
            try:
                c = TelnetClient("127.0.0.1", port, wait=30, alive=lambda: run.proc.poll() is None)
                c.read_until(b"\n> ")
                idle = status_rtts(c, args.n)
                run.send("a question on the console\n")
                if not wait_for(lambda: len(server.requests) == 1, 30):
                    raise SystemExit("the console's model request never arrived")
                console = status_rtts(c, args.n)
                gate.release()
                c.send_line("a question on Telnet")
                if not wait_for(lambda: len(server.requests) == 2, 30):
                    raise SystemExit("the Telnet model request never arrived")
                own = status_rtts(c, args.n)
                gate.release()
                c.read_until(b"the held answer")
            finally:
                for _ in range(3):
                    gate.release()
                run.kill()
    base = statistics.median(idle)
    print(f"unix-port VM, /status round trip on Telnet, {args.n} commands each (ms)")
    print(f"{'condition':44} {'median':>8} {'max':>8} {'ratio':>7}")
    for name, xs in (("idle", idle), ("console turn waiting for the model", console),
                     ("Telnet's own turn waiting for the model", own)):
        print(f"{name:44} {statistics.median(xs) * 1000:8.1f} {max(xs) * 1000:8.1f} "
              f"{statistics.median(xs) / base:7.2f}")
    worst = max(console + own)
    print(f"slowest in-flight answer {worst * 1000:.1f} ms: {'within' if worst <= LIMIT_S else 'OVER'} "
          f"the issue's {LIMIT_S * 1000:.0f} ms")


if __name__ == "__main__":
    main()
