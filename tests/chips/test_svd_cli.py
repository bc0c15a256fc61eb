"""`clawgen svd import` / `clawgen svd info` through the real command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from clawgen.chips.db import read_chip
from clawgen.cli import cli

SVD = Path(__file__).parent / "svd"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLAWGEN_CHIP_PATH", raising=False)
    return tmp_path


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def test_import_writes_to_project_chips_dir(project: Path) -> None:
    r = run("svd", "import", str(SVD / "sanity.svd"), "--chip", "mychip")
    assert r.exit_code == 0, r.output
    out = project / "chips" / "mychip.json.gz"
    assert read_chip(out).peripheral("ADC") is not None
    # Warnings first (FILE:LINE:1: warning: ...), then the summary.
    assert f"{SVD / 'sanity.svd'}:" in r.output and ":1: warning: at ADC.CR: " in r.output
    assert ("imported SANITY as chip mychip: 1 peripherals, 7 registers (arrays expanded), 6 fields, "
            "0 enumerated value sets, 6 warning(s)") in r.output
    assert f"wrote {os.path.join('chips', 'mychip.json.gz')}" in r.output


def test_import_out_quiet_and_no_descriptions(project: Path) -> None:
    r = run("svd", "import", str(SVD / "derive.svd"), "--chip", "d", "--out", "elsewhere", "--quiet",
            "--no-descriptions")
    assert r.exit_code == 0, r.output
    assert "warning:" not in r.output and "4 warning(s)" in r.output
    chip = read_chip(project / "elsewhere" / "d.json.gz")
    assert chip.peripheral("UART0").description is None


@pytest.mark.parametrize(("content", "message"), [
    ("<device><name>X</name></device>", ":1:1: error: no <peripherals> in this SVD file"),
    ("<device>", "error: not well-formed XML"),
])
def test_unusable_svd_exits_2(project: Path, content: str, message: str) -> None:
    (project / "bad.svd").write_text(content)
    r = run("svd", "import", "bad.svd", "--chip", "bad")
    assert r.exit_code == 2
    assert f"bad.svd{message}" in r.output or message in r.output
    assert "Traceback" not in r.output
    assert not (project / "chips").exists()


def test_bad_chip_name_and_missing_file(project: Path) -> None:
    r = run("svd", "import", str(SVD / "derive.svd"), "--chip", "../evil")
    assert r.exit_code == 2 and 'chip name "../evil"' in r.output
    r = run("svd", "import", "missing.svd", "--chip", "x")
    assert r.exit_code == 2 and "missing.svd:1:1: error: cannot read SVD file" in r.output
    (project / "afile").write_text("")  # bad input, as `build --out afile/sub`: exit 2
    r = run("svd", "import", str(SVD / "derive.svd"), "--chip", "x", "--out", "afile/sub", "-q")
    assert r.exit_code == 2 and "cannot write" in r.output and "Traceback" not in r.output


def test_names_and_paths_no_file_system_takes_exit_2(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each was "internal error: OSError: [Errno 36] File name too long" (exit 1).
    r = run("svd", "import", str(SVD / "derive.svd"), "--chip", "c" * 65)
    assert r.exit_code == 2 and "must be 1 to 64 letters" in r.output and "c" * 81 not in r.output
    assert run("svd", "import", str(SVD / "derive.svd"), "--chip", "c" * 64, "-q").exit_code == 0
    r = run("svd", "import", str(SVD / "derive.svd"), "--chip", "x", "--out", "o" * 300)
    assert r.exit_code == 2 and "file systems take names of at most 255 bytes" in r.output
    r = run("svd", "import", "s" * 300 + ".svd", "--chip", "x")
    assert r.exit_code == 2 and "cannot read SVD file: File name too long" in r.output
    for name in ("n" * 300, "../chips/x", ".."):
        r = run("svd", "info", name)
        assert r.exit_code == 2 and "unknown chip" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in project.iterdir()) == ["chips"]  # (the 64-character chip)
    # A $CLAWGEN_CHIP_PATH directory no file system could hold holds no chip (as a missing one).
    monkeypatch.setenv("CLAWGEN_CHIP_PATH", "d" * 300)
    assert run("svd", "info", "c" * 64).exit_code == 0
    r = run("svd", "info", "nochip")
    assert r.exit_code == 2 and "unknown chip" in r.output


def test_the_chip_name_rule_is_the_spec_schemas() -> None:
    from clawgen.chips import CHIP_NAME_RE
    from clawgen.schema import agent_schema

    assert agent_schema()["properties"]["chip"]["pattern"] == CHIP_NAME_RE.pattern


def test_info_levels(project: Path) -> None:
    assert run("svd", "import", str(SVD / "values.svd"), "--chip", "v", "-q").exit_code == 0
    r = run("svd", "info", "v")
    assert r.exit_code == 0, r.output
    assert "chip v: device VALUES" in r.output and "1 peripherals, 5 registers" in r.output
    assert "P                        0x40000000      5 registers" in r.output
    r = run("svd", "info", "v", "p")
    assert r.exit_code == 0, r.output
    assert "LIMIT                            0x40000008  read-write     0x00000000" in r.output
    r = run("svd", "info", "v", "P", "limit")
    assert r.exit_code == 0, r.output
    assert "P.LIMIT at 0x40000008: 32 bits, read-write, reset 0x00000000 (mask 0xFFFFFFFF)" in r.output
    assert "[11:8]   SEL" in r.output
    assert "read: IDLE=0, BUSY=8, OTHER=default" in r.output
    assert "range 16..200" in r.output


def test_info_errors(project: Path) -> None:
    assert run("svd", "import", str(SVD / "values.svd"), "--chip", "v", "-q").exit_code == 0
    r = run("svd", "info", "nochip")
    assert r.exit_code == 2 and 'unknown chip "nochip"' in r.output and "v" in r.output
    r = run("svd", "info", "v", "PP")
    assert r.exit_code == 2 and 'no peripheral "PP" (did you mean "P"?)' in r.output
    r = run("svd", "info", "v", "P", "LIMT")
    assert r.exit_code == 2 and 'no register "LIMT" (did you mean "LIMIT"?)' in r.output


def test_info_finds_chips_on_chip_path(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = project / "lib"
    assert run("svd", "import", str(SVD / "arrays.svd"), "--chip", "arr", "--out", str(lib), "-q").exit_code == 0
    monkeypatch.setenv("CLAWGEN_CHIP_PATH", str(lib))
    r = run("svd", "info", "arr", "GPIO1")
    assert r.exit_code == 0, r.output
    assert "OUT                              0x50001004" in r.output


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("chips", (), "cannot write chips/c.json.gz: chips is a file, not a directory; move it, or pass --out DIR"),
    ("out", ("--out", "out/sub"), "cannot write out/sub/c.json.gz: out is a file, not a directory; move it, or "
                                  "choose another --out"),
    ("chips/c.json.gz/", (), "cannot write chips/c.json.gz: a directory of that name is in the way; move it, or "
                             "pass --out DIR"),
])
def test_import_where_a_file_or_directory_is_in_the_way_exits_2(project: Path, setup: str, args: tuple[str, ...],
                                                               message: str) -> None:
    """Where the database cannot go is bad input (exit 2, said before the import's work), not an
    OSError's words (it said "File exists", exit 1); what is in the way is left as it was."""
    if setup.endswith("/"):
        (project / setup).mkdir(parents=True)
    else:
        (project / setup).write_text("mine\n")
    r = run("svd", "import", str(SVD / "sanity.svd"), "--chip", "c", *args)
    assert r.exit_code == 2, r.output
    assert message.replace("/", os.sep) in r.output
    assert "warning" not in r.output and "Traceback" not in r.output
    if not setup.endswith("/"):
        assert (project / setup).read_text() == "mine\n"


C1_SVD = """<?xml version="1.0" encoding="utf-8"?>
<device><name>C&#x9b;1</name><width>32</width>
<peripherals><peripheral><name>P&#x9b;31m</name><baseAddress>0x40000000</baseAddress>
<description>evil &#x9b;2J done</description>
<registers><register><name>R&#x9b;1m</name><description>reg &#x9b;31m red</description>
<addressOffset>0</addressOffset><size>32</size>
<fields><field><name>F</name><description>f</description><bitOffset>0</bitOffset><bitWidth>1</bitWidth></field></fields>
</register><register><name>R&#x9b;1m</name><addressOffset>4</addressOffset><size>32</size></register>
</registers></peripheral></peripherals></device>
"""


def test_a_vendor_file_s_control_characters_do_not_reach_the_terminal(project: Path) -> None:
    # XML 1.0 allows the C1 controls (U+0080-U+009F) as characters: U+009B is an 8-bit CSI, and
    # `svd import`'s summary and warnings and `svd info` printed names and descriptions holding it.
    (project / "c1.svd").write_text(C1_SVD)
    outputs = [run("svd", "import", "c1.svd", "--chip", "c1"), run("svd", "info", "c1"),
               run("svd", "info", "c1", "P\x9b31m"), run("svd", "info", "c1", "P\x9b31m", "R\x9b1m"),
               run("svd", "info", "c1", "P\x9b31m", "RX")]
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0, 2]
    text = "".join(r.output for r in outputs)
    assert not any("\x80" <= c <= "\x9f" or (c < " " and c not in "\n\t") for c in text), repr(text)
    assert "imported C?1 as chip c1" in text and "P?31m at 0x40000000: evil ?2J done" in text
    assert "defined twice" in text or "R?1m" in text  # (a warning naming the register, made printable)
