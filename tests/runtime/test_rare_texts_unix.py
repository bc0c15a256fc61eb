"""The words of rare paths kept out of the heap (issue 8, item 6), on the MicroPython unix-port VM:
claw_agent's (steering, bounds, cooldowns, fallbacks, an empty or cut answer) are claw_agentx.TEXTS,
claw_http's (a broken or oversized exchange) claw_neterr.TEXTS, and claw_tools' refusals are
claw_toolx's, each module imported for one text and dropped right after. The index tables and the
texts stay in step, and each text reaches the user as it did."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clawgen.sim.llmserver import LLMServer, Reply
from tests.runtime.agent_builds import build, make_spec

# Every text with arguments of the right count and kind, by its claw_agent._T_* name.
ARGS = {"SKIPPED_NOTE": ("t",), "NOT_RUN": (4,), "TOO_MANY": (6, 4), "STOPPED": (6, 6), "NO_FIT": (8192,),
        "SHORTER": ("m",), "DROPPED_RETRY": ("m",), "COOLS": ("mod", "h", 30, "rate_limit"),
        "SKIPPING": ("mod", "h", "rate_limit", 5), "COOLING": ("mod", "h", "rate_limit", 5),
        "RETRYING": ("m", "h", 1), "FALLBACK": ("m", "mod"), "ROUTE_FALLBACK": ("timeout",),
        "RESPONSE_LIMIT": ("m",), "CUT": ("c",), "INTERNAL": ("E: x",)}


def test_the_index_table_and_the_texts_stay_in_step(tmp_path: Path, llm_server: LLMServer, unix_run) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url))
    agent = (out / "app" / "claw_agent.py").read_text()
    texts = (out / "app" / "claw_agentx.py").read_text()
    index = {m[1]: int(m[2]) for m in re.finditer(r"(?m)^_T_(\w+) = const\((\d+)\)", agent)}
    order = re.findall(r"(?m)^    .*,  # _T_(\w+)$", texts)
    assert order and sorted(index.values()) == list(range(len(order))), (index, order)
    assert [name for name, _ in sorted(index.items(), key=lambda kv: kv[1])] == order
    assert set(re.findall(r"_say\(_T_(\w+)", agent)) == set(index)  # every text is used, none is missing
    prog = f"import sys\nimport claw_agent\nT = {index!r}\n" + "".join(
        f"print({name!r}, repr(claw_agent._say(T[{name!r}], *{ARGS.get(name, ())!r})))\n" for name in order)
    prog += "print('LOADED', 'claw_agentx' in sys.modules)\n"
    r = unix_run(out, modules={"prog": prog}, entry="import prog")
    assert r.returncode == 0, r.stdout + r.stderr
    said = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert said.pop("LOADED") == "False"
    assert len(said) == len(order)
    assert said["STOPPED"] == ("'[stopped] no final answer after 6 model requests (limits.max_iterations = 6); "
                               "the tool calls above were run.'")
    assert said["NO_FIT"] == "'the request does not fit the 8192-byte request buffer (limits.request_bytes)'"
    assert said["CUT"] == "\"c ...[cut at the model's max_tokens]\""


@pytest.mark.parametrize("user, prefix, texts, use", [
    ("claw_agent", "_T_", "claw_agentx", r"_say\(_T_(\w+)"),
    ("claw_tools", "_X_", "claw_toolx", r'_x\("text", _X_(\w+)')])
def test_each_index_table_and_its_texts_stay_in_step(tmp_path: Path, llm_server: LLMServer, user: str, prefix: str,
                                                     texts: str, use: str) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url))
    src = (out / "app" / f"{user}.py").read_text()
    index = {m[1]: int(m[2]) for m in re.finditer(rf"(?m)^{prefix}(\w+) = const\((\d+)\)", src)}
    order = re.findall(rf"(?m)^    .*,  # {prefix}(\w+)$", (out / "app" / f"{texts}.py").read_text())
    assert order and [n for n, _ in sorted(index.items(), key=lambda kv: kv[1])] == order
    assert sorted(index.values()) == list(range(len(order)))
    assert set(re.findall(use, src)) == set(order)  # every text is used, none is missing


def test_the_network_texts_have_one_list(tmp_path: Path, llm_server: LLMServer) -> None:
    """claw_neterr.TEXTS and the _E_* indexes of claw_http, its exchange (claw_httpx) and the
    adapters come from one list (templates/app/_net_texts.j2); every text is raised somewhere, and
    nothing else is."""
    out = build(tmp_path, make_spec(llm_server.base_url))
    order = re.findall(r"(?m)^    .*,  # _E_(\w+)$", (out / "app" / "claw_neterr.py").read_text())
    users = [(out / "app" / f"{m}.py").read_text() for m in ("claw_http", "claw_httpx", "claw_openai")]
    users.append((Path(__file__).resolve().parents[2] / "templates" / "app" / "claw_anthropic.py.j2").read_text())
    for src in users[:3]:
        index = {m[1]: int(m[2]) for m in re.finditer(r"(?m)^_E_(\w+) = const\((\d+)\)", src)}
        assert [n for n, _ in sorted(index.items(), key=lambda kv: kv[1])] == order
    raised = set()
    for src in users:
        raised |= set(re.findall(r"(?:_err\([^,]+|_bad\()\s*,?\s*_E_(\w+)", src))
    assert raised == set(order), set(order) ^ raised


def test_an_empty_answer_and_a_history_turn_dropped_to_fit(tmp_path: Path, llm_server: LLMServer, unix_run) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url, limits={"request_bytes": 3072}))
    llm_server.push(Reply.text(""), Reply.text("short one"), Reply.text("after the drop"))
    long_line = "word " * 300  # 1.5 KB: with the history of two turns it no longer fits 3 KB
    res = unix_run(out, stdin=["hello", "again " + long_line, "and " + long_line, "/quit"])
    assert res.returncode == 0, res.stderr
    assert "(the model returned an empty answer)" in res.stdout
    assert "short one" in res.stdout and "after the drop" in res.stdout
    assert "dropped the oldest history turn to fit the request buffer" in res.stderr, res.stderr
    assert "hello" not in str(llm_server.requests[2].messages)  # the oldest turn went
