"""`defaults: true` on a chip without a built-in default policy is a warning (a user's own import of
an Espressif SVD under another name does not get that chip's defaults)."""

from __future__ import annotations

from pathlib import Path

from clawgen.chips import load_chip
from clawgen.chips.policy import compile_policy
from clawgen.chips.svd import import_svd
from clawgen.resources import chips_dir

SVD = Path(__file__).parent / "svd"


def test_explicit_defaults_on_a_chip_without_them_warns() -> None:
    chip, _ = import_svd(SVD / "fieldaccess.svd", "mychip")
    _, diags = compile_policy(chip, {"defaults": True, "allow": ["P.RO"]})
    assert [(d.severity, d.path, d.message) for d in diags] == [
        ("warning", "registers.defaults",
         "chip mychip has no built-in default policy, so `defaults: true` adds nothing; list what to allow")]
    # Not written (the implicit default) or false: nothing to say.
    for value in ({"allow": ["P.RO"]}, {"defaults": False, "allow": ["P.RO"]}):
        _, diags = compile_policy(chip, value)
        assert diags == []


def test_explicit_defaults_on_a_builtin_chip_is_quiet() -> None:
    _, diags = compile_policy(load_chip("esp32c3", [chips_dir()]), {"defaults": True})
    assert diags == []
