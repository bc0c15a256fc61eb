"""The build report's browser-install line names the published build directory (the one
`clawgen web` serves), never the staging directory the image stage wrote into."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from clawgen.cli import cli
from clawgen.webinstall import EWT_VERSION
from tests.image import synth
from tests.web.test_install_page import SPEC


def test_report_names_the_published_build_dir(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(SPEC.format(board="esp32s3"))
    base = tmp_path / "base.bin"
    base.write_bytes(synth.stock_firmware("esp32s3"))
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["build", str(tmp_path / "agent.yaml"), "--out", str(out),
                                 "--base-firmware", str(base)])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.lstrip().startswith("web/:")]
    assert [line.strip() for line in lines] == [
        f"web/: browser install page (ESP Web Tools {EWT_VERSION}): clawgen web {out}"]
    assert (out / "web" / "index.html").is_file()  # the path it names holds the page
    # Nothing of the staging directory is left for the line to point at.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.yaml", "base.bin", "out"]
