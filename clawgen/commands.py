"""The spec commands: validate, config, schema, boards, build."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

from clawgen.diagnostics import (
    EXIT_INVALID,
    Diagnostic,
    DiagnosticError,
    UsageError,
    format_diagnostics,
    peer_text,
)

FORMATS = ("text", "json", "github")


def _subst_option(f):  # type: ignore[no-untyped-def]
    return click.option("-s", "--substitution", "substitutions", type=(str, str), multiple=True,
                        metavar="NAME VALUE", help="Override a ${NAME} substitution.")(f)


def _echo_warnings(warnings: list[Diagnostic], fmt: str = "text") -> None:
    if warnings and fmt == "text":
        click.echo(format_diagnostics(warnings, "text"), err=True)


SECRETS_NAME = "secrets.yaml"


_INCLUDE_RE = re.compile(r"!include\s+['\"]?([^\s'\"#,\]}]+)")


def _included_by(files: list[Path]) -> set[Path]:
    """The files that `!include` lines and `packages:` of ``files`` name: parts of a spec, not specs."""
    from clawgen.loader import referenced_files

    out: set[Path] = set()
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        out |= {(f.parent / m.group(1)).resolve() for m in _INCLUDE_RE.finditer(text) if "${" not in m.group(1)}
        if "packages" in text or "file:" in text:  # packages: entries and !include {file: ...}
            out |= referenced_files(f, text)
    return out


def _expand(p: Path) -> list[Path]:
    """The specs a path given to `validate` stands for: a directory, the *.yaml/*.yml specs in it
    (secrets files and the files the others `!include` are not specs; an entry that is neither a
    regular file nor a directory, a broken symbolic link, a FIFO, a device, is kept for the loader
    to report: a spec that cannot be read must not pass CI by being skipped); secrets.yaml, none."""
    if not p.is_dir():
        return [] if p.name == SECRETS_NAME else [p]
    entries = sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.name != SECRETS_NAME)
    found = [q for q in entries if q.is_file()]
    included = _included_by(found)  # (reads only the regular files: a FIFO would block)
    regular = set(found)
    out = []
    for q in entries:
        if q in regular:
            if q.resolve() not in included:
                out.append(q)
        elif not q.is_dir():  # (a directory called x.yaml is no spec and no mistake)
            out.append(q)
    return out


def nothing_to_validate(paths: list[Path], expanded: dict[Path, list[Path]] | None = None) -> list[Diagnostic]:
    """An error for each directory given that holds no spec, and for a secrets.yaml given when
    nothing else is validated (a wrong path in CI must not pass; `validate agents/*.yaml` names
    the secrets file beside the specs and is fine). ``expanded``: each path's specs, when the
    caller has them (a directory's files are read once per command)."""
    specs = expanded if expanded is not None else {p: _expand(p) for p in paths}
    out: list[Diagnostic] = []
    alone = not any(specs[p] for p in paths)
    for p in paths:
        if p.is_dir() and not specs[p]:
            out.append(Diagnostic(str(p), 1, 1, "", "error", "nothing was validated: the directory holds no "
                                  "agent spec (*.yaml or *.yml other than secrets.yaml and included files)"))
        elif p.name == SECRETS_NAME and alone:
            out.append(Diagnostic(str(p), 1, 1, "", "error", "nothing was validated: this is the secrets file, "
                                  "not an agent spec; give the spec that uses it"))
    return out


def check_board_option(board: str | None) -> None:
    """An invalid --board is invalid input (exit 2) with the list of boards; --board '' is a
    mistake (an unset variable in a script), not "the spec's board"."""
    if board is None:
        return
    from clawgen.boards import board_names
    from clawgen.diagnostics import InputError, did_you_mean

    if not board.strip():
        raise InputError(f"--board is empty; give a board name ({', '.join(board_names())}) "
                         "or leave --board out to use the spec's board")
    if board not in board_names():
        raise InputError(f"unknown board '{board}'{did_you_mean(board, board_names())}; "
                         f"known boards: {', '.join(board_names())}")


def spec_file_problem(spec: Path) -> str | None:
    """Why ``spec`` is no spec file to read ("spec file not found (did you mean ...)", a directory,
    a broken symbolic link, a FIFO or a device), or None for a regular file. One text for
    `validate` and the commands that take one spec."""
    if spec.is_file():
        return None
    if spec.is_dir():
        return "spec file is a directory, not a spec file"
    if spec.exists():
        return "spec file is not a regular file (a FIFO or a device?)"
    if spec.is_symlink():
        return f"spec file is a symbolic link to {peer_text(os.readlink(spec), 120)}, which does not exist"
    hint = ""
    if spec.parent.is_dir():
        from clawgen.diagnostics import did_you_mean_file

        hint = did_you_mean_file(spec.name, [q.name for q in spec.parent.iterdir()
                                             if q.suffix in (".yaml", ".yml") and q.name != SECRETS_NAME])
    return f"spec file not found{hint}"


def require_spec_file(spec: Path) -> None:
    """A missing spec is invalid input (exit 2), as in `validate`."""
    problem = spec_file_problem(spec)
    if problem:
        raise DiagnosticError(Diagnostic(str(spec), 1, 1, "", "error", problem))


def validate_paths(paths: list[Path], board: str | None, substitutions: dict[str, str]) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) for each spec, as far as the pipeline gets."""
    return validate_counted(paths, board, substitutions)[0]


def validate_counted(paths: list[Path], board: str | None,
                     substitutions: dict[str, str]) -> tuple[list[Diagnostic], int]:
    """validate_paths, and the number of specs the paths stood for (each directory read once)."""
    from clawgen.build import BuildOptions, load_and_plan

    expanded = {p: _expand(p) for p in paths}
    specs = [q for p in paths for q in expanded[p]]
    out: list[Diagnostic] = nothing_to_validate(paths, expanded)
    for p in specs:
        problem = spec_file_problem(p)
        if problem:
            out.append(Diagnostic(str(p), 1, 1, "", "error", problem))
            continue
        try:
            out.extend(load_and_plan(p, BuildOptions(board=board, substitutions=substitutions)).warnings)
        except DiagnosticError as e:
            out.extend(e.diagnostics)
        except UsageError as e:
            out.append(Diagnostic(str(p), 1, 1, "", "error", str(e)))
    return out, len(specs)


def register(cli: click.Group) -> None:
    from clawgen.guard import PathArg, run_guarded

    @cli.command()
    @click.argument("paths", nargs=-1, required=True, type=PathArg())
    @click.option("--board", help="Validate for this board instead of the spec's.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
    @_subst_option
    def validate(paths: tuple[Path, ...], board: str | None, fmt: str,
                 substitutions: tuple[tuple[str, str], ...]) -> None:
        """Check specs against the schema and the semantic rules (exit 0 valid, 2 invalid)."""

        def body() -> None:
            check_board_option(board)  # an unknown --board: exit 2 with the list of boards
            diags, n = validate_counted(list(paths), board, dict(substitutions))
            errors = [d for d in diags if d.severity == "error"]
            if fmt == "json":
                click.echo(format_diagnostics(diags, "json"))
            elif diags:
                click.echo(format_diagnostics(diags, fmt), err=fmt == "text")
            if fmt == "text":
                if n == 0:
                    click.echo("nothing was validated (no agent spec among the paths given)", err=True)
                elif errors:
                    click.echo(f"{len(errors)} error(s) in {n} spec(s)", err=True)
                else:
                    click.echo(f"{n} spec(s) valid" + (f", {len(diags)} warning(s)" if diags else ""), err=True)
            if errors:
                sys.exit(EXIT_INVALID)

        run_guarded(body, fmt=fmt)

    @cli.command()
    @click.argument("spec", type=PathArg())
    @click.option("--board", help="Resolve for this board instead of the spec's.")
    @_subst_option
    def config(spec: Path, board: str | None, substitutions: tuple[tuple[str, str], ...]) -> None:
        """Print the fully resolved spec (includes, substitutions, defaults) with secrets masked."""

        def body() -> None:
            import yaml

            from clawgen.build import BuildOptions, load_and_plan
            from clawgen.loader import Secret

            class SpecDumper(yaml.SafeDumper):
                """Secrets print as their `!secret NAME` tag, so the output is a loadable spec."""

                def choose_scalar_style(self) -> str:
                    # PyYAML quotes every explicitly tagged scalar; a secret's name is a plain word.
                    if self.event.tag == "!secret" and re.fullmatch(r"[A-Za-z0-9_.-]+", self.event.value):
                        return ""
                    return super().choose_scalar_style()

            SpecDumper.add_representer(Secret, lambda d, s: d.represent_scalar("!secret", s.name, style=""))

            def unset_dropped(value: object) -> object:
                """None means "not set" (no key, endpoint's temperature): leave the key out, as a spec would."""
                if isinstance(value, dict):
                    return {k: unset_dropped(v) for k, v in value.items() if v is not None}
                if isinstance(value, list):
                    return [unset_dropped(v) for v in value]
                return value

            check_board_option(board)
            require_spec_file(spec)
            planned = load_and_plan(spec, BuildOptions(board=board, substitutions=dict(substitutions)))
            _echo_warnings(planned.warnings)
            from clawgen.spec import to_spec

            click.echo(f"# Resolved spec for board {planned.plan.board.name} (secrets masked)")
            click.echo(yaml.dump(unset_dropped(to_spec(planned.resolved.spec)), Dumper=SpecDumper, sort_keys=False,
                                 allow_unicode=True), nl=False)

        run_guarded(body)

    @cli.command()
    def schema() -> None:
        """Print the agent spec's JSON Schema (for editors and CI)."""
        from clawgen.schema import agent_schema

        click.echo(json.dumps(agent_schema(), indent=2))

    @cli.command()
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
    def boards(fmt: str) -> None:
        """List the boards clawgen can build for."""
        from clawgen.boards import all_boards, format_size

        bs = all_boards()
        if fmt == "json":
            click.echo(json.dumps([b.data for b in bs], indent=2))
            return
        # heap: the GC heap at boot -> what it can grow to with Wi-Fi and one TLS connection left
        # their memory (clawgen/heapplan.py), without PSRAM.
        click.echo(f"{'board':<9} {'chip':<8} {'arch':<9} {'MicroPython':<11} {'flash':<13} {'psram':<6} "
                   f"{'heap':>11}  title")
        for b in bs:
            flash = "/".join(format_size(s).removesuffix("MB") for s in b.flash_sizes) + " MB"
            heap = f"{b.heap['gc_heap'] // 1024}->{b.heap['gc_heap_grown'] // 1024} K"
            click.echo(f"{b.name:<9} {b.chip:<8} {b.mpy_arch:<9} {b.micropython:<11} {flash:<13} "
                       f"{'yes' if b.psram_supported else 'no':<6} {heap:>11}  {b.title}")

    @cli.command()
    @click.argument("spec", type=PathArg())
    @click.option("--board", help="Board to build for (default: the spec's board).")
    @click.option("--out", "out_dir", type=PathArg(),
                  help="Output directory (default generated/<name>/<board>).")
    @_subst_option
    @click.option("--base-firmware", type=PathArg(),
                  help="Stock MicroPython .bin to merge into a flashable firmware.bin.")
    @click.option("--micropython", "micropython_dir", type=PathArg(),
                  help="MicroPython source tree: run the tailored full build (needs ESP-IDF).")
    @click.option("--nvs-key", type=PathArg(), help="Encrypt the NVS secrets with this key file.")
    @click.option("--no-images", is_flag=True, help="Only the app bundle, no filesystem/NVS images.")
    @click.option("--devices", type=PathArg(),
                  help="Devices file (docs/fleets.md): one shared image, and devices/NAME/nvs.bin per device.")
    @click.option("--force", is_flag=True, help="Rebuild even if nothing changed.")
    @click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors.")
    def build(spec: Path, board: str | None, out_dir: Path | None, substitutions: tuple[tuple[str, str], ...],
              base_firmware: Path | None, micropython_dir: Path | None, nvs_key: Path | None, no_images: bool,
              devices: Path | None, force: bool, quiet: bool) -> None:
        """Build the app bundle (and images) for SPEC."""

        def body() -> None:
            from clawgen.build import BuildOptions, build_spec

            check_board_option(board)
            require_spec_file(spec)
            result = build_spec(spec, BuildOptions(
                board=board, out_dir=out_dir, substitutions=dict(substitutions), base_firmware=base_firmware,
                micropython_dir=micropython_dir, nvs_key=nvs_key, images=not no_images, force=force,
                devices=devices))
            _echo_warnings(result.warnings)
            if quiet:
                return
            if result.up_to_date:
                click.echo(f"{result.out_dir}: up to date ({result.seconds * 1000:.0f} ms)")
                return
            click.echo(result.report)
            click.echo(f"built {result.info['name']} for {result.info['board']} in {result.out_dir} "
                       f"({result.seconds:.2f} s)")

        run_guarded(body)
