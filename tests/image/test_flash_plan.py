"""Reading a build directory's flash_args.json: what `clawgen flash` writes where, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clawgen.diagnostics import DiagnosticError
from clawgen.image.flash import FLASH_ARGS, load_flash_plan


def write_build(root: Path, args: dict | str, files: dict[str, int] | None = None) -> Path:
    image = root / "image"
    image.mkdir(parents=True, exist_ok=True)
    for name, size in (files or {}).items():
        (image / name).write_bytes(b"\xff" * size)
    (image / "flash_args.json").write_text(args if isinstance(args, str) else json.dumps(args))
    (root / "build.json").write_text("{}\n")
    return root


def good_args(**overrides: object) -> dict:
    args = {
        "merged": {"offset": 0, "file": "firmware.bin"},
        "app_only": [{"offset": 0x200000, "file": "fs.bin", "name": "vfs"},
                     {"offset": 0x9000, "file": "nvs.bin", "name": "nvs"}],
        "chip": "esp32s3",
        "flash_size": "8MB",
    }
    args.update(overrides)
    return args


FILES = {"firmware.bin": 4096, "fs.bin": 8192, "nvs.bin": 0x6000}


def only_diagnostic(err: pytest.ExceptionInfo[DiagnosticError]):  # type: ignore[no-untyped-def]
    assert len(err.value.diagnostics) == 1
    return err.value.diagnostics[0]


def test_full_and_app_only_plans(tmp_path: Path) -> None:
    build = write_build(tmp_path, good_args(), FILES)
    full = load_flash_plan(build)
    assert [(r.name, r.offset, r.path.name) for r in full.regions] == [("firmware", 0, "firmware.bin")]
    app = load_flash_plan(build, app_only=True)
    # written in flash order, whatever the file lists first
    assert [(r.name, r.offset) for r in app.regions] == [("nvs", 0x9000), ("vfs", 0x200000)]
    assert app.chip == "esp32s3" and app.flash_size == "8MB" and app.app_only


def test_missing_build_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path / "nope")
    d = only_diagnostic(err)
    assert d.file == str(tmp_path / "nope") and d.severity == "error"


def test_a_directory_that_is_not_a_build_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path)
    d = only_diagnostic(err)
    assert d.file == str(tmp_path) and "not a clawgen build directory" in d.message
    assert "--no-images" not in d.message


def test_build_without_images(tmp_path: Path) -> None:
    (tmp_path / "build.json").write_text("{}\n")  # a build made with --no-images
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path)
    d = only_diagnostic(err)
    assert d.file == str(tmp_path / FLASH_ARGS) and "--no-images" in d.message


def test_invalid_json_points_at_the_line(tmp_path: Path) -> None:
    write_build(tmp_path, '{\n  "chip": "esp32s3",\n  oops\n}')
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path)
    d = only_diagnostic(err)
    assert d.file.endswith("flash_args.json") and d.line == 3
    assert d.text().startswith(f"{d.file}:3:")


def test_no_merged_image_suggests_app_only(tmp_path: Path) -> None:
    write_build(tmp_path, good_args(merged=None), FILES)
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path)
    d = only_diagnostic(err)
    assert d.path == "merged" and "--app-only" in d.message
    assert len(load_flash_plan(tmp_path, app_only=True).regions) == 2


def test_listed_file_missing(tmp_path: Path) -> None:
    write_build(tmp_path, good_args(), {"firmware.bin": 16, "nvs.bin": 16})
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path, app_only=True)
    d = only_diagnostic(err)
    assert d.path == "app_only[0].file" and "fs.bin" in d.message


@pytest.mark.parametrize(("override", "where"), [
    ({"chip": "esp99"}, "chip"),
    ({"flash_size": "lots"}, "flash_size"),
    ({"merged": {"offset": -1, "file": "firmware.bin"}}, "merged.offset"),
    ({"merged": {"offset": 0, "file": "../outside.bin"}}, "merged.file"),
    ({"merged": {"offset": 0x7FF000, "file": "firmware.bin", "name": "fw"}}, "merged"),
])
def test_invalid_fields_are_located(tmp_path: Path, override: dict, where: str) -> None:
    files = dict(FILES, **{"firmware.bin": 0x2000})
    write_build(tmp_path, good_args(**override), files)
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path)
    assert only_diagnostic(err).path == where


def test_overlapping_images(tmp_path: Path) -> None:
    args = good_args(app_only=[{"offset": 0x9000, "file": "nvs.bin", "name": "nvs"},
                               {"offset": 0xA000, "file": "fs.bin", "name": "vfs"}])
    write_build(tmp_path, args, FILES)
    with pytest.raises(DiagnosticError) as err:
        load_flash_plan(tmp_path, app_only=True)
    assert "overlap" in only_diagnostic(err).message
