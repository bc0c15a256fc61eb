"""Hostile model replies on the real device runtime (the build's .mpy on the MicroPython unix-port VM,
real sockets): seeded mutations of good chat-completion replies, and of good Anthropic Messages
replies for a spec with model.api: anthropic (tests/mutate.py: any value replaced
by null, huge numbers, long or NUL strings, lists, dicts, a 300-deep array, keys removed; some cut
short and followed by random bytes). Whatever comes, the device answers with the reply's text, a tool
call or an [error] line of its own, never an internal error or a traceback, and the next line of the
session gets a normal answer."""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from clawgen.sim import unixvm as uvm
from clawgen.sim.llmserver import LLMServer, Reply, completion, message, tool_call, tool_use
from tests.mutate import mutate_json
from tests.runtime.test_faults import API_KEY, SPEC

GOOD = {
    "openai": [completion("hello"),
               completion(None, [tool_call("add", {"a": 1, "b": 2}, "c1")]),
               completion("x", [tool_call("add", '{"a": 1, "b": 2}', "c1"), tool_call("nope", {}, "c2")])],
    "anthropic": [message("hello"),
                  message(None, [tool_use("add", {"a": 1, "b": 2}, "toolu_1")]),
                  message("x", [tool_use("add", {"a": 1, "b": 2}, "toolu_1"), tool_use("nope", {}, "toolu_2")])],
}
SENTINEL = "the next answer"
CASES = int(os.environ.get("CLAWGEN_FUZZ_CASES", "30"))


@pytest.fixture(scope="module", params=["openai", "anthropic"])
def device(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LLMServer, Path, dict[str, bytes]]]:
    from clawgen.build import build_spec

    api = request.param
    d = tmp_path_factory.mktemp("mutated")
    (d / "agent.yaml").write_text(SPEC.replace("model:\n", f"model:\n  api: {api}\n"))
    (d / "secrets.yaml").write_text(f"api_key: {API_KEY.decode()}\nwifi_ssid: testnet\nwifi_password: testpass\n")
    (d / "tools").mkdir()
    (d / "tools" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    server = LLMServer(api=api)
    try:
        result = build_spec(d / "agent.yaml", out_dir=d / "build", images=False, model_override=server.base_url)
        yield api, server, result.out_dir, dict(result.nvs_values)
    finally:
        server.close()


def test_mutated_model_replies_never_break_the_device(device, unixvm: str) -> None:
    api, server, build, secrets = device
    good = Reply.text if api == "openai" else Reply.message
    rng = random.Random(20261205)
    kinds: Counter[str] = Counter()
    for case in range(CASES):
        body = json.dumps(mutate_json(rng.choice(GOOD[api]), rng)).encode()
        if rng.random() < 0.15:
            body = body[:rng.randint(0, len(body))] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
        server._queue.clear()
        server.requests.clear()
        # The mutated reply, then normal ones for whatever the device asks next (a retry, the
        # turn's follow-up after tool calls, the next line).
        server.push(Reply.raw(body), *[good(SENTINEL) for _ in range(6)])
        res = uvm.run(build, stdin=["first", "second", "/quit"], secrets=secrets, timeout=60)
        out = res.stdout + res.stderr
        shown = f"case {case}: {body[:600]!r}\n{out[-2000:]}"
        assert res.reason == "exit" and res.returncode == 0, shown
        assert "Traceback" not in out and "[error] internal" not in out, shown
        got = [chunk.strip() for chunk in re.split(r"(?:^|\n)> ", res.stdout)[1:]]
        assert len(got) >= 2 and got[1] == SENTINEL, shown
        first = got[0]
        kinds["tool" if "[tool]" in first else "refused" if first == SENTINEL or first.startswith("[error]")
              else "text"] += 1
    # The mutations reach every path: replies refused (the retry or the [error] line answered),
    # tool calls run, odd texts shown.
    assert len(kinds) == 3, kinds
