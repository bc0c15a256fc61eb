"""The prompt file (/claw_prompt.json: the system message and the tools arrays) carries its own
index, read by claw_config at boot (clawgen/appmodules.py PromptFile): an edit of a tool description
or of the system prompt changes that file only, and the device sends the new text. A damaged index
is a clear turn error, and the console keeps serving. On the MicroPython unix-port VM."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.llm_server import Reply
from tests.runtime.agent_builds import CUSTOM_TOOLS, build, make_spec


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for sub in ("app", "mpy") for p in sorted((out / sub).rglob("*"))
            if p.is_file()}


def _with_description(text: str) -> list[dict]:
    tools = copy.deepcopy(CUSTOM_TOOLS)
    next(t for t in tools if t["name"] == "add")["description"] = text
    return tools


def test_a_description_edit_changes_the_prompt_file_only_and_reaches_the_model(tmp_path: Path, llm_server,
                                                                              unix_run) -> None:
    a = build(tmp_path / "a", make_spec(llm_server.base_url))
    edited = "Add two numbers and say the sum, the \u00fcber-short way."
    b = build(tmp_path / "b", make_spec(llm_server.base_url, tools=_with_description(edited),
                                        system_prompt="You are a test agent, edited."))
    before, after = _tree(a), _tree(b)
    assert before.keys() == after.keys()
    assert [k for k in before if before[k] != after[k]] == ["app/claw_prompt.json"]

    llm_server.push(Reply.text("Hello."))
    res = unix_run(b, stdin=["hi", "/quit"])
    assert res.returncode == 0, res.stderr
    assert "Hello." in res.stdout
    req = llm_server.requests[0]
    assert req.messages[0]["role"] == "system"
    assert req.messages[0]["content"].startswith("You are a test agent, edited.\n")
    assert next(t for t in req.json["tools"] if t["function"]["name"] == "add")["function"]["description"] == edited


def test_a_damaged_index_is_a_turn_error_and_the_console_keeps_serving(tmp_path: Path, llm_server,
                                                                      unix_device) -> None:
    out = build(tmp_path, make_spec(llm_server.base_url))
    dev = unix_device(out)
    text = (dev.root / "claw_prompt.json").read_bytes()
    (dev.root / "claw_prompt.json").write_bytes(b"000x256" + text[7:])
    res = dev.run(stdin=["hi", "/status", "/quit"], timeout=30)
    assert res.returncode == 0, res.stderr
    assert "cannot read /claw_prompt.json: deploy the whole app bundle again" in res.stdout
    assert "agent rt-agent on esp32s3" in res.stdout  # /status after the failed turn
    assert llm_server.requests == []  # nothing half-built was sent
