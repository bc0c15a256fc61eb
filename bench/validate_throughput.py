"""Validate throughput: `clawgen validate` in-process vs a bare YAML + JSON Schema loop.

    python bench/validate_throughput.py [-n 1000] [--seed 9] [--profile]

Generates N varied valid specs (boards, fallbacks, capabilities with register policies,
custom tools, limits, persistence, secrets) in a temporary directory, then times

- `clawgen validate DIR` run in this process (click's runner: the whole command), and
- a bare loop over the same files: yaml.safe_load (with a `!secret` constructor, so the
  files load) and one prebuilt jsonschema validator's ``validate``; and the same loop with
  libyaml's CSafeLoader, which clawgen's loader also uses, for a stricter comparison.

Prints specs/s of each and their ratio (goal: clawgen >= 0.5 of the bare loop). Each is run
twice and the faster run counts (the first clawgen run also pays one-off imports and caches).
``--profile`` prints the top of a cProfile of one clawgen run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BOARDS = ("esp32s3", "esp32", "esp32c3", "esp32c6")
URLS = ("https://api.openai.com/v1", "https://openrouter.ai/api/v1", "http://192.168.1.20:11434/v1",
        "http://10.0.0.7:8080/v1", "https://api.example.org/openai/v1")
MODELS = ("gpt-4o-mini", "meta-llama/llama-3.1-8b-instruct", "qwen2.5:3b", "local", "mistral-small")
CAPS = ("system", "web_browsing", "hw_register_control", "hw_datasheet")
ALLOW = ("GPIO.OUT*", "GPIO.ENABLE*", "LEDC.*", "UART0.*", "GPIO.IN*")

HANDLERS = '''\
def read_sensor(sensor):
    return {"sensor": sensor, "value": 21.5}


def set_relay(on):
    return {"on": on}


def blink(times=1):
    return times
'''
TOOLS = (
    {"name": "read_sensor", "description": "Read a sensor.", "handler": "tools/handlers.py:read_sensor",
     "parameters": {"type": "object", "properties": {"sensor": {"type": "string"}}, "required": ["sensor"]}},
    {"name": "set_relay", "description": "Switch the relay.", "handler": "tools/handlers.py:set_relay",
     "parameters": {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]},
     "confirm": True},
    {"name": "blink", "description": "Blink the LED.", "handler": "tools/handlers.py:blink"},
)


def _spec(i: int, rnd: random.Random) -> str:
    board = rnd.choice(BOARDS)
    url = rnd.choice(URLS)
    model: dict = {"base_url": url, "model": rnd.choice(MODELS)}
    keyed = url.startswith("https")
    if keyed:
        model["api_key"] = "!secret api_key"
    if rnd.random() < 0.5:
        model["max_tokens"] = rnd.choice((256, 384, 512, 1024))
    if rnd.random() < 0.4:
        model["temperature"] = rnd.choice((0.0, 0.2, 0.7))
    if rnd.random() < 0.3:
        model["headers"] = {"X-Title": f"agent {i}"}
    if rnd.random() < 0.3:
        model["fallbacks"] = [{"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
                               "api_key": "!secret api_key"}] * rnd.randint(1, 2)
    spec: dict = {"name": f"agent-{i}", "board": board,
                  "system_prompt": f"You are agent {i}. " + "Answer briefly. " * rnd.randint(1, 20),
                  "model": model}
    telnet = rnd.random() < 0.4
    if telnet or rnd.random() < 0.5:
        spec["network"] = {"ssid": "!secret wifi_ssid", "password": "!secret wifi_password"}
    spec["transports"] = {"uart": True, "telnet": {"port": 2323}} if telnet else {"uart": True}
    caps = sorted(rnd.sample(CAPS, rnd.randint(0, len(CAPS))), key=CAPS.index)
    if caps:
        spec["capabilities"] = caps
    if "hw_register_control" in caps and rnd.random() < 0.5:
        spec["registers"] = {"defaults": True, "allow": [rnd.choice(ALLOW)],
                             "deny": [{"match": "GPIO.STRAP", "access": "write"}]}
    tools = rnd.sample(TOOLS, rnd.randint(0, len(TOOLS)))
    if tools:
        spec["tools"] = tools
    if rnd.random() < 0.3:
        spec["limits"] = {"request_bytes": 16384, "response_bytes": 16384}
    if rnd.random() < 0.3:
        spec["persistence"] = {"mode": "flash", "max_bytes": 16384}
    if board in ("esp32s3", "esp32") and rnd.random() < 0.3:
        spec["hardware"] = {"psram": True}
    text = yaml.safe_dump(spec, sort_keys=False, width=200)
    # yaml quotes the "!secret x" strings: turn them into tags
    return text.replace("'!secret api_key'", "!secret api_key").replace(
        "'!secret wifi_ssid'", "!secret wifi_ssid").replace("'!secret wifi_password'", "!secret wifi_password")


def generate(root: Path, n: int, seed: int) -> list[Path]:
    rnd = random.Random(seed)
    (root / "tools").mkdir()
    (root / "tools" / "handlers.py").write_text(HANDLERS)
    (root / "secrets.yaml").write_text("api_key: sk-bench-not-a-key\nwifi_ssid: bench-net\n"
                                       "wifi_password: bench-password-1\n")
    paths = []
    for i in range(n):
        p = root / f"agent{i:05d}.yaml"
        p.write_text(_spec(i, rnd))
        paths.append(p)
    return paths


class _SecretLoader(yaml.SafeLoader):
    pass


_SecretLoader.add_constructor("!secret", lambda loader, node: "<secret>")


class _CSecretLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


_CSecretLoader.add_constructor("!secret", lambda loader, node: "<secret>")


def bare_loop(paths: list[Path], loader: type = _SecretLoader) -> float:
    import jsonschema

    from clawgen.resources import schemas_dir

    schema = json.loads((schemas_dir() / "agent.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    t = time.perf_counter()
    for p in paths:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=loader)  # a SafeLoader subclass
        validator.validate(data)
    return time.perf_counter() - t


def clawgen_validate(root: Path) -> float:
    from click.testing import CliRunner

    from clawgen.cli import cli

    t = time.perf_counter()
    result = CliRunner().invoke(cli, ["validate", str(root)])
    elapsed = time.perf_counter() - t
    if result.exit_code != 0:
        sys.exit(f"clawgen validate failed (exit {result.exit_code}):\n{result.output[-3000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000, help="number of specs (default 1000)")
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one clawgen run")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="clawgen-validate-bench-") as tmp:
        root = Path(tmp)
        paths = generate(root, a.n, a.seed)
        bare = min(bare_loop(paths) for _ in range(2))
        bare_c = min(bare_loop(paths, _CSecretLoader) for _ in range(2))
        ours = min(clawgen_validate(root) for _ in range(2))
        print(f"specs: {a.n} (seed {a.seed})")
        print(f"bare yaml.safe_load + jsonschema loop:            {a.n / bare:8.1f} specs/s")
        print(f"bare loop with libyaml (CSafeLoader) + jsonschema: {a.n / bare_c:8.1f} specs/s")
        print(f"clawgen validate (in-process):                     {a.n / ours:8.1f} specs/s")
        print(f"ratio clawgen / bare: {bare / ours:.2f}  (goal >= 0.5)")
        print(f"ratio clawgen / bare with libyaml: {bare_c / ours:.2f}")
        if a.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            clawgen_validate(root)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
