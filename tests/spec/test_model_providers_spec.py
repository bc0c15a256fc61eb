"""model.api, model.light and model.routing through load -> validate -> resolve -> plan: what reaches
the device (endpoint order, key slots, routing in per mille, the Anthropic parts of the prompt file)
and the errors at FILE:LINE:COL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.appmodules import app_modules, prompt_file
from clawgen.build import BuildOptions, load_and_plan
from clawgen.diagnostics import DiagnosticError

SECRETS = "ant: sk-ant-not-a-real-key-1\noai: sk-oai-not-a-real-key-2\n"
HEAD = "name: demo\nmodel:\n  api: anthropic\n  base_url: https://api.anthropic.com/v1\n  model: big\n" \
       "  api_key: !secret ant\n"


def _plan(tmp_path: Path, text: str):
    (tmp_path / "secrets.yaml").write_text(SECRETS)
    (tmp_path / "agent.yaml").write_text(text)
    return load_and_plan(tmp_path / "agent.yaml", BuildOptions())


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(DiagnosticError) as e:
        _plan(tmp_path, text)
    return [d.text() for d in e.value.diagnostics if d.severity == "error"]


def test_light_on_another_server_with_its_own_key(tmp_path: Path) -> None:
    planned = _plan(tmp_path, HEAD + "  light:\n    api: openai\n    base_url: https://api.openai.com/v1\n"
                    "    model: small\n    api_key: !secret oai\n"
                    "  routing: {threshold: 0.25, weights: {length: 2, code: 1, tools: 1, depth: 0}}\n")
    plan = planned.plan
    assert [(m.model, m.api, m.light, m.api_key_slot) for m in plan.models] == [
        ("big", "anthropic", False, "m0_key"), ("small", "openai", True, "m1_key")]
    assert planned.nvs_values["m1_key"] == b"sk-oai-not-a-real-key-2"
    r = plan.routing
    assert (r.threshold, r.w_length, r.w_code, r.w_tools, r.w_depth) == (250, 500, 250, 250, 0)
    assert {m.name for m in app_modules(plan)} >= {"claw_openai", "claw_anthropic"}
    pf = prompt_file(plan)
    raw = pf.text.encode()
    system = raw[pf.system_text_offset:pf.system_text_offset + pf.system_text_bytes]
    assert json.loads(system) == plan.system_prompt  # Anthropic's "system": a slice of the system message


def test_light_on_the_primary_server_takes_its_key_and_api(tmp_path: Path) -> None:
    plan = _plan(tmp_path, HEAD + "  light:\n    model: small\n").plan
    light = plan.models[-1]
    assert (light.api, light.host, light.api_key_slot, light.light) == ("anthropic", "api.anthropic.com", "m1_key", True)
    assert plan.routing is not None and plan.routing.threshold == 300  # the defaults of clawgen/spec.py
    assert "claw_openai" in {m.name for m in app_modules(plan)}  # the default adapter is always shipped


def test_no_light_no_routing_and_no_anthropic_module(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "name: demo\nmodel:\n  base_url: https://api.openai.com/v1\n  model: m\n"
                 "  api_key: !secret oai\n").plan
    assert plan.routing is None and [m.api for m in plan.models] == ["openai"]
    assert "claw_anthropic" not in {m.name for m in app_modules(plan)}
    assert prompt_file(plan).anthropic_tools == ""


def test_errors_at_their_lines(tmp_path: Path) -> None:
    errs = _errors(tmp_path, HEAD.replace("/v1\n", "/v1/messages\n") + "  temperature: 1.5\n"
                   "  routing: {weights: {length: 0, code: 0, tools: 0, depth: 0}}\n"
                   "  light:\n    base_url: https://llm.example.com/v1\n    model: small\n")
    assert any(e.endswith("4:13: error: at model.base_url: base_url must stop before /messages, which clawgen "
                          "appends: write https://api.anthropic.com/v1") for e in errs), errs
    assert any(e.endswith("7:16: error: at model.temperature: temperature 1.5 is above 1, the most the "
                          "Anthropic Messages API accepts; use 0..1") for e in errs), errs
    assert any(":8:22: error: at model.routing.weights: the routing weights are all 0" in e for e in errs), errs
    assert any(":9:3: error: at model.light: a light model without a key" in e for e in errs), errs
    assert len(errs) == 4, errs  # the temperature the light model inherits is not reported twice


def test_resolved_spec_with_light_and_routing_is_itself_valid(tmp_path: Path) -> None:
    """`clawgen config` prints provider, api, light and routing in full; that output plans the same."""
    import subprocess
    import sys

    text = HEAD + ("  light:\n    api: openai\n    base_url: https://api.openai.com/v1\n    model: small\n"
                   "    api_key: !secret oai\n  routing: {threshold: 0.35}\n")
    first = _plan(tmp_path, text).plan
    out = subprocess.run([sys.executable, "-m", "clawgen.cli", "config", str(tmp_path / "agent.yaml")],
                         capture_output=True, text=True, check=True).stdout
    (tmp_path / "resolved.yaml").write_text(out)
    second = load_and_plan(tmp_path / "resolved.yaml", BuildOptions()).plan
    assert second.models == first.models and second.routing == first.routing
    assert first.routing is not None and first.routing.threshold == 350
