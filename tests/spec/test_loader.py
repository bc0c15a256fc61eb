"""The load stage: positions, !secret, !include, substitutions, and hostile YAML."""

from __future__ import annotations

import pytest

from clawgen.diagnostics import DiagnosticError
from clawgen.loader import MAX_DEPTH, MAX_NODES, Secret, load_spec


def only_error(exc: pytest.ExceptionInfo[DiagnosticError]) -> str:
    assert len(exc.value.diagnostics) == 1
    return exc.value.diagnostics[0].text()


def test_marks_for_every_node(write_spec):
    spec = write_spec({"spec.yaml": "name: a\nmodel:\n  base_url: http://x/v1\n  fallbacks:\n    - model: m\n"})
    doc = load_spec(spec)
    assert doc.data["model"]["fallbacks"][0]["model"] == "m"
    m = doc.mark(("model", "fallbacks", 0, "model"))
    assert (m.line, m.column) == (5, 14)
    k = doc.mark(("model", "base_url"), key=True)
    assert (k.line, k.column) == (3, 3)


def test_secret_resolved_and_masked(write_spec):
    spec = write_spec({"spec.yaml": "name: a\nkey: !secret api\n", "secrets.yaml": "api: sk-12345\n"})
    doc = load_spec(spec)
    s = doc.data["key"]
    assert isinstance(s, Secret) and s.value == "sk-12345"
    assert "sk-12345" not in repr(doc.data) and "sk-12345" not in str(s)
    assert doc.secrets[("key",)] is s


def test_missing_secrets_file_names_both(write_spec):
    spec = write_spec({"spec.yaml": "name: a\nkey: !secret api\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    text = only_error(e)
    assert text.startswith(f"{spec}:2:6: error: at key: !secret api: ")
    assert f"{spec.parent / 'secrets.yaml'} does not exist" in text
    assert "with a line 'api: VALUE'" in text


def test_missing_secret_key_suggests(write_spec):
    spec = write_spec({"spec.yaml": "name: a\nkey: !secret openai_key\n", "secrets.yaml": "openai_kei: x\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    text = only_error(e)
    assert "secret 'openai_key' is not defined in" in text and 'did you mean "openai_kei"?' in text
    assert text.startswith(f"{spec}:2:6:")


def test_include_relative_and_marks_point_into_included_file(write_spec, tmp_path):
    write_spec({"spec.yaml": "name: a\ntools: !include parts/tools.yaml\n",
                "parts/tools.yaml": "- name: t\n  handler: x.py:f\n"})
    doc = load_spec(tmp_path / "spec.yaml")
    assert doc.data["tools"][0]["handler"] == "x.py:f"
    m = doc.mark(("tools", 0, "handler"))
    assert m.file.endswith("parts/tools.yaml") and (m.line, m.column) == (2, 12)
    assert (tmp_path / "parts/tools.yaml").resolve() in doc.files


def test_include_missing_and_cycle(write_spec, tmp_path):
    spec = write_spec({"spec.yaml": "name: a\nx: !include nope.yaml\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    assert only_error(e) == f"{spec}:2:4: error: at x: file not found: {spec.parent / 'nope.yaml'}"
    write_spec({"c.yaml": "x: !include d.yaml\n", "d.yaml": "y: !include c.yaml\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(tmp_path / "c.yaml")
    assert only_error(e) == f"{tmp_path / 'd.yaml'}:1:4: error: at x.y: include cycle: d.yaml includes c.yaml again (c.yaml -> d.yaml -> c.yaml)"


def test_substitutions_typed_and_overridable(write_spec):
    spec = write_spec({"spec.yaml": "substitutions:\n  PORT: 2323\n  HOST: h\n"
                       "url: http://${HOST}:${PORT}/v1\nport: ${PORT}\nlit: $${HOST}\n"})
    doc = load_spec(spec)
    assert doc.data["url"] == "http://h:2323/v1"
    assert doc.data["port"] == 2323
    assert doc.data["lit"] == "${HOST}"
    doc = load_spec(spec, {"HOST": "other"})
    assert doc.data["url"] == "http://other:2323/v1"


def test_undefined_substitution(write_spec):
    spec = write_spec({"spec.yaml": "substitutions:\n  HOST: h\nurl: ${HOTS}\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    assert only_error(e) == (f"{spec}:3:6: error: at url: undefined substitution ${{HOTS}}: define it under "
                             "'substitutions:' or pass -s HOTS VALUE (did you mean \"HOST\"?)")


def test_billion_laughs_refused(write_spec):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    spec = write_spec({"spec.yaml": "\n".join(lines) + "\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    assert f"more than {MAX_NODES} nodes (an alias bomb?)" in only_error(e)


def test_deep_nesting_refused(write_spec):
    spec = write_spec({"spec.yaml": "x: " + "[" * 5000 + "]" * 5000 + "\n"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    assert only_error(e).startswith(f"{spec}:1:{MAX_DEPTH + 3}: error: nesting deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize(("content", "expected"), [
    (b"name: a\n\x00\x01\x02", ":2:1: error: binary data (a NUL byte): this is not a YAML text file"),
    (b"name: \xff\xfe\n", ":1:7: error: the file is not valid UTF-8; save it as UTF-8 text"),
    (b"a: 1\na: 2\n", ":2:1: error: at a: duplicate key 'a'"),
    (b"a: !python/object x\n", ":1:4: error: at a: unknown tag !python/object: clawgen understands !secret "
                               "and !include"),
    (b"a: 1\n---\nb: 2\n", ":2:1: error: the file holds several YAML documents ('---'); a spec is one document"),
    (b"a: [1, 2\n", ":2:1: error: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    (b"? [a]\n: 1\n", ":1:3: error: a mapping key must be a plain name, not a list or mapping"),
    (b"a: *nope\n", ":1:4: error: invalid YAML: found undefined alias 'nope'"),
])
def test_hostile_input_is_one_clear_error(write_spec, content, expected):
    spec = write_spec({"spec.yaml": content})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    assert only_error(e) == f"{spec}{expected}"


def test_empty_file_loads_as_nothing(write_spec):
    assert load_spec(write_spec({"spec.yaml": ""})).data is None
    assert load_spec(write_spec({"spec.yaml": "# only a comment\n"})).data is None


def test_huge_numbers_load_exactly(write_spec):
    doc = load_spec(write_spec({"spec.yaml": "n: 1" + "0" * 400 + "\nh: 0xFF\n"}))
    assert doc.data["n"] == 10**400 and doc.data["h"] == 255


def test_simulator_placeholder_secrets_warn_instead_of_failing(write_spec):
    spec = write_spec({"spec.yaml": "name: a\nkey: !secret api\n"})
    doc = load_spec(spec, placeholder_secrets=True)
    assert doc.data["key"].value == ""
    assert [w.text() for w in doc.warnings] == [
        f"{spec}:2:6: warning: at key: secret 'api' not found in {spec.parent / 'secrets.yaml'}: "
        "using an empty value in the simulator"]
    with pytest.raises(DiagnosticError):
        load_spec(spec)  # a real build still refuses


def test_unused_override_warns_with_suggestion(write_spec):
    spec = write_spec({"spec.yaml": "substitutions:\n  LLM_HOST: a\nname: x\nurl: http://${LLM_HOST}/v1\n"})
    doc = load_spec(spec, {"LLM_HOSTT": "10.0.0.7"})
    assert doc.data["url"] == "http://a/v1"
    assert [w.text() for w in doc.warnings] == [
        f"{spec}:1:1: warning: -s LLM_HOSTT: the spec never uses ${{LLM_HOSTT}}; the override has no effect "
        '(did you mean "LLM_HOST"?)']


def test_used_or_declared_overrides_do_not_warn(write_spec):
    spec = write_spec({"spec.yaml": "substitutions:\n  A: a\n  B: b\nname: x\nurl: http://${C}/v1\n"})
    doc = load_spec(spec, {"B": "z", "C": "host"})
    assert doc.data["url"] == "http://host/v1"
    assert doc.warnings == []


def test_a_diagnostic_is_always_one_line():
    from clawgen.diagnostics import Diagnostic

    d = Diagnostic("a.yaml", 3, 4, "model", "error", "first line\nsecond line")
    assert d.text() == "a.yaml:3:4: error: at model: first line second line"
