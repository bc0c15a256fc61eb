"""Hostile and mistaken input to the spec stages (issue 9): header injection, secret values,
!include of non-YAML files, expansion bombs, nothing validated, exit codes, nested substitutions.

Each test states the user-visible rule; the invalid corpus (tests/spec/invalid/) holds the
exact messages of the same cases.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clawgen.diagnostics import Diagnostic, DiagnosticError
from clawgen.loader import load_spec
from clawgen.schema import validate_schema
from tests.conftest import REPO
from tests.special_files import KINDS, make_not_regular

MODEL = "model:\n  base_url: https://api.openai.com/v1\n  model: gpt-4o-mini\n"


def clawgen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawgen.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


def diagnose(path: Path, **kw: object) -> list[Diagnostic]:
    """Load + schema/semantic validation of one spec: the diagnostics (load errors included)."""
    try:
        doc = load_spec(path, **kw)  # type: ignore[arg-type]
    except DiagnosticError as e:
        return e.diagnostics
    return [d for d in validate_schema(doc) if d.severity == "error"]


def where(d: Diagnostic) -> tuple[str, int, int]:
    return Path(d.file).name, d.line, d.column


# -- item 1: HTTP header injection ---------------------------------------------------

# Written out here, independently of clawgen's own table.
FRAMING_AND_CREDENTIALS = ("Content-Length", "Host", "Transfer-Encoding", "Connection", "Authorization",
                           "x-api-key", "Proxy-Authorization", "Cookie", "Upgrade", "TE", "Trailer",
                           "Expect", "Keep-Alive")


@pytest.mark.parametrize("name", [*FRAMING_AND_CREDENTIALS, "content-length", "HOST", "authorization",
                                  "X-API-KEY", "transfer-encoding", "te"])
def test_framing_and_credential_headers_are_refused_at_the_key(write_spec, name: str):
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}  headers:\n    X-Title: ok\n    {name}: v\n"})
    diags = diagnose(spec)
    assert len(diags) == 1, diags
    assert where(diags[0]) == ("spec.yaml", 7, 5)
    assert diags[0].path == f"model.headers.{name}"
    assert f"header {name} " in diags[0].message


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\tb", "a\x1bb", "a\x7f",
                                   "ends with a newline\n", "\x85next line"])
def test_header_values_with_control_characters_are_refused(write_spec, value: str):
    quoted = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    spec = write_spec({"spec.yaml": f'name: demo\n{MODEL}  headers:\n    X-Title: "{quoted}"\n'})
    diags = diagnose(spec)
    assert [where(d) for d in diags] == [("spec.yaml", 6, 14)], diags
    assert "no CR, LF, NUL" in diags[0].message
    assert "\r" not in diags[0].text() and "\n" not in diags[0].text()  # the message itself stays one line


@pytest.mark.parametrize("name", ["X Title", "X:Title", "X-Title\n", "(comment)", "X-Ä", "a" * 65])
def test_header_names_must_be_http_tokens(write_spec, name: str):
    key = name.encode("unicode_escape").decode("ascii")
    spec = write_spec({"spec.yaml": f'name: demo\n{MODEL}  headers:\n    X-Ok: fine\n    "{key}": v\n'})
    diags = diagnose(spec)
    assert [where(d) for d in diags] == [("spec.yaml", 7, 5)], diags
    assert "HTTP token" in diags[0].message


def test_fallback_headers_are_checked_too_and_good_headers_pass(write_spec):
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}  headers: {{HTTP-Referer: 'https://example.org', "
                                    "X-Title: \"greenhouse agent ünïcode\", X_Custom.v1: '~ok!'}\n"
                                    "  fallbacks:\n    - model: b\n      headers:\n        Cookie: a=b\n"})
    diags = diagnose(spec)
    assert [(where(d), d.path) for d in diags] == [(("spec.yaml", 9, 9), "model.fallbacks[0].headers.Cookie")]


# -- item 7: secret values -------------------------------------------------------------

SECRET_SPEC = (f"name: demo\n{MODEL}  api_key: !secret key\n"
               "network:\n  ssid: !secret ssid\n  password: !secret pw\n")


def secrets_text(key: str = "sk-ok", ssid: str = "home", pw: str = "correct-horse") -> str:
    def q(v: str) -> str:
        return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'

    return f"# test secrets\nkey: {q(key)}\nssid: {q(ssid)}\npw: {q(pw)}\n"


LINE = {"key": (2, 6), "ssid": (3, 7), "pw": (4, 5)}  # where each value is written in secrets_text()


@pytest.mark.parametrize(("secret", "value", "words"), [
    ("pw", "p" * 78, "78 bytes long; a WPA2 password is 8 to 63"),
    ("pw", "p" * 7, "7 bytes long; a WPA2 password is 8 to 63"),
    ("pw", "", "for an open network leave network.password out"),
    ("pw", "pass\nword", "a line break (LF)"),
    ("ssid", "", "is empty"),
    ("ssid", "n" * 33, "33 bytes long; a Wi-Fi name is at most 32 bytes"),
    ("ssid", "é" * 17, "34 bytes long"),
    ("key", "", "is empty"),
    ("key", "k" * 5000, "5000 bytes long; the device reads secrets of at most 4096 bytes"),
    ("key", "k" * 30_000, "30000 bytes long"),
    ("key", "sk-a\r\nX-Evil: 1", "a carriage return (CR)"),
    ("key", "sk-a\nb", "a line break (LF)"),
    ("key", "sk-a\x00b", "a NUL byte"),
    ("key", "sk-a\x01b", "control character U+0001"),
    ("key", "sk-a ", "starts or ends with a space"),
])
def test_bad_secret_values_are_reported_at_the_secret_own_line(write_spec, secret: str, value: str, words: str):
    spec = write_spec({"spec.yaml": SECRET_SPEC, "secrets.yaml": secrets_text(**{secret: value})})
    diags = diagnose(spec)
    assert len(diags) == 1, diags
    assert where(diags[0]) == ("secrets.yaml", *LINE[secret])
    assert diags[0].path == secret and words in diags[0].message
    text = diags[0].text()
    assert value not in text or not value  # the value itself is never shown
    if len(value) > 8:
        assert value[:8] not in text


@pytest.mark.parametrize(("secret", "value"), [
    ("pw", "p" * 8), ("pw", "p" * 63), ("pw", "0123456789abcdef" * 4),  # 64 hex digits: the key itself
    ("pw", "pässwörd"), ("ssid", "n" * 32), ("ssid", "é" * 16), ("key", "k" * 4096),
])
def test_good_secret_values_pass(write_spec, secret: str, value: str):
    spec = write_spec({"spec.yaml": SECRET_SPEC, "secrets.yaml": secrets_text(**{secret: value})})
    assert diagnose(spec) == []


def test_secret_values_are_the_text_as_written(write_spec):
    """A secret is text: a password of digits, 'yes' or one with '$$' must reach NVS unchanged."""
    spec = write_spec({"spec.yaml": SECRET_SPEC,
                       "secrets.yaml": "key: 0x10\nssid: yes\npw: 0123456789\nextra: pa$$${word}\n"})
    doc = load_spec(spec)
    got = {s.name: s.value for s in doc.secrets.values()}
    assert got == {"key": "0x10", "ssid": "yes", "pw": "0123456789"}


def test_plain_ssid_is_counted_in_bytes(write_spec):
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}network:\n  ssid: {'é' * 20}\n"})
    diags = diagnose(spec)
    assert [where(d) for d in diags] == [("spec.yaml", 6, 9)]
    assert "40 bytes long" in diags[0].message


def test_simulator_placeholder_secrets_are_not_value_checked(write_spec):
    spec = write_spec({"spec.yaml": SECRET_SPEC, "secrets.yaml": "ssid: home\n"})
    doc = load_spec(spec, placeholder_secrets=True)
    assert [d for d in validate_schema(doc) if d.severity == "error"] == []


def test_30kb_key_is_an_error_at_its_line_in_validate_and_build(write_spec, tmp_path: Path):
    spec = write_spec({"spec.yaml": SECRET_SPEC, "secrets.yaml": secrets_text(key="k" * 30_000)})
    for args in (["validate", str(spec)], ["build", str(spec), "--out", str(tmp_path / "out")]):
        r = clawgen(*args)
        assert r.returncode == 2, r.stderr
        assert f"{tmp_path / 'secrets.yaml'}:2:6: error: at key: secret 'key'" in r.stderr
        assert "overflows" not in r.stderr and "spec.yaml:1:1" not in r.stderr
        assert "k" * 100 not in r.stderr + r.stdout


def test_secrets_that_fit_one_by_one_but_not_together_are_reported_at_the_largest(write_spec, tmp_path: Path):
    fallbacks = "".join(f"    - model: m{i}\n      api_key: !secret k{i}\n" for i in range(1, 5))
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}  api_key: !secret k0\n  fallbacks:\n{fallbacks}",
                       "secrets.yaml": "".join(f"k{i}: {'k' * (4000 + i)}\n" for i in range(5)) + "k5: x\n"})
    diags = diagnose(spec)
    assert [(where(d), d.path) for d in diags] == [(("secrets.yaml", 5, 5), "k4")], diags
    assert "more than the 20160 bytes the nvs partition holds" in diags[0].message
    r = clawgen("build", str(spec), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "secrets.yaml:5:5: error: at k4:" in r.stderr and "overflows" not in r.stderr


@pytest.mark.parametrize("sizes", [[4096] * 5, [4000] * 5 + [5], [3000] * 6 + [100], [2000] * 9, [60] * 120,
                                   [4096] * 4 + [3000], [1] * 200])
def test_the_nvs_total_check_never_refuses_what_fits(sizes: list[int]):
    """The check is a lower bound of the real NVS image generator's need: whenever it says
    "does not fit", the real image overflows (and it catches these cases before the image)."""
    from clawgen.image.nvs import NvsOverflowError, build_nvs_image
    from clawgen.secretcheck import nvs_entries_at_least, nvs_entries_available

    refused = 1 + sum(nvs_entries_at_least(n) for n in sizes) > nvs_entries_available()
    try:
        build_nvs_image({f"k{i}": b"x" * n for i, n in enumerate(sizes)}, 0x6000)
        fits = True
    except NvsOverflowError:
        fits = False
    assert not (refused and fits)
    assert refused == (not fits)  # on these cases the bound is also tight


def test_device_read_buffer_is_the_checked_maximum():
    """One constant: the template renders the read buffer from the value the check uses."""
    from clawgen.resources import templates_dir
    from clawgen.secretcheck import SECRET_MAX_BYTES

    src = (templates_dir() / "app" / "claw_boot.py.j2").read_text(encoding="utf-8")
    assert "bytearray({{ SECRET_MAX_BYTES | int }})" in src
    assert f"bytearray({SECRET_MAX_BYTES})" not in src  # not written out a second time


# -- item 8: !include of a file that is not YAML ---------------------------------------

def test_include_of_a_text_file_does_not_echo_it(write_spec, tmp_path: Path):
    (tmp_path / "passwd").write_text("root:x:0:0:SENTINEL-root:/root:/bin/bash\n"
                                     "daemon:x:1:1:SENTINEL-daemon:/usr/sbin:/usr/sbin/nologin\n")
    spec = write_spec({"spec.yaml": "name: demo\nmodel: !include passwd\n"})
    r = clawgen("validate", str(spec))
    assert r.returncode == 2
    assert "SENTINEL" not in r.stderr + r.stdout and "x:0:0" not in r.stderr
    assert f"{spec}:2:8: error: at model: " in r.stderr
    assert "is not a YAML mapping, list or quoted string" in r.stderr


@pytest.mark.skipif(not Path("/etc/passwd").is_file(), reason="no /etc/passwd here")
def test_include_of_etc_passwd_does_not_echo_it(write_spec):
    first = Path("/etc/passwd").read_text(errors="replace").splitlines()[0]
    spec = write_spec({"spec.yaml": "name: demo\nmodel: !include /etc/passwd\n"})
    r = clawgen("validate", str(spec))
    assert r.returncode == 2
    assert first[:12] not in r.stderr + r.stdout


def test_include_of_a_block_string_or_number_still_works(write_spec):
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}system_prompt: !include prompt.yaml\n"
                                    "network:\n  connect_retries: !include retries.yaml\n",
                       "prompt.yaml": "|\n  You are a test agent.\n  Be brief.\n", "retries.yaml": "7\n"})
    doc = load_spec(spec)
    assert doc.data["system_prompt"] == "You are a test agent.\nBe brief.\n"
    assert doc.data["network"]["connect_retries"] == 7


# -- item 10: expansion caps and the request_bytes advice ------------------------------

def test_aliases_of_a_big_string_are_refused_before_expansion(tmp_path: Path):
    """A 1 MB spec whose tool enum repeats a 900 KB string 8,000 times (~7 GB once expanded: before
    the cap, `validate` died of MemoryError). The loader refuses it before anything is expanded."""
    spec = tmp_path / "bomb.yaml"
    spec.write_text(f"name: demo\n{MODEL}tools:\n  - name: t\n    description: d\n    handler: h.py:f\n"
                    "    parameters:\n      type: object\n      properties:\n        v:\n          enum:\n"
                    "            - &a " + "a" * 900_000 + "\n" + "            - *a\n" * 8000)
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    (d,) = e.value.diagnostics
    assert where(d) == ("bomb.yaml", 14, 15)
    assert "expands to more than" in d.message and "characters" in d.message


@pytest.mark.parametrize(("fan_out", "levels"), [(2, 40), (20_000, 3)])
def test_nested_substitutions_cannot_expand_exponentially(write_spec, fan_out: int, levels: int):
    lines = ["substitutions:", "  A0: " + "x" * 1000]
    lines += [f'  A{i}: "' + f"${{A{i - 1}}}" * fan_out + '"' for i in range(1, levels)]
    spec = write_spec({"spec.yaml": "\n".join(lines) + f"\nname: demo-${{A{levels - 1}}}\n" + MODEL})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    (d,) = e.value.diagnostics
    assert "expand to more than" in d.message
    assert d.line > 2 and d.path.startswith("substitutions.A")


def test_request_bytes_advice_never_exceeds_the_schema_maximum(write_spec):
    from clawgen.commands import validate_paths
    from clawgen.schema import agent_schema

    most = agent_schema()["properties"]["limits"]["properties"]["request_bytes"]["maximum"]
    enum = ", ".join(f"v{i:05d}-" + "e" * 40 for i in range(6000))  # a tools JSON of ~300 KB
    spec = write_spec({
        "spec.yaml": f"name: demo\n{MODEL}tools:\n  - name: pick\n    description: pick one\n"
                     f"    handler: tools.py:pick\n    parameters:\n      type: object\n"
                     f"      properties:\n        v: {{type: string, enum: [{enum}]}}\n",
        "tools.py": "def pick(v):\n    return v\n"})
    diags = [d for d in validate_paths([spec], None, {}) if "request buffer" in d.message]
    assert len(diags) == 1, diags
    msg = diags[0].message
    assert f"more than the maximum limits.request_bytes of {most}" in msg
    assert "shorten the system prompt or the tool descriptions" in msg
    assert "set limits.request_bytes to at least" not in msg


# -- item 11: nothing validated ----------------------------------------------------------

def test_validate_of_a_directory_without_specs_exits_2(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-secrets").mkdir()
    (tmp_path / "only-secrets" / "secrets.yaml").write_text("k: v\n")
    for d in ("empty", "only-secrets"):
        r = clawgen("validate", str(tmp_path / d))
        assert r.returncode == 2, r.stderr
        assert f"{tmp_path / d}:1:1: error: nothing was validated" in r.stderr
        assert "0 spec(s) valid" not in r.stderr


def test_validate_of_secrets_yaml_exits_2(examples_copy: Path):
    r = clawgen("validate", str(examples_copy / "secrets.yaml"))
    assert r.returncode == 2
    assert "nothing was validated: this is the secrets file, not an agent spec" in r.stderr
    r = clawgen("validate", "--format", "json", str(examples_copy / "secrets.yaml"))
    assert r.returncode == 2
    assert '"nothing was validated: this is the secrets file' in r.stdout
    # `validate agents/*.yaml` names the secrets file beside the specs: it is skipped there
    r = clawgen("validate", str(examples_copy / "local-chat.yaml"), str(examples_copy / "secrets.yaml"))
    assert r.returncode == 0, r.stderr
    assert "1 spec(s) valid" in r.stderr


# -- item 13: exit codes and substitutions ---------------------------------------------

def test_build_and_config_of_a_missing_spec_exit_2_like_validate(tmp_path: Path):
    missing = str(tmp_path / "nonexist.yaml")
    for cmd in ("validate", "build", "config"):
        r = clawgen(cmd, missing)
        assert r.returncode == 2, (cmd, r.stderr)
        assert f"{missing}:1:1: error:" in r.stderr and "not found" in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("cmd", ["build", "validate", "config"])
def test_empty_board_option_is_an_error(examples_copy: Path, tmp_path: Path, cmd: str):
    extra = ["--out", str(tmp_path / "out")] if cmd == "build" else []
    r = clawgen(cmd, str(examples_copy / "local-chat.yaml"), "--board", "", *extra)
    assert r.returncode == 2, r.stderr
    assert "--board is empty" in r.stderr
    assert not (tmp_path / "out").exists()


def test_substitutions_may_use_other_substitutions(write_spec):
    spec = write_spec({"spec.yaml": "substitutions:\n  HOST: 10.0.0.7\n  PORT: '11434'\n"
                                    "  URL: 'http://${HOST}:${PORT}/v1'\n  LIT: 'keep $${HOST} literal'\n"
                                    "  NAME: demo-${PORT}\n"
                                    "name: ${NAME}\nsystem_prompt: ${LIT}\n"
                                    "model:\n  base_url: ${URL}\n  model: m\n"})
    doc = load_spec(spec)
    assert doc.data["model"]["base_url"] == "http://10.0.0.7:11434/v1"
    assert doc.data["name"] == "demo-11434"
    assert doc.data["system_prompt"] == "keep ${HOST} literal"
    # -s overrides take part too, also as the value another substitution uses
    doc = load_spec(spec, {"HOST": "h.lan", "PORT": "${HOST}-x"})
    assert doc.data["model"]["base_url"] == "http://h.lan:h.lan-x/v1"


@pytest.mark.parametrize(("subst", "line", "col", "words"), [
    ("  A: '${A}'\n", 2, 6, "substitution cycle: ${A} -> ${A}"),
    ("  A: x${B}\n  B: y${A}\n", 2, 6, "substitution cycle: ${A} -> ${B} -> ${A}"),
    ("  A: ok\n  B: x-${MISSING}\n", 3, 6, "undefined substitution ${MISSING} in the value of substitution B"),
    ("  A: ok\n  B: 'x-${bad name}'\n", 3, 6, "bad substitution '${bad name' in the value of substitution B"),
])
def test_unresolvable_substitutions_are_errors_at_their_value(write_spec, subst: str, line: int, col: int,
                                                              words: str):
    spec = write_spec({"spec.yaml": f"substitutions:\n{subst}name: demo-${{A}}\n{MODEL}"})
    with pytest.raises(DiagnosticError) as e:
        load_spec(spec)
    (d,) = e.value.diagnostics
    assert where(d) == ("spec.yaml", line, col)
    assert words in d.message


@pytest.mark.parametrize(("key", "yaml_text"), [
    ("name", 'name: "demo\\n"\n' + MODEL),
    ("network.hostname", f"name: demo\n{MODEL}network:\n  hostname: \"board\\n\"\n"),
])
def test_a_trailing_newline_does_not_slip_past_a_pattern(write_spec, key: str, yaml_text: str):
    """JSON Schema's '$' is the end of the string (Python's re also lets a final newline through)."""
    diags = diagnose(write_spec({"spec.yaml": yaml_text}))
    assert [d.path for d in diags] == [key]
    assert "\\n" in diags[0].message and "is not valid" in diags[0].message


@pytest.mark.parametrize("kind", KINDS)
def test_a_handler_path_that_is_not_a_regular_file_says_so(write_spec, tmp_path: Path, kind: str):
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}tools:\n  - name: t\n    description: d\n"
                                    "    handler: tools/h.py:f\n    parameters: {type: object, properties: {}}\n"})
    (tmp_path / "tools").mkdir()
    make_not_regular(tmp_path / "tools" / "h.py", kind)
    r = clawgen("validate", str(spec))
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == (f"{spec}:8:14: error: at tools[0].handler: handler file tools/h.py is not "
                                        "a regular file: give a .py file"), r.stderr


@pytest.mark.parametrize(("args", "what", "code"), [
    (("build", "{spec}", "--nvs-key", "{bad}", "--out", "{tmp}/o"), "NVS encryption key", 1),
    (("build", "{spec}", "--base-firmware", "{bad}", "--out", "{tmp}/o"), "base firmware", 1),
    (("firmware", "fetch", "--board", "esp32s3", "--file", "{bad}"), "firmware file", 1),
    (("ota", "{tmp}", "--host", "127.0.0.1", "--key-file", "{bad}"), "OTA key file", 2),
])
@pytest.mark.parametrize("bad", ["/dev/zero", "fifo"])
def test_a_file_option_that_is_a_device_or_a_pipe_is_refused_not_read(write_spec, tmp_path: Path, args, what,
                                                                       code, bad):
    # /dev/zero was read until memory ran out, a FIFO blocked the command for good.
    import os

    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}", "secrets.yaml": "x: 1\n"})
    if bad == "fifo":
        bad = str(make_not_regular(tmp_path / "pipe", "fifo"))
    if args[0] == "ota":  # a build directory for ota to get as far as the key file
        r = clawgen("build", str(spec), "--out", str(tmp_path / "b"), "--no-images")
        assert r.returncode == 0, r.stderr
        args = ("ota", str(tmp_path / "b"), *args[2:])
    argv = [a.format(spec=spec, bad=bad, tmp=tmp_path) for a in args]
    r = subprocess.run([sys.executable, "-m", "clawgen.cli", *argv], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60, env={**os.environ, "CLAWGEN_CACHE": str(tmp_path / "cache")})
    assert r.returncode == code, r.stdout + r.stderr
    assert f"{what} {bad} is not a regular file (a device or a pipe?)" in r.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_a_secrets_file_that_is_not_a_regular_file_says_so(write_spec, tmp_path: Path, kind: str):
    spec = write_spec({"spec.yaml": f"name: demo\n{MODEL}  api_key: !secret k\n"})
    sp = make_not_regular(tmp_path / "secrets.yaml", kind)
    (d,) = diagnose(spec)
    assert where(d) == ("spec.yaml", 5, 12)
    assert d.message == (f"!secret k: {sp} is not a regular file; make it the YAML file of "
                         "your secrets, with a line 'k: VALUE'")


@pytest.mark.parametrize(("value", "words"), [
    ("short", "5 bytes long; a Telnet password is 8 to 128"),
    ("p" * 129, "129 bytes long; a Telnet password is 8 to 128"),
    ("café-au-lait", "not printable ASCII at character 4"),
    ("pass\tword!", "not printable ASCII at character 5"),
    ("pass\r\nword", "not printable ASCII at character 5"),
    (" password", "starts or ends with a space"),
])
def test_bad_telnet_passwords(value: str, words: str):
    from clawgen.secretcheck import value_problems

    problems = value_problems(value, "telnet_password")
    assert len(problems) == 1 and words in problems[0], problems
    assert value not in problems[0]


@pytest.mark.parametrize("value", ["p" * 8, "p" * 128, "correct horse 42", "~!@#$%^&*()_+{}|:<>?"])
def test_good_telnet_passwords(value: str):
    from clawgen.secretcheck import value_problems

    assert value_problems(value, "telnet_password") == []


@pytest.mark.parametrize(("telnet", "warned"), [
    ("telnet: {port: 2323}", True),
    ("telnet: true", True),
    ("telnet: {port: 2323, password: !secret telnet_password}", False),
    ("telnet: false", False),
])
def test_telnet_without_a_password_is_a_warning_at_its_line(tmp_path: Path, telnet: str, warned: bool):
    from clawgen.commands import validate_paths

    (tmp_path / "secrets.yaml").write_text("wifi_password: correct-horse\ntelnet_password: open-sesame-1\n")
    spec = tmp_path / "agent.yaml"
    spec.write_text("name: demo\nmodel: {base_url: 'http://10.0.0.2:8080/v1', model: m}\n"
                    "network: {ssid: lab, password: !secret wifi_password}\n"
                    f"transports:\n  uart: true\n  {telnet}\n")
    diags = validate_paths([spec], None, {})
    assert all(d.severity == "warning" for d in diags), [d.text() for d in diags]
    warnings = [d for d in diags if "Telnet without a password" in d.message]
    assert len(warnings) == (1 if warned else 0), [d.text() for d in diags]
    if warned:
        assert (warnings[0].line, warnings[0].column, warnings[0].path) == (6, 11, "transports.telnet")
        assert "add password: !secret telnet_password" in warnings[0].message
