"""No input, however malformed, may end in anything but diagnostics or a valid result.

Two generators over the example specs, both through the real loader and validator:
a structural mutation of every node (each value replaced by a list, a mapping, a huge
integer, a string, null, true, NaN and an empty mapping), and seeded byte-level corruption
of the files (the spec, its secrets.yaml). Each result must be a list of diagnostics with
sane positions that never contain a secret value; any other exception fails the test.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from clawgen.cli import cli
from clawgen.commands import validate_paths
from clawgen.diagnostics import Diagnostic

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
# register-assistant needs the chip database (hw_register_*); it joins once that loads.
SPECS = ("local-chat.yaml", "sensor-agent.yaml", "register-assistant.yaml")

_STR = "tag:yaml.org,2002:str"
# libyaml (when present) makes the mutants quickly; what reads them is always clawgen's loader.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _compose(text: str) -> yaml.Node:
    return yaml.compose(text, Loader=_FAST_LOADER)


def _serialize(node: yaml.Node) -> str:
    return yaml.serialize(node, Dumper=_FAST_DUMPER)


def _replacements(mark: yaml.Mark) -> list[tuple[str, yaml.Node]]:
    def scalar(tag: str, value: str) -> yaml.ScalarNode:
        return yaml.ScalarNode(tag, value, mark, mark)

    return [
        ("list", yaml.SequenceNode("tag:yaml.org,2002:seq", [scalar(_STR, "a"), scalar("tag:yaml.org,2002:int", "1")],
                                   mark, mark, flow_style=True)),
        ("mapping", yaml.MappingNode("tag:yaml.org,2002:map", [(scalar(_STR, "x"), scalar(_STR, "y"))],
                                     mark, mark, flow_style=True)),
        ("huge_int", scalar("tag:yaml.org,2002:int", "1" + "0" * 400)),
        ("string", scalar(_STR, "some text")),
        ("null", scalar("tag:yaml.org,2002:null", "null")),
        ("true", scalar("tag:yaml.org,2002:bool", "true")),
        ("nan", scalar("tag:yaml.org,2002:float", ".nan")),
        ("empty_mapping", yaml.MappingNode("tag:yaml.org,2002:map", [], mark, mark, flow_style=True)),
    ]


def _node_paths(node: yaml.Node, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(node, yaml.MappingNode):
        for i, (_k, v) in enumerate(node.value):
            yield from _node_paths(v, (*path, i))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yield from _node_paths(v, (*path, i))


def _replace(root: yaml.Node, path: tuple, new: yaml.Node) -> yaml.Node:
    if not path:
        return new
    parent = root
    for i in path[:-1]:
        parent = parent.value[i][1] if isinstance(parent, yaml.MappingNode) else parent.value[i]
    last = path[-1]
    if isinstance(parent, yaml.MappingNode):
        parent.value[last] = (parent.value[last][0], new)
    else:
        parent.value[last] = new
    return root


def _secret_values() -> list[str]:
    data = yaml.safe_load((EXAMPLES / "secrets.yaml").read_text(encoding="utf-8"))
    return [str(v) for v in data.values()]


def _check(diags: list[Diagnostic], workdir: Path) -> None:
    """Diagnostics point into a real line of a real file and never quote a secret."""
    secrets = _secret_values()
    for d in diags:
        assert d.severity in ("error", "warning")
        assert d.message and "Traceback" not in d.message
        assert "\n" not in d.message, d.message
        assert d.line >= 1 and d.column >= 1
        text = d.text()
        assert not any(s in text for s in secrets), text
        f = workdir / d.file
        if f.is_file():
            # line breaks as YAML counts them: a lone CR (or NEL, LS, PS) starts a line too
            lines = len(re.split(rb"\r\n|\r|\n|\xc2\x85|\xe2\x80\xa8|\xe2\x80\xa9", f.read_bytes()))
            assert d.line <= lines, text


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/agents (specs, secrets.yaml, tools/) as the working directory."""
    dst = tmp_path / "agents"
    shutil.copytree(EXAMPLES, dst)
    monkeypatch.chdir(dst)
    return dst


def _validate(workdir: Path, name: str) -> list[Diagnostic]:
    return validate_paths([Path(name)], None, {})


@pytest.mark.parametrize("spec", SPECS)
def test_every_node_replaced_by_every_kind_of_value(spec: str, workdir: Path) -> None:
    text = (workdir / spec).read_text(encoding="utf-8")
    baseline = _validate(workdir, spec)
    if any(d.severity == "error" for d in baseline):
        pytest.skip(f"{spec} does not validate yet: {baseline[0].text()}")
    count = 0
    paths = list(_node_paths(_compose(text)))
    for path in paths:
        for label, new in _replacements(_compose(text).start_mark):
            mutated = _serialize(_replace(_compose(text), path, new))
            target = workdir / "mutant.yaml"
            target.write_text(mutated, encoding="utf-8")
            try:
                diags = _validate(workdir, "mutant.yaml")
            except Exception as e:  # the point of the test: name the mutation that broke through
                raise AssertionError(f"{spec}: node {path} -> {label}: {type(e).__name__}: {e}\n{mutated}") from e
            _check(diags, workdir)
            count += 1
    assert count == len(paths) * 8


@pytest.mark.parametrize("spec", SPECS[:2])
def test_every_node_replaced_by_a_secret(spec: str, workdir: Path) -> None:
    """A `!secret` anywhere (it names a key that exists) is a value or a diagnostic, never a crash."""
    text = (workdir / spec).read_text(encoding="utf-8")
    failures = []
    for path in _node_paths(_compose(text)):
        root = _compose(text)
        secret = yaml.ScalarNode("!secret", "wifi_ssid", root.start_mark, root.start_mark)
        (workdir / "mutant.yaml").write_text(_serialize(_replace(root, path, secret)), encoding="utf-8")
        try:
            _check(_validate(workdir, "mutant.yaml"), workdir)
        except Exception as e:
            failures.append(f"node {path}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


# Byte-level edits that tend to break YAML in interesting places.
_SNIPPETS = [b"\x00", b"\xff\xfe", b"\t", b":", b": ", b"- ", b"[", b"{", b"]", b"}", b"&a ", b"*a", b"*zz",
             b"!secret ", b"!include ", b"!!python/name:os.system ", b"${", b"${X}", b"$$", b"<<: ", b"? ",
             b"---\n", b"...\n", b"%YAML 1.1\n", b'"', b"'", b"|", b">", b"#", b"\n", b"\r", b"\xe2\x80",
             b"9" * 30, b"1e999", b".nan", b"0x", b"~", b"@", b"`", b"\\", b"\xef\xbb\xbf"]


def _corrupt(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip one byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a snippet
            buf[pos:pos] = rng.choice(_SNIPPETS)
        elif op == 2:  # delete a run
            del buf[pos:pos + rng.randint(1, 40)]
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4:  # duplicate a line
            lines = bytes(buf).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            buf = bytearray(b"\n".join(lines))
        else:  # shift a line's indentation
            lines = bytes(buf).split(b"\n")
            i = rng.randrange(len(lines))
            lines[i] = b" " * rng.randint(1, 5) + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
            buf = bytearray(b"\n".join(lines))
    return bytes(buf)


CORRUPTIONS_PER_FILE = 100
# Each spec corrupted, and the secrets.yaml of the spec that uses every kind of secret but
# needs no chip database (a valid result runs the whole plan stage, the slow path).
VICTIMS = [(spec, "spec") for spec in SPECS] + [("sensor-agent.yaml", "secrets")]


@pytest.mark.parametrize(("spec", "victim"), VICTIMS)
def test_random_byte_corruption_gives_diagnostics_or_valid(spec: str, victim: str, workdir: Path) -> None:
    rng = random.Random(f"{spec}/{victim}")  # seeded: a failure reproduces
    target = workdir / (spec if victim == "spec" else "secrets.yaml")
    original = target.read_bytes()
    outcomes = {"valid": 0, "invalid": 0}
    for i in range(CORRUPTIONS_PER_FILE):
        data = _corrupt(original, rng)
        target.write_bytes(data)
        try:
            diags = _validate(workdir, spec)
        except Exception as e:
            raise AssertionError(f"{spec} ({victim}) corruption #{i}: {type(e).__name__}: {e}\n{data!r}") from e
        _check(diags, workdir)
        outcomes["invalid" if any(d.severity == "error" for d in diags) else "valid"] += 1
    assert outcomes["invalid"] > 0  # the corruption does reach the validator


def test_cli_never_exits_1_on_corrupted_specs(workdir: Path) -> None:
    """A sample through the command line: exit 0 or 2 and one line per diagnostic, never an internal error."""
    rng = random.Random("cli")
    original = (workdir / "sensor-agent.yaml").read_bytes()
    runner = CliRunner()
    for i in range(25):
        (workdir / "mutant.yaml").write_bytes(_corrupt(original, rng))
        result = runner.invoke(cli, ["validate", "mutant.yaml"])
        assert result.exit_code in (0, 2), f"corruption #{i}: {result.output}"
        assert "internal error" not in result.output and "Traceback" not in result.output


_BASE_SPEC = "name: demo\nmodel:\n  base_url: https://api.openai.com/v1\n  model: gpt-4o-mini\n"
# Run the CLI with a 1 GiB address-space cap so that a file read without bound ends in a
# MemoryError (exit 1, "internal error") instead of exhausting the machine.
_CAPPED_CLI = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
               "from clawgen.cli import main; main()")


@pytest.mark.skipif(not Path("/dev/zero").exists() or sys.platform != "linux", reason="needs /dev/zero")
@pytest.mark.parametrize("extra", ["tools: !include /dev/zero\n", "tls: {ca_certs: /dev/zero}\n"],
                         ids=["include", "ca_certs"])
def test_endless_special_file_is_refused(extra: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(_BASE_SPEC + extra, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _CAPPED_CLI, "validate", str(spec)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and "/dev/zero" in errors[0]
