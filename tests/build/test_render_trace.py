"""Render traces (clawgen/rendertrace.py): a rebuild reuses a template's earlier output only when
every value of the plan it read is the same. Checked against plain renders: for every example, and
for edits of many kinds, the output with reuse is exactly what a render from scratch gives."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from clawgen import render, rendertrace
from clawgen.build import BuildOptions, load_and_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml") if p.stem != "secrets")

# (example, what is edited, regex, replacement): each changes the plan in a different place.
EDITS = [
    ("sensor-agent", "a tool description", r"(description: Switch the greenhouse fan relay)", r"\1 now"),
    ("sensor-agent", "the system prompt", r"(You monitor a greenhouse\.)", r"\1 Be brief."),
    ("sensor-agent", "an enum of a tool parameter", r"\[temperature, humidity, both\]", "[temperature, both]"),
    ("sensor-agent", "a confirm flag", r"\n    confirm: true", "\n    confirm: false"),
    ("sensor-agent", "the persistence budget", r"max_bytes: 16384", "max_bytes: 8192"),
    ("sensor-agent", "the model's max_tokens", r"max_tokens: 384", "max_tokens: 385"),
    ("sensor-agent", "the transports", r"uart: true", "uart: true\n  telnet: {port: 2323}"),
    ("sensor-agent", "a capability", r"capabilities: \[system\]", "capabilities: [system, memory]"),
    ("sensor-agent", "a substitution", r'RELAY_PIN: "5"', 'RELAY_PIN: "6"'),
    ("local-chat", "the system prompt", r"(\nsystem_prompt: )", r"\1Hi. "),
    ("telegram-watchdog", "the allowed chats", r"allow_chats: \[123456789\]", "allow_chats: [123456789, 42]"),
    ("telegram-watchdog", "a trigger's time", r'at: "08:00"', 'at: "08:30"'),
    ("telegram-watchdog", "a register rule", r'\{match: "GPIO.STRAP", access: write\}',
     '{match: "GPIO.STRAP", access: write}\n    - {match: "LEDC.*", access: write}'),
    ("telegram-watchdog", "the memory budget", r"prompt_bytes: 1024", "prompt_bytes: 512"),
    ("register-assistant", "a register deny rule", r'(\n    - \{match: "GPIO.STRAP", access: write\})',
     r'\1\n    - {match: "GPIO.ENABLE*", access: write}'),
    ("register-assistant", "a fallback endpoint", r"model: openai/gpt-4o-mini", "model: openai/gpt-4o"),
    ("mcp-bench", "the system prompt", r"(system_prompt: [>|]-?\n  )", r"\1Hi. "),
]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLAWGEN_CHECK_RENDER_TRACES", raising=False)  # these tests count the renders


def _copy_examples(tmp_path: Path) -> Path:
    dst = tmp_path / "agents"
    shutil.copytree(EXAMPLES, dst)
    return dst


def _plan(spec: Path):  # type: ignore[no-untyped-def]
    return load_and_plan(spec, BuildOptions()).plan


class _Counting:
    """Counts the templates really rendered (render_template calls)."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        self.names: list[str] = []
        real = render.render_template

        def counted(name: str, plan, *a, **k):  # type: ignore[no-untyped-def]
            self.names.append(name)
            return real(name, plan, *a, **k)

        monkeypatch.setattr(render, "render_template", counted)


@pytest.mark.parametrize("name", NAMES)
def test_traced_render_is_the_plain_render_and_is_reused_whole(name: str, tmp_path: Path, monkeypatch) -> None:
    plan = _plan(_copy_examples(tmp_path) / f"{name}.yaml")
    _, plain = render.render_app(plan)
    _, traced = render.render_app(plan, reuse=True)
    assert traced == plain
    counting = _Counting(monkeypatch)
    _, again = render.render_app(plan, reuse=True)
    assert again == plain
    assert counting.names == []  # every unit came from its trace


@pytest.mark.parametrize(("name", "what", "pattern", "repl"), EDITS, ids=[f"{e[0]}: {e[1]}" for e in EDITS])
def test_after_an_edit_the_reused_output_is_what_a_fresh_render_gives(name: str, what: str, pattern: str, repl: str,
                                                                      tmp_path: Path, monkeypatch) -> None:
    spec = _copy_examples(tmp_path) / f"{name}.yaml"
    _, before = render.render_app(_plan(spec), reuse=True)  # the traces of the build before the edit
    text = spec.read_text()
    edited, n = re.subn(pattern, repl, text, count=1)
    assert n == 1, f"{name}: the edit of {what} found nothing to change"
    spec.write_text(edited)
    plan = _plan(spec)
    counting = _Counting(monkeypatch)
    _, reused = render.render_app(plan, reuse=True)
    rerendered = list(counting.names)
    _, fresh = render.render_app(plan)
    assert reused == fresh
    assert fresh != before, f"the edit of {what} changed no file"  # (an edit that does nothing tests nothing)
    assert len(rerendered) < len(fresh) - 1, f"the edit of {what} rendered every file again"


def test_a_description_edit_renders_no_template(tmp_path: Path, monkeypatch) -> None:
    spec = _copy_examples(tmp_path) / "sensor-agent.yaml"
    render.render_app(_plan(spec), reuse=True)
    spec.write_text(spec.read_text().replace("Switch the greenhouse fan relay", "Switch the fan relay"))
    counting = _Counting(monkeypatch)
    render.render_app(_plan(spec), reuse=True)
    assert counting.names == []  # the prompt file is plan data, made without a template


def test_the_view_records_what_a_template_reads_and_checks_it_again() -> None:
    from clawgen.records import record

    @record
    class Inner:
        name: str
        tags: dict

    @record
    class Root:
        items: list
        flags: set
        inner: Inner

    root = Root([Inner("a", {"k": 1}), Inner("b", {})], {"x", "y"}, Inner("c", {"q": [1, 2]}))
    rec = rendertrace.Recorder()
    view = rec.view(root, ())
    assert [i.name for i in view.items] == ["a", "b"]  # iteration: the length and each name
    assert "x" in view.flags  # a set is read whole
    assert view.inner.tags.get("q")[1] == 2 and view.inner.tags.get("nope") is None
    with pytest.raises(AttributeError):
        _ = view.inner.missing  # a missing attribute is a read too
    assert str(view.items[0].tags) == "{'k': 1}"  # printed: the whole value
    trace = rec.trace()
    assert trace is not None
    paths = [p for p, _fp in trace]
    assert (("a", "items"), ("len",)) in paths and (("a", "inner"), ("a", "missing")) in paths
    assert rendertrace.still_valid(root, trace)
    # The same values in new objects: still valid. A change to any value read: not.
    same = Root([Inner("a", {"k": 1}), Inner("b", {"z": 0})], {"y", "x"}, Inner("c", {"q": [1, 2], "r": 3}))
    assert rendertrace.still_valid(same, trace)  # items[1].tags and inner.tags["r"] were never read
    for changed in (Root([Inner("a", {"k": 1})], {"x", "y"}, Inner("c", {"q": [1, 2]})),
                    Root([Inner("a", {"k": 2}), Inner("b", {})], {"x", "y"}, Inner("c", {"q": [1, 2]})),
                    Root([Inner("a", {"k": 1}), Inner("B", {})], {"x", "y"}, Inner("c", {"q": [1, 2]})),
                    Root([Inner("a", {"k": 1}), Inner("b", {})], {"x"}, Inner("c", {"q": [1, 2]})),
                    Root([Inner("a", {"k": 1}), Inner("b", {})], {"x", "y"}, Inner("c", {"q": [1, 3]})),
                    Root([Inner("a", {"k": 1}), Inner("b", {})], {"x", "y"}, Inner("c", {"nope": 1}))):
        assert not rendertrace.still_valid(changed, trace), changed


def test_a_value_without_a_stable_fingerprint_is_never_reused() -> None:
    rec = rendertrace.Recorder()
    view = rec.view({"f": lambda: 1, "cycle": []}, ())
    _ = view["cycle"]
    _ = view["f"]
    assert rec.trace() is None  # a function has no pickle: the unit renders every time
    cyc: list = []
    cyc.append(cyc)
    assert rendertrace.fingerprint(cyc) is None


def test_set_fingerprints_do_not_depend_on_the_hash_seed() -> None:
    import subprocess
    import sys

    code = "from clawgen.rendertrace import fingerprint; print(fingerprint({'alpha', 'beta', 'gamma', 'delta'}).hex())"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1


def test_the_self_check_catches_a_reused_output_that_is_wrong(tmp_path: Path, monkeypatch) -> None:
    """$CLAWGEN_CHECK_RENDER_TRACES (set for the whole suite) compares each reused output with a plain
    render: a stored trace whose text is not what the template makes is caught, not shipped."""
    from clawgen import diskcache

    plan = _plan(_copy_examples(tmp_path) / "sensor-agent.yaml")
    render.render_app(plan, reuse=True)
    key = render.TraceStore(plan).key
    units = diskcache.get(render.TRACE_KIND, key)
    trace, text = units["app/claw_main.py.j2"]
    units["app/claw_main.py.j2"] = (trace, text + "# not what the template renders\n")
    diskcache.put(render.TRACE_KIND, key, units)
    _, wrong = render.render_app(plan, reuse=True)
    assert wrong["claw_main"].endswith("# not what the template renders\n")  # unchecked: the trace is trusted
    monkeypatch.setenv("CLAWGEN_CHECK_RENDER_TRACES", "1")
    with pytest.raises(AssertionError, match=r"reused render of app/claw_main\.py\.j2 differs"):
        render.render_app(plan, reuse=True)
