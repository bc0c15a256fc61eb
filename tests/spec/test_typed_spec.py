"""The typed spec (clawgen/spec.py) is the one source of defaults: the schema agrees with it,
resolve returns it, plan reads only it, and `load_and_plan` returns a named object."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest

from clawgen.diagnostics import DiagnosticError
from clawgen.loader import LOADER_KEYS
from clawgen.schema import agent_schema
from clawgen.spec import (
    AgentSpec,
    Debug,
    Endpoint,
    Limits,
    Model,
    Persistence,
    PolicyRule,
    Registers,
    Transports,
    field_default,
    from_spec,
    secret_paths,
    spec_path,
    to_spec,
    walk_fields,
)

# The rule: every schema property is a dataclass field, except the top-level keys the loader
# consumes before the typed spec exists (clawgen.loader.LOADER_KEYS: `substitutions`, `packages`),
# which are in the schema for editors only. test_loader_keys_are_schema_keys_and_never_fields
# keeps that list honest.
NOT_RESOLVED = set(LOADER_KEYS)


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return agent_schema()["$defs"][ref[len("#/$defs/"):]]
    return node


def _properties(node: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The properties (and required keys) of an object node, looking into oneOf/anyOf branches."""
    node = _deref(node)
    if "properties" in node:
        return node["properties"], node.get("required", [])
    for alt in ("oneOf", "anyOf"):
        for branch in node.get(alt, []):
            branch = _deref(branch)
            if "properties" in branch:
                return branch["properties"], branch.get("required", [])
    raise AssertionError(f"no properties in {node}")


def _schema_node(path: str) -> tuple[dict[str, Any], list[str]]:
    """The schema of a spec path like ``model.fallbacks[].max_tokens``, and the required keys beside it."""
    node: dict[str, Any] = agent_schema()
    required: list[str] = node.get("required", [])
    for part in path.split("."):
        items = part.endswith("[]")
        props, required = _properties(node)
        node = _deref(props[part.removesuffix("[]")])
        if items:
            node = _deref(node["items"])
    return node, required


def _inherited(path: str) -> bool:
    """Fields of a fallback (and of model.light) take the primary model's value: no default of their own."""
    return path.startswith(("model.fallbacks[].", "model.light."))


def _static_default(f: dataclasses.Field[Any]) -> Any:
    return field_default(f)


def _section_of(cls: type, name: str) -> type | None:
    tp = typing.get_type_hints(cls)[name]
    return tp if dataclasses.is_dataclass(tp) else None


def test_every_schema_default_agrees_with_the_dataclass_default() -> None:
    checked = 0
    for path, cls, f in walk_fields():
        node, required = _schema_node(path)
        default = _static_default(f)
        in_schema = "default" in node
        if _inherited(path) or "default_from" in f.metadata:
            assert not in_schema, f"{path}: its default is derived ({f.metadata or 'from the primary'}), " \
                                  f"but the schema says {node.get('default')!r}"
            continue
        if default is dataclasses.MISSING:
            assert not in_schema, f"{path} is required in {cls.__name__} but has a schema default"
            assert f.name in required, f"{path} has no default in {cls.__name__} but the schema does not require it"
            continue
        section = _section_of(cls, f.name)
        if default is None or (section is not None and not in_schema and default == from_spec(section, {})):
            # None is "not set"; a section whose default is just its fields' defaults needs no default of its own
            assert not in_schema or node["default"] is None, path
            continue
        assert in_schema, f"{path}: {cls.__name__}.{f.name} defaults to {default!r} but the schema gives no default"
        hint = typing.get_type_hints(cls)[f.name]
        if section is not None:
            from_schema = from_spec(section, node["default"])
        elif typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            from_schema = tuple(from_spec(item, v) if dataclasses.is_dataclass(item) else v
                                for v in node["default"])
        else:
            from_schema = node["default"]
        assert from_schema == default, f"{path}: schema default {node['default']!r} != dataclass default {default!r}"
        checked += 1
    assert checked >= 20


def test_loader_keys_are_schema_keys_and_never_fields() -> None:
    """A loader-level key is a top-level schema property (so editors accept it) and no field of the
    typed spec (it never reaches resolve; test_packages.py checks `packages` leaves the data)."""
    fields_by_path = {path for path, _cls, _f in walk_fields()}
    assert set(LOADER_KEYS) == {"substitutions", "packages"}
    for key in LOADER_KEYS:
        assert key in agent_schema()["properties"], key
        assert key not in fields_by_path, key
        assert not any(p.startswith(key + ".") for p in fields_by_path), key


def test_every_schema_property_is_a_dataclass_field_and_back() -> None:
    """Adding a section means one dataclass and one schema block: neither can be forgotten."""
    fields_by_path = {path for path, _cls, _f in walk_fields()}

    def walk(node: dict[str, Any], prefix: str) -> None:
        try:
            props, _ = _properties(node)
        except AssertionError:
            return
        for key, sub in props.items():
            path = f"{prefix}.{key}" if prefix else key
            if path in NOT_RESOLVED:
                continue
            assert path in fields_by_path, f"schema property {path} has no field in clawgen/spec.py"
            sub = _deref(sub)
            if "items" in sub and isinstance(sub["items"], dict):
                walk(_deref(sub["items"]), path + "[]")
            else:
                walk(sub, path)

    walk(agent_schema(), "")
    for path, _cls, _f in walk_fields():
        _schema_node(path)  # raises KeyError when the schema lacks it


def test_spec_paths() -> None:
    assert spec_path(Limits, "request_bytes") == "limits.request_bytes"
    assert spec_path(Model, "max_tokens") == "model.max_tokens"
    assert spec_path(Endpoint, "api_key") == "model.fallbacks[].api_key"
    assert spec_path(AgentSpec, "name") == "name"
    paths = [p for p, _c, _f in walk_fields()]
    assert "registers.deny[].access" in paths and "transports.telnet.port" in paths


def _concrete(path: str) -> tuple[str | int, ...]:
    return tuple(p for part in path.split(".") for p in ((part[:-2], 0) if part.endswith("[]") else (part,)))


def test_secret_fields_are_where_the_schema_allows_secrets() -> None:
    """`!secret` is accepted exactly at the fields typed Secret."""
    from clawgen.schema import _secret_allowed

    secret = set(secret_paths())
    assert secret == {"model.api_key", "model.fallbacks[].api_key", "model.light.api_key", "network.ssid",
                      "network.password", "web.brave_api_key", "ota.key", "transports.telegram.token",
                      "transports.telnet.password", "mcp_server.token"}
    for path, _cls, _f in walk_fields():
        assert _secret_allowed(_concrete(path)) == (path in secret), path


def test_shorthand_forms_build_the_same_sections() -> None:
    assert from_spec(Persistence, "flash") == from_spec(Persistence, {"mode": "flash"}) == \
        Persistence(mode="flash", max_bytes=16384)
    assert from_spec(Debug, True) == Debug(trace=True)
    assert from_spec(PolicyRule, "GPIO.OUT*") == PolicyRule(match="GPIO.OUT*", access="read-write")
    tr = from_spec(Transports, {"telnet": True})
    assert (tr.uart.enabled, tr.telnet.enabled, tr.telnet.port) == (False, True, 2323)
    tr = from_spec(Transports, {"uart": {}, "telnet": {"port": 23}})
    assert (tr.uart.enabled, tr.telnet.enabled, tr.telnet.port) == (True, True, 23)
    regs = from_spec(Registers, {"allow": ["GPIO.OUT*", {"match": "LEDC.*", "access": "read"}]})
    assert regs.allow == (PolicyRule(match="GPIO.OUT*"), PolicyRule(match="LEDC.*", access="read"))
    assert regs.defaults is True and regs.deny == ()


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "secrets.yaml").write_text("k: sk-test-not-a-key\nssid: net\npw: password-1\n")
    (tmp_path / "h.py").write_text("def f():\n    return 1\n")
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return p


def test_resolve_returns_the_typed_spec_with_board_defaults(tmp_path: Path) -> None:
    from clawgen.build import BuildOptions, load_and_plan

    spec = _write(tmp_path, """\
name: typed
board: esp32c3
model:
  base_url: https://api.example.org/v1
  model: m
  api_key: !secret k
  fallbacks:
    - model: m2
      max_tokens: 99
network: {ssid: !secret ssid, password: !secret pw}
transports: {telnet: true}
limits: {request_bytes: 16384}
persistence: flash
tools:
  - {name: t, description: d, handler: h.py:f}
""")
    planned = load_and_plan(spec, BuildOptions())
    assert not isinstance(planned, tuple)
    res = planned.resolved
    s = res.spec
    assert isinstance(s, AgentSpec)
    from clawgen.boards import load_board

    board = load_board("esp32c3")
    assert s.limits.request_bytes == 16384
    assert s.limits.response_bytes == board.limits["response_bytes"]
    assert s.web.fetch_max_bytes == s.limits.tool_result_bytes
    assert s.hardware.flash_size == "4MB" and res.flash_size == 4 << 20 and s.hardware.psram is False
    assert s.chip == "esp32c3" and s.network.hostname == "typed"
    fb = s.model.fallbacks[0]
    assert (fb.base_url, fb.model, fb.max_tokens, fb.api_key) == \
        ("https://api.example.org/v1", "m2", 99, s.model.api_key)  # the rest comes from the primary
    assert s.model.max_tokens == 512 and s.model.connect_timeout == 10
    assert (s.transports.uart.enabled, s.transports.telnet.enabled) == (False, True)
    assert s.persistence == Persistence(mode="flash")
    assert s.tools[0].parameters == {"type": "object", "properties": {}} and s.tools[0].confirm is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"  # type: ignore[misc]
    assert planned.plan.limits is s.limits  # the plan's limits are the spec's
    assert planned.plan.transports.telnet_port == 2323 and planned.plan.models[1].max_tokens == 99
    assert res.locator.written(("limits", "request_bytes")) and not res.locator.written(("limits",
                                                                                         "response_bytes"))
    assert res.locator.mark(("limits", "request_bytes")).line == 12


def test_config_prints_every_section_in_field_order(tmp_path: Path) -> None:
    from clawgen.build import BuildOptions, load_and_plan

    spec = _write(tmp_path, "name: cfg\nmodel: {base_url: 'http://10.0.0.2:8080/v1', model: m}\n")
    data = to_spec(load_and_plan(spec, BuildOptions()).resolved.spec)
    assert list(data) == [f.name for f in dataclasses.fields(AgentSpec)]
    assert data["transports"] == {"uart": {"enabled": True},
                                  "telnet": {"enabled": False, "port": 2323, "password": None}, "telegram": None}
    assert data["persistence"] == {"mode": "none", "max_bytes": 16384}
    assert data["registers"] == {"defaults": True, "allow": [], "deny": []}


def test_register_plan_is_computed_once_per_chip_and_policy(tmp_path: Path) -> None:
    """Two specs with the same chip and policy share one register plan; the diagnostics of each
    still point into its own file."""
    from clawgen.build import BuildOptions, load_and_plan

    a, b = tmp_path / "a", tmp_path / "b"
    plans = []
    for d, lead in ((a, ""), (b, "# a comment line\n# and another\n")):
        d.mkdir()
        spec = _write(d, lead + """\
name: regs
model: {base_url: 'http://10.0.0.2:8080/v1', model: m}
capabilities: [hw_register_control]
registers:
  allow: [GPIO]
""")
        with pytest.raises(DiagnosticError) as e:  # a pattern without a register is an error
            load_and_plan(spec, BuildOptions())
        plans.append(e.value)
    texts = [[d.text() for d in e.diagnostics] for e in plans]
    assert len(texts) == 2 and texts[0] and len(texts[0]) == len(texts[1])
    assert "registers.allow[0]: pattern \"GPIO\" must name PERIPHERAL.REGISTER" in texts[1][0]
    assert all(str(a / "agent.yaml") + ":5:" in t for t in texts[0]), texts[0]
    assert all(str(b / "agent.yaml") + ":7:" in t for t in texts[1]), texts[1]

    from clawgen import plan as plan_module

    (a / "ok.yaml").write_text((a / "agent.yaml").read_text().replace("[GPIO]", "['GPIO.OUT*']"))
    (b / "ok.yaml").write_text((b / "agent.yaml").read_text().replace("[GPIO]", "['GPIO.OUT*']"))
    before = len(plan_module._REGISTER_PLANS)
    first = load_and_plan(a / "ok.yaml", BuildOptions()).plan.registers
    second = load_and_plan(b / "ok.yaml", BuildOptions()).plan.registers
    assert first is second and first.entries
    assert len(plan_module._REGISTER_PLANS) <= before + 1
