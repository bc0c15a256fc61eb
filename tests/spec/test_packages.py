"""`packages:` (partial specs merged into the spec), `!include {file, vars}` and substitutions
across packages and includes (issue 12, item 5). The merge rule is the one docs/spec.md states:
``merge(merge(...merge(P1, P2)..., Pn), own)``; mappings merge key by key (later wins), lists are
extended (items with the same ``name`` merged, equal scalars kept once), anything else: later wins.

The invalid corpus (tests/spec/invalid/package_*, include_var_unresolved) holds the exact messages
of the refusals; these tests state the rules and check positions, merges and the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clawgen.build import BuildOptions, build_spec, load_and_plan
from clawgen.diagnostics import Diagnostic, DiagnosticError
from clawgen.loader import MAX_PACKAGES, Document, load_spec
from clawgen.publish import STAMP_FILE
from clawgen.schema import validate_schema
from tests.conftest import REPO

MODEL = "model:\n  base_url: https://api.openai.com/v1\n  model: gpt-4o-mini\n"
HANDLER = "def set_relay(on=True):\n    return {'on': on}\n"


def clawgen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawgen.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


def load_error(path: Path, **kw: object) -> Diagnostic:
    with pytest.raises(DiagnosticError) as e:
        load_spec(path, **kw)  # type: ignore[arg-type]
    assert len(e.value.diagnostics) == 1
    return e.value.diagnostics[0]


def where(doc: Document, *path: str | int, key: bool = False) -> tuple[str, int, int]:
    m = doc.mark(path, key=key)
    return Path(m.file).name, m.line, m.column


# -- the merge rule ---------------------------------------------------------------------------------

def test_mappings_merge_key_by_key_and_the_spec_wins(write_spec):
    spec = write_spec({
        "spec.yaml": "name: demo\npackages:\n  base: base.yaml\nmodel:\n  model: gpt-4o\n",
        "base.yaml": "name: from-package\n" + MODEL + "  max_tokens: 100\ndebug: true\n",
    })
    doc = load_spec(spec)
    assert doc.data == {"name": "demo", "model": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o",
                                                  "max_tokens": 100}, "debug": True}
    assert "packages" not in doc.data  # consumed by the loader
    # each value keeps the position of the file it comes from
    assert where(doc, "model", "model") == ("spec.yaml", 5, 10)
    assert where(doc, "model", "base_url") == ("base.yaml", 3, 13)
    assert where(doc, "model", "max_tokens") == ("base.yaml", 5, 15)
    assert where(doc, "debug") == ("base.yaml", 6, 8)
    assert where(doc, "name") == ("spec.yaml", 1, 7)
    assert where(doc, "model", "model", key=True) == ("spec.yaml", 5, 3)
    assert validate_schema(doc) == []


def test_later_packages_win_over_earlier_ones_list_and_mapping_forms(write_spec):
    files = {
        "a.yaml": "system_prompt: from a\ndebug: true\n",
        "b.yaml": "system_prompt: from b\n",
    }
    as_map = write_spec({"spec.yaml": "name: demo\n" + MODEL + "packages:\n  a: a.yaml\n  b: !include b.yaml\n",
                         **files})
    doc = load_spec(as_map)
    assert doc.data["system_prompt"] == "from b" and doc.data["debug"] is True
    as_list = write_spec({"list.yaml": "name: demo\n" + MODEL + "packages: [b.yaml, a.yaml]\n"})
    assert load_spec(as_list).data["system_prompt"] == "from a"


def test_lists_are_extended_named_items_merged_equal_scalars_kept_once(write_spec):
    spec = write_spec({
        "spec.yaml": "name: demo\npackages: [tools.yaml]\n" + MODEL
        + "  fallbacks:\n    - base_url: http://mine/v1\n      model: m\n"
        "capabilities: [system, hw_datasheet]\n"
        "tools:\n  - name: set_relay\n    confirm: true\n"
        "  - name: own_tool\n    description: Mine.\n    handler: tools/relay.py:set_relay\n",
        "tools.yaml": "model:\n  fallbacks:\n    - base_url: http://theirs/v1\n      model: m\n"
        "capabilities: [hw_register_control, system]\n"
        "tools:\n  - name: set_relay\n    description: Switch the relay.\n    handler: tools/relay.py:set_relay\n",
        "tools/relay.py": HANDLER,
    })
    doc = load_spec(spec)
    assert doc.data["capabilities"] == ["hw_register_control", "system", "hw_datasheet"]
    assert [f["base_url"] for f in doc.data["model"]["fallbacks"]] == ["http://theirs/v1", "http://mine/v1"]
    assert doc.data["tools"] == [
        {"name": "set_relay", "description": "Switch the relay.", "handler": "tools/relay.py:set_relay",
         "confirm": True},
        {"name": "own_tool", "description": "Mine.", "handler": "tools/relay.py:set_relay"}]
    # the merged tool: description from the package, confirm from the spec; the appended one: the spec
    assert where(doc, "tools", 0, "description") == ("tools.yaml", 8, 18)
    assert where(doc, "tools", 0, "confirm") == ("spec.yaml", 12, 14)
    assert where(doc, "tools", 1, "description") == ("spec.yaml", 14, 18)
    assert where(doc, "capabilities", 2) == ("spec.yaml", 9, 24)
    assert where(doc, "model", "fallbacks", 0, "base_url") == ("tools.yaml", 3, 17)
    assert where(doc, "model", "fallbacks", 1, "base_url") == ("spec.yaml", 7, 17)
    planned = load_and_plan(spec, BuildOptions())
    assert [t.name for t in planned.resolved.spec.tools] == ["set_relay", "own_tool"]
    assert planned.resolved.spec.tools[0].confirm is True


def test_a_duplicate_within_one_file_is_still_reported_where_it_is_written(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "packages: [caps.yaml]\ncapabilities: [system, system]\n",
                       "caps.yaml": "capabilities: [system]\n"})
    r = clawgen("validate", str(spec))
    assert r.returncode == 2
    assert f"{spec}:6:15: error: at capabilities: lists the same item twice" in r.stderr.splitlines(), r.stderr


def test_a_value_replaces_a_mapping_and_the_other_way_round(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "packages: [p.yaml]\ntransports:\n  uart: true\n",
                       "p.yaml": "transports:\n  uart:\n    enabled: false\ndebug:\n  trace: true\n"})
    doc = load_spec(spec)
    assert doc.data["transports"] == {"uart": True}
    assert doc.data["debug"] == {"trace": True}
    assert where(doc, "transports", "uart") == ("spec.yaml", 7, 9)
    assert ("transports", "uart", "enabled") not in doc.marks  # the replaced value's marks are gone
    assert where(doc, "debug", "trace") == ("p.yaml", 5, 10)


def test_packages_are_applied_in_order_a_replaced_mapping_does_not_come_back(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "packages: [p1.yaml, p2.yaml]\n"
                       "limits:\n  max_tool_calls: 2\n",
                       "p1.yaml": "limits:\n  max_iterations: 3\n", "p2.yaml": "limits: 5\n"})
    assert load_spec(spec).data["limits"] == {"max_tool_calls": 2}


def test_nested_packages_merge_depth_first(write_spec):
    # spec <- [outer <- [inner]]: inner < outer < spec
    spec = write_spec({
        "spec.yaml": "name: demo\npackages:\n  outer: common/outer.yaml\nsystem_prompt: spec\n",
        "common/outer.yaml": "packages:\n  inner: deeper/inner.yaml\ncapabilities: [system]\n"
        "limits:\n  max_iterations: 3\n",
        "common/deeper/inner.yaml": MODEL + "capabilities: [hw_datasheet]\nlimits:\n  max_iterations: 9\n"
        "  max_tool_calls: 2\nsystem_prompt: inner\n",
    })
    doc = load_spec(spec)
    assert doc.data["capabilities"] == ["hw_datasheet", "system"]
    assert doc.data["limits"] == {"max_iterations": 3, "max_tool_calls": 2}
    assert doc.data["system_prompt"] == "spec"
    assert where(doc, "model", "model") == ("inner.yaml", 3, 10)
    assert {p.name for p in doc.files} >= {"spec.yaml", "outer.yaml", "inner.yaml"}


def test_the_same_package_twice_by_two_routes_is_not_a_cycle(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\npackages: [a.yaml, b.yaml]\n",
                       "a.yaml": "packages: [common.yaml]\n",
                       "b.yaml": "packages: [common.yaml]\n",
                       "common.yaml": MODEL + "capabilities: [system]\n"})
    doc = load_spec(spec)
    assert doc.data["capabilities"] == ["system"]
    assert validate_schema(doc) == []


# -- refusals -----------------------------------------------------------------------------------------

def test_a_package_that_includes_itself_is_refused_at_its_entry(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\npackages:\n  loop: loop.yaml\n",
                       "loop.yaml": MODEL + "packages:\n  - other.yaml\n  - loop.yaml\n",
                       "other.yaml": "debug: true\n"})
    d = load_error(spec)
    assert (Path(d.file).name, d.line, d.column, d.path) == ("loop.yaml", 6, 5, "packages[1]")
    assert d.message == ("package cycle: loop.yaml includes itself (spec.yaml -> loop.yaml -> loop.yaml); "
                         "remove this entry")


def test_mutual_includes_and_the_spec_itself_are_cycles(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\npackages: [a.yaml]\n",
                       "a.yaml": "packages: {b: !include {file: b.yaml}}\n",
                       "b.yaml": "packages: {back: spec.yaml}\n"})
    d = load_error(spec)
    assert (Path(d.file).name, d.line, d.column, d.path) == ("b.yaml", 1, 18, "packages.back")
    assert "package cycle: b.yaml includes spec.yaml, which includes it (spec.yaml -> a.yaml -> b.yaml -> " \
           "spec.yaml)" in d.message
    self_named = write_spec({"self.yaml": "name: demo\npackages: [self.yaml]\n"})
    assert "the spec names itself as a package" in load_error(self_named).message


def test_an_include_inside_a_package_cannot_come_back_to_the_package(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\npackages: [p.yaml]\n",
                       "p.yaml": MODEL + "tools: !include p.yaml\n"})
    d = load_error(spec)
    assert (Path(d.file).name, d.line, d.path) == ("p.yaml", 4, "tools")
    assert d.message.startswith("include cycle: p.yaml includes itself")


@pytest.mark.parametrize(("text", "message"), [
    ("packages: common.yaml\n", "packages must be a mapping of NAME: FILE"),
    ("packages:\n  inline:\n    debug: true\n", "a package is a file: write NAME: FILE"),
    ("packages: [5]\n", "a package is a file"),
    ("substitutions: {D: common}\npackages: ['${D}/x.yaml']\n", "a package file name cannot use ${...}"),
    ("packages: {a: x.yaml, a: y.yaml}\n", "duplicate key 'a'"),
    ("packages: [!include {file: x.yaml, vras: {a: 1}}]\n", "unknown key 'vras' (did you mean \"vars\"?)"),
    ("packages: [!include {vars: {a: 1}}]\n", "missing 'file'"),
    ("packages: [!include {file: x.yaml, vars: {a: !secret s}}]\n", "a var value must be a plain scalar"),
])
def test_malformed_packages_entries(write_spec, text: str, message: str):
    spec = write_spec({"spec.yaml": "name: demo\n" + text, "x.yaml": "debug: true\n"})
    d = load_error(spec)
    assert Path(d.file).name == "spec.yaml" and d.line >= 2
    assert message in d.message


def test_missing_and_non_mapping_packages(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\npackages:\n  base: common/bsae.yaml\n",
                       "common/base.yaml": MODEL})
    d = load_error(spec)
    assert (d.line, d.column, d.path) == (3, 9, "packages.base")
    assert d.message.endswith('file not found: ' + str(spec.parent / "common/bsae.yaml") + ' (did you mean "base.yaml"?)')
    scalar = write_spec({"s.yaml": "name: demo\npackages: [text.yaml]\n", "text.yaml": "'just a string'\n"})
    assert "holds a single value; a package is a mapping" in load_error(scalar).message
    empty = write_spec({"e.yaml": "name: demo\n" + MODEL + "packages: [empty.yaml]\n", "empty.yaml": "# nothing\n"})
    assert load_spec(empty).data["name"] == "demo"  # an empty package adds nothing


def test_too_many_package_files_are_refused(write_spec):
    entries = "".join("  - p.yaml\n" for _ in range(MAX_PACKAGES + 1))
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "packages:\n" + entries, "p.yaml": "debug: true\n"})
    d = load_error(spec)
    assert d.path == f"packages[{MAX_PACKAGES}]" and f"more than {MAX_PACKAGES} package files" in d.message


def test_packages_in_a_file_read_with_include_at_the_top_is_refused(write_spec):
    spec = write_spec({"spec.yaml": "!include real.yaml\n",
                       "real.yaml": "name: demo\n" + MODEL + "packages: [p.yaml]\n", "p.yaml": "debug: true\n"})
    d = load_error(spec)
    assert (Path(d.file).name, d.line) == ("real.yaml", 5)
    assert "packages: belongs in the spec file itself or in a package" in d.message


def test_a_schema_error_in_a_package_names_the_package_file(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\npackages: [common/base.yaml]\n",
                       "common/base.yaml": MODEL + "transports:\n  telnet:\n    port: 99999\n"})
    diags = validate_schema(load_spec(spec))
    assert [(Path(d.file).name, d.line, d.column, d.path) for d in diags] == [
        ("base.yaml", 6, 11, "transports.telnet.port")]
    assert "is too large" in diags[0].message


# -- substitutions across packages and includes ---------------------------------------------------------

def test_substitutions_are_global_the_spec_wins_and_s_wins_over_all(write_spec):
    spec = write_spec({
        "spec.yaml": "name: demo\nsubstitutions:\n  HOST: 10.0.0.7\npackages: [base.yaml]\n",
        "base.yaml": "substitutions:\n  HOST: 192.168.1.20\n  PORT: '11434'\n  URL: http://${HOST}:${PORT}/v1\n"
        "model:\n  base_url: ${URL}\n  model: ${MODEL_NAME}\n",
    })
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    [d] = e.value.diagnostics
    assert (Path(d.file).name, d.line, d.column) == ("base.yaml", 7, 10)  # in the package, where it is used
    assert "undefined substitution ${MODEL_NAME}" in d.message
    doc = load_spec(spec, {"MODEL_NAME": "llama3"})
    assert doc.data["model"] == {"base_url": "http://10.0.0.7:11434/v1", "model": "llama3"}
    doc = load_spec(spec, {"MODEL_NAME": "llama3", "PORT": "8080"})
    assert doc.data["model"]["base_url"] == "http://10.0.0.7:8080/v1"
    assert doc.substitutions["URL"] == "http://10.0.0.7:8080/v1"


def test_a_package_uses_a_substitution_only_the_spec_defines(write_spec):
    # the package as a template: the spec gives the values it leaves open
    spec = write_spec({"spec.yaml": "name: demo\nsubstitutions:\n  TELNET_PORT: '2424'\n" + MODEL
                       + "network:\n  ssid: lab\npackages: [telnet.yaml]\n",
                       "telnet.yaml": "transports:\n  telnet:\n    port: ${TELNET_PORT}\n"})
    planned = load_and_plan(spec, BuildOptions())
    assert planned.resolved.spec.transports.telnet.port == 2424  # a plain value is typed after substitution


def test_a_substitution_cycle_through_a_package_is_reported_at_its_value(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\nsubstitutions:\n  A: x${B}\npackages: [p.yaml]\n",
                       "p.yaml": "substitutions:\n  B: y${A}\n"})
    d = load_error(spec)
    assert "substitution cycle" in d.message
    assert (Path(d.file).name, d.path) in {("spec.yaml", "substitutions.A"), ("p.yaml", "substitutions.B")}
    assert (d.line, d.column) == ((3, 6) if Path(d.file).name == "spec.yaml" else (2, 6))


def test_nested_substitutions_in_an_included_file(write_spec):
    """A substitution that uses others (and a -s) resolves the same inside an included file."""
    spec = write_spec({"spec.yaml": "name: demo\nsubstitutions:\n  HOST: h\n  URL: http://${HOST}:${PORT}/v1\n"
                       "model: !include m.yaml\n",
                       "m.yaml": "base_url: ${URL}\nmodel: m-${HOST}\n"})
    doc = load_spec(spec, {"PORT": "81"})
    assert doc.data["model"] == {"base_url": "http://h:81/v1", "model": "m-h"}
    d = load_error(spec)  # PORT undefined: reported at URL's value, in the spec
    assert (Path(d.file).name, d.line, d.column, d.path) == ("spec.yaml", 4, 8, "substitutions.URL")
    assert "undefined substitution ${PORT} in the value of substitution URL" in d.message


def test_include_vars_apply_inside_the_included_file_only(write_spec):
    spec = write_spec({
        "spec.yaml": "name: demo\nsubstitutions:\n  relay: global\n  PIN_BASE: '4'\n" + MODEL
        + "system_prompt: The ${relay} agent.\n"
        "tools:\n  - !include {file: common/relay.yaml, vars: {relay: fan, pin: '${PIN_BASE}'}}\n"
        "  - !include {file: common/relay.yaml, vars: {relay: pump, pin: 6}}\n",
        "common/relay.yaml": "name: set_${relay}\ndescription: Switch the ${relay} relay on GPIO ${pin}.\n"
        "handler: tools/relay.py:set_relay\nparameters: !include params.yaml\n",
        "common/params.yaml": "type: object\nproperties:\n  \"on\": {type: boolean, description: '${relay}'}\n",
        "tools/relay.py": HANDLER,
    })
    doc = load_spec(spec)
    assert doc.data["system_prompt"] == "The global agent."  # outside the include the var does not exist
    t0, t1 = doc.data["tools"]
    assert (t0["name"], t0["description"]) == ("set_fan", "Switch the fan relay on GPIO 4.")
    assert (t1["name"], t1["description"]) == ("set_pump", "Switch the pump relay on GPIO 6.")
    # a file the included file includes sees the vars too
    assert t0["parameters"]["properties"]["on"]["description"] == "fan"
    assert t1["parameters"]["properties"]["on"]["description"] == "pump"
    assert where(doc, "tools", 1, "description") == ("relay.yaml", 2, 14)
    assert load_and_plan(spec, BuildOptions()).warnings == []


def test_a_var_is_typed_like_a_substitution_and_wins_over_s(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "network:\n  ssid: lab\n"
                       "transports: !include {file: t.yaml, vars: {port: 2500}}\n",
                       "t.yaml": "telnet:\n  port: ${port}\n"})
    doc = load_spec(spec, {"port": "9"})
    assert doc.data["transports"] == {"telnet": {"port": 2500}}


def test_package_vars_reach_the_package_and_its_includes(write_spec):
    spec = write_spec({
        "spec.yaml": "name: demo\n" + MODEL + "packages:\n"
        "  fan: !include {file: relay.yaml, vars: {relay: fan}}\n"
        "  pump: !include {file: relay.yaml, vars: {relay: pump}}\n",
        "relay.yaml": "substitutions:\n  LABEL: relay-${relay}\ntools:\n  - !include tool.yaml\n",
        "tool.yaml": "name: set_${relay}\ndescription: ${LABEL} ${relay}\nhandler: tools/relay.py:set_relay\n",
        "tools/relay.py": HANDLER,
    })
    doc = load_spec(spec)
    # a package's substitution is global (the later package's LABEL wins); the vars stay per package
    assert [(t["name"], t["description"]) for t in doc.data["tools"]] == [
        ("set_fan", "relay-pump fan"), ("set_pump", "relay-pump pump")]


def test_an_unresolved_name_in_an_included_file_is_reported_there(write_spec):
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "tools:\n"
                       "  - !include {file: common/t.yaml, vars: {relay: fan}}\n",
                       "common/t.yaml": "name: set_${relay}\ndescription: GPIO ${pni}\nhandler: x.py:f\n"})
    d = load_error(spec)
    assert (d.file, d.line, d.column, d.path) == (str(spec.parent / "common/t.yaml"), 2, 14, "tools[0].description")
    assert d.message.startswith("undefined substitution ${pni}: define it under 'substitutions:', in the vars "
                                "of the !include of")


# -- CLI: validate, config, build -------------------------------------------------------------------------

def _project(write_spec) -> Path:  # type: ignore[no-untyped-def]
    return write_spec({
        "greenhouse.yaml": "name: greenhouse\nsubstitutions:\n  LLM_HOST: 10.0.0.7\npackages:\n"
        "  base: common/base.yaml\n  fan: !include {file: common/relay.yaml, vars: {relay: fan}}\n"
        "tools:\n  - name: set_fan\n    confirm: true\n",
        "common/base.yaml": "substitutions:\n  LLM_HOST: 192.168.1.20\nmodel:\n"
        "  base_url: http://${LLM_HOST}:11434/v1\n  model: llama3.2\n  api_key: !secret llm_key\n"
        "capabilities: [system]\n",
        "common/relay.yaml": "tools:\n  - name: set_${relay}\n    description: Switch the ${relay} relay.\n"
        "    handler: tools/relay.py:set_relay\n",
        "tools/relay.py": HANDLER,
        "secrets.yaml": "llm_key: sk-test-packages-0123456789\n",
    })


def test_validate_config_and_build_a_spec_with_packages(write_spec, tmp_path: Path):
    spec = _project(write_spec)
    r = clawgen("validate", str(spec))
    assert r.returncode == 0, r.stderr
    r = clawgen("config", str(spec))
    assert r.returncode == 0, r.stderr
    assert "base_url: http://10.0.0.7:11434/v1" in r.stdout and "api_key: !secret llm_key" in r.stdout
    assert "packages" not in r.stdout and "sk-test" not in r.stdout
    assert "- name: set_fan\n  description: Switch the fan relay.\n" in r.stdout and "confirm: true" in r.stdout
    # the printed spec is itself a valid spec (no packages left to resolve)
    (spec.parent / "merged.yaml").write_text(r.stdout.split("\n", 1)[1], encoding="utf-8")
    assert clawgen("validate", str(spec.parent / "merged.yaml")).returncode == 0

    out = tmp_path / "out"
    result = build_spec(spec, BuildOptions(out_dir=out, images=False))
    info = json.loads((out / "build.json").read_text())
    assert result.info["name"] == info["name"] == "greenhouse"
    assert "sk-test" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()
                                    and p.suffix in (".py", ".json", ".txt", ".md"))
    # the package files are inputs of the build (a change to one makes the output stale)
    inputs = json.loads((out / STAMP_FILE).read_text())["inputs"]
    for name in ("greenhouse.yaml", "common/base.yaml", "common/relay.yaml"):
        assert str((spec.parent / name).resolve()) in inputs


def test_validate_a_directory_does_not_take_package_files_for_specs(write_spec):
    spec = write_spec({"agents/spec.yaml": "name: demo\npackages: [base.yaml, !include {file: tools.yaml}]\n",
                       "agents/base.yaml": MODEL, "agents/tools.yaml": "capabilities: [system]\n"})
    r = clawgen("validate", str(spec.parent))
    assert r.returncode == 0, r.stderr
    assert "1 spec(s) valid" in r.stderr


@pytest.mark.parametrize("command", ["validate", "config", "build"])
def test_a_cycle_exits_2_with_one_line_and_writes_nothing(write_spec, tmp_path: Path, command: str):
    spec = write_spec({"spec.yaml": "name: demo\n" + MODEL + "packages: [a.yaml]\n",
                       "a.yaml": "packages: [b.yaml]\n", "b.yaml": "packages: [a.yaml]\n"})
    out = tmp_path / "out"
    args = (command, str(spec), *(("--out", str(out)) if command == "build" else ()))
    r = clawgen(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    line = f"{spec.parent / 'b.yaml'}:1:12: error: at packages[0]: package cycle: b.yaml includes a.yaml, " \
           "which includes it (spec.yaml -> a.yaml -> b.yaml -> a.yaml); remove this entry"
    assert line in r.stderr.splitlines(), r.stderr
    assert not out.exists()


def test_the_packages_example_in_the_docs_validates_and_merges(tmp_path: Path):
    """docs/spec.md's example files (blocks that start with '# FILE.yaml') make a valid spec."""
    import re

    md = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    blocks = {m.group(1): m.group(0) for m in re.finditer(r"^# ([\w/.-]+\.yaml)\n.*?(?=^```)", md, re.M | re.S)}
    assert {"greenhouse.yaml", "common/base.yaml", "common/relay.yaml", "common/relay-tool.yaml"} <= set(blocks)
    for name, text in blocks.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "relay.py").write_text(HANDLER, encoding="utf-8")
    (tmp_path / "secrets.yaml").write_text("wifi_ssid: lab\nwifi_password: correct horse\n", encoding="utf-8")
    r = clawgen("config", str(tmp_path / "greenhouse.yaml"))
    assert r.returncode == 0, r.stderr
    assert "base_url: http://10.0.0.7:11434/v1" in r.stdout and "ssid: !secret wifi_ssid" in r.stdout
    assert ("- name: set_fan\n  description: Switch the fan relay (GPIO 5) on or off.\n" in r.stdout
            and "confirm: true" in r.stdout)
