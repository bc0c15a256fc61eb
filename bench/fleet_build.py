"""Fleet build time: the same spec built once for one board, then for 100 devices (--devices).

Run: python bench/fleet_build.py  (a synthetic stock base image, so firmware.bin is merged too;
needs no network or board)

Both builds run in this process with --force, the compile cache warm (one build first, not
timed), so the difference is what the fleet adds: reading and checking the devices file and
writing 100 NVS images plus their device.json. Printed: the single build, the 100-device build,
their difference (the issue's bound: under 5 s) and the ratio, measured in one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clawgen.build import BuildOptions, build_spec
from tests.image import synth

DEVICES = 100
SPEC = """\
name: fleet-bench
board: esp32s3
system_prompt: Answer in one sentence.
model:
  base_url: https://llm.example.com/v1
  model: small-model
  api_key: !secret api_key
network:
  ssid: !secret wifi_ssid
  password: !secret wifi_password
transports:
  uart: true
  telnet: true
capabilities: [system]
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["CLAWGEN_CACHE"] = str(root / "cache")
        (root / "agent.yaml").write_text(SPEC)
        (root / "secrets.yaml").write_text("api_key: sk-bench-0123456789\nwifi_ssid: bench-net\n"
                                           "wifi_password: bench-pass-0123\nshared_key: sk-shared-0123456789\n")
        lines = ["secrets:", "  api_key: !secret shared_key", "devices:"]
        for i in range(DEVICES):
            lines += [f"  - name: device-{i:03d}", f"    hostname: claw-{i:03d}", "    secrets:",
                      f"      wifi_ssid: net-{i:03d}", f"      wifi_password: pass-{os.urandom(8).hex()}"]
        (root / "devices.yaml").write_text("\n".join(lines) + "\n")
        base = root / "base.bin"
        base.write_bytes(synth.stock_firmware("esp32s3"))

        def build(out: str, devices: Path | None) -> float:
            t = time.perf_counter()
            res = build_spec(root / "agent.yaml", BuildOptions(out_dir=root / out, base_firmware=base, force=True,
                                                               devices=devices))
            took = time.perf_counter() - t
            assert not res.up_to_date and (root / out / "image" / "firmware.bin").is_file()
            return took

        build("warm-up", None)  # mpy-cross and the filesystem-image cache, for both runs alike
        single = build("single", None)
        fleet = build("fleet", root / "devices.yaml")
        made = sorted(p.name for p in (root / "fleet" / "devices").iterdir())
        assert len(made) == DEVICES, made
        print(f"single build (firmware.bin merged):    {single:.2f} s")
        print(f"{DEVICES}-device fleet build:            {fleet:.2f} s")
        print(f"difference (the fleet's cost):         {fleet - single:.2f} s "
              f"({1000 * (fleet - single) / DEVICES:.1f} ms per device; bound: 5 s)")
        print(f"ratio fleet / single:                  {fleet / single:.2f}x")
        # The same through the command line, each a fresh process (imports included), as a user runs it.
        cmd = [sys.executable, "-m", "clawgen.cli", "build", str(root / "agent.yaml"), "--force", "-q",
               "--base-firmware", str(base)]
        times = []
        for out, extra in (("cli-single", []), ("cli-fleet", ["--devices", str(root / "devices.yaml")])):
            t = time.perf_counter()
            subprocess.run([*cmd, "--out", str(root / out), *extra], check=True)
            times.append(time.perf_counter() - t)
        print(f"`clawgen build` single / {DEVICES} devices:   {times[0]:.2f} s / {times[1]:.2f} s, "
              f"difference {times[1] - times[0]:.2f} s")


if __name__ == "__main__":
    main()
