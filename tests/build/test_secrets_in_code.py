"""Issue 9 item 6: secrets are found by where they are written (NVS only), not by a substring search
of the output. A password that is also a word of the generated code builds; a real leak does not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clawgen import plan as plan_stage
from clawgen.build import BuildOptions, build_spec
from clawgen.diagnostics import DiagnosticError
from clawgen.image.nvs import decode_nvs_image
from tests.build.helpers import SPEC, clawgen, project

KEY = "sk-test-0123456789abcdef0123"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGEN_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("word", ["password", "hostname", "connected"])
def test_password_equal_to_a_word_of_the_code_builds_and_goes_to_nvs(tmp_path: Path, word: str) -> None:
    spec = project(tmp_path / "proj", secrets=f"key: {KEY}\nssid: {word}\npw: {word}\n")
    out = tmp_path / "out"
    r = clawgen("build", str(spec), "--out", str(out), cwd=tmp_path, env={"CLAWGEN_CACHE": str(tmp_path / "c")})
    assert r.returncode == 0, r.stdout + r.stderr
    sources = "".join(p.read_text() for p in (out / "app").glob("*.py"))
    assert word in sources  # the code's own word is there, and is not the secret
    nvs = decode_nvs_image((out / "image" / "nvs.bin").read_bytes())
    assert nvs[("clawgen", "wifi_pw")] == word.encode() and nvs[("clawgen", "wifi_ssid")] == word.encode()


def _leaky(monkeypatch: pytest.MonkeyPatch, leak: object) -> None:
    """Simulate a planning bug: a secret value copied into what the templates render."""
    real = plan_stage.make_plan

    def make_plan(res, spec_file):  # type: ignore[no-untyped-def]
        plan, values, diags = real(res, spec_file)
        return leak(plan, values, res), values, diags  # type: ignore[operator]

    monkeypatch.setattr(plan_stage, "make_plan", make_plan)


@pytest.mark.parametrize("case", ["hostname", "header", "prompt", "secret-object"])
def test_a_secret_value_reaching_the_templates_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           case: str) -> None:
    """A planning bug that copies a secret value (or the Secret itself) where the templates read it
    is caught by where the value flows: planned again with canary values, a canary shows up."""
    spec = project(tmp_path / "proj", secrets=f"key: {KEY}\nssid: s\npw: connected\n")

    def leak(plan, values, res):  # type: ignore[no-untyped-def]
        if case == "secret-object":  # the loader's Secret itself, not its value
            ep = dataclasses.replace(plan.models[0], headers={"X-Key": res.spec.model.api_key})
            return dataclasses.replace(plan, models=[ep])
        if case == "hostname":  # a short secret as a whole value
            return dataclasses.replace(plan, network=dataclasses.replace(plan.network,
                                                                         hostname=values["wifi_pw"].decode()))
        if case == "header":
            ep = dataclasses.replace(plan.models[0], headers={"X-Key": values["m0_key"].decode()})
            return dataclasses.replace(plan, models=[ep])
        return dataclasses.replace(plan, system_prompt=f"Your key is {values['m0_key'].decode()}.")  # inside a text

    _leaky(monkeypatch, leak)
    out = tmp_path / "out"
    with pytest.raises(DiagnosticError) as err:
        build_spec(spec, BuildOptions(out_dir=out))
    text = "\n".join(d.text() for d in err.value.diagnostics)
    assert "would be written in clear into the generated code" in text and "a clawgen bug" in text
    assert KEY not in text and "connected" not in text
    assert not out.exists()


def test_a_key_pasted_into_the_spec_is_refused_where_it_is_written(tmp_path: Path) -> None:
    spec = project(tmp_path / "proj", spec=SPEC + f"system_prompt: You are a lamp, our key is {KEY}\n")
    with pytest.raises(DiagnosticError) as err:
        build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False))
    [d] = err.value.diagnostics
    assert (d.file, d.line, d.path) == (str(spec), 10, "system_prompt")
    assert "secret 'key' (model.api_key)" in d.message and KEY not in d.text()


def test_the_api_key_pasted_into_a_handler_is_refused_at_its_line(tmp_path: Path) -> None:
    tools = (SPEC + "tools:\n  - name: t\n    description: d\n    handler: tools/t.py:run\n")
    spec = project(tmp_path / "proj", spec=tools,
                   files={"tools/t.py": f'# my tool\nAPI = "{KEY}"\n\n\ndef run():\n    return API\n'})
    with pytest.raises(DiagnosticError) as err:
        build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False))
    [d] = err.value.diagnostics
    assert d.file.endswith("t.py") and (d.line, d.column) == (2, 8)
    assert "secret 'key'" in d.message and KEY not in d.text()


def test_a_short_password_in_handler_code_is_not_a_leak(tmp_path: Path) -> None:
    tools = (SPEC + "tools:\n  - name: t\n    description: d\n    handler: tools/t.py:run\n")
    spec = project(tmp_path / "proj", spec=tools, secrets=f"key: {KEY}\nssid: s\npw: password\n",
                   files={"tools/t.py": 'def run():\n    return "password reset is not possible"\n'})
    result = build_spec(spec, BuildOptions(out_dir=tmp_path / "out", images=False))
    assert "t" in result.info["tools"]


def test_no_word_of_the_generated_code_is_taken_for_a_leaked_password(tmp_path: Path) -> None:
    """Every word of 8+ characters in the generated sources of an example, as the Wi-Fi password:
    the checks never fire on the code's own text (nor on the spec's, for words under 12 bytes)."""
    import re

    from clawgen.build import load_and_plan
    from clawgen.render import render_app
    from tests.conftest import EXAMPLES

    words: set[str] = set()
    for name in ("sensor-agent", "register-assistant"):
        _modules, sources = render_app(load_and_plan(EXAMPLES / f"{name}.yaml", BuildOptions()).plan)
        words |= {w for text in sources.values() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]{7,62}", text)}
    assert len(words) > 300 and {"password", "hostname", "connected"} <= words
    picked = [*sorted(words)[:: max(1, len(words) // 40)], "password", "hostname", "connected"]
    for word in picked:
        spec = project(tmp_path / word, secrets=f"key: {KEY}\nssid: s\npw: {word}\n")
        build_spec(spec, BuildOptions(out_dir=tmp_path / word / "out", images=False))
