"""Build-time side of hooks:, memory: and audit: (issue 10 items 7-8, issue 11 item 1): what each
plans and ships, the hook signature checks, and the warnings. The bad-input corpus cases are
tests/spec/invalid/hooks_* and memory_*; the device side is tests/runtime/test_*_unix.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawgen.appmodules import app_modules
from clawgen.build import BuildOptions, load_and_plan
from clawgen.diagnostics import DiagnosticError
from tests.build.helpers import SPEC, project

HOOKS = """\
def ok(channel, text, iteration):
    pass


def anything(**kwargs):
    pass


def defaults(channel, tool, args, result, extra=1):
    pass


def approve(channel, tool, args):
    return None


def blink(n):
    return n
"""

TOOL = """\
tools:
  - name: blink
    description: Blink.
    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}
    handler: tools/hooks.py:blink
"""


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


def _plan(tmp_path: Path, extra: str, files: dict[str, str] | None = None):
    spec = project(tmp_path / "proj", spec=SPEC + extra, files=files or {})
    return load_and_plan(spec, BuildOptions(out_dir=tmp_path / "out", images=False))


def _shipped(planned) -> set[str]:
    return {m.name for m in app_modules(planned.plan)}


def test_nothing_of_it_ships_when_unused(tmp_path: Path) -> None:
    planned = _plan(tmp_path, "")
    assert planned.plan.hooks == () and planned.plan.memory is None and planned.plan.audit is None
    assert not _shipped(planned) & {"claw_hooks", "claw_memory", "claw_audit"}


def test_audit_ships_with_tools_unless_turned_off(tmp_path: Path) -> None:
    on = _plan(tmp_path / "a", "capabilities: [system]\n")
    assert on.plan.audit is not None and on.plan.audit.entries == 64 and on.plan.audit.entry_bytes == 256
    assert "claw_audit" in _shipped(on)
    off = _plan(tmp_path / "b", "capabilities: [system]\naudit: false\n")
    assert off.plan.audit is None and "claw_audit" not in _shipped(off)


def test_memory_capability_plans_its_tools_and_limits(tmp_path: Path) -> None:
    planned = _plan(tmp_path, "capabilities: [memory]\nmemory: {max_bytes: 4096, prompt_bytes: 300}\n")
    m = planned.plan.memory
    assert m is not None and (m.max_bytes, m.note_bytes, m.prompt_bytes) == (4096, 512, 300)
    assert [t.name for t in planned.plan.tools] == ["memory_save", "memory_search", "memory_delete"]
    assert "claw_memory" in _shipped(planned)
    assert "memory_save" in planned.plan.system_prompt


def test_memory_block_without_the_capability_warns(tmp_path: Path) -> None:
    planned = _plan(tmp_path, "memory: {max_bytes: 4096}\n")
    assert planned.plan.memory is None
    assert [w.message for w in planned.warnings if w.path == "memory"] == [
        "memory: has no effect without the memory capability; add memory to capabilities"]


def test_hooks_share_the_module_of_a_tool_in_the_same_file(tmp_path: Path) -> None:
    planned = _plan(tmp_path, TOOL + "hooks:\n  before_llm: tools/hooks.py:ok\n  after_tool: tools/hooks.py:defaults\n"
                    "  after_llm: tools/hooks.py:anything\n  approve_tool: tools/hooks.py:approve\n  limit_ms: 75\n",
                    {"tools/hooks.py": HOOKS})
    plan = planned.plan
    assert [(h.point, h.module, h.function) for h in plan.hooks] == [
        ("before_llm", "tool_hooks", "ok"), ("after_llm", "tool_hooks", "anything"),
        ("after_tool", "tool_hooks", "defaults"), ("approve_tool", "tool_hooks", "approve")]
    assert plan.hook_limit_ms == 75
    assert [cm.module for cm in plan.custom_modules] == ["tool_hooks"]
    assert "claw_hooks" in _shipped(planned)


@pytest.mark.parametrize(("signature", "message"), [
    ("def approve(channel, tool, args, /):", "'channel', 'tool', 'args' positional-only"),
    ("def approve(channel, tool):", "takes no parameter 'args'"),
    ("def approve(channel, tool, args, *, why):", "'why' is not an argument of approve_tool hooks"),
])
def test_a_hook_that_cannot_be_called_is_refused(tmp_path: Path, signature: str, message: str) -> None:
    with pytest.raises(DiagnosticError) as err:
        _plan(tmp_path, "hooks:\n  approve_tool: tools/h.py:approve\n",
              {"tools/h.py": f"{signature}\n    return None\n"})
    texts = [d.text() for d in err.value.diagnostics]
    assert len(texts) == 1 and message in texts[0] and ":1:" in texts[0] and "tools/h.py" in texts[0]
