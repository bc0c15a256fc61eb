"""Diagnostics: the one way every stage reports a problem in user input.

A diagnostic carries file, line and column (1-based), the path inside the spec
(``model.fallbacks[1].base_url``), a severity and a message. Stages raise
``DiagnosticError`` with a list of them; the CLI prints them in the chosen format
and exits 2. Nothing user-caused is ever reported as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, field
from pathlib import Path

from clawgen.records import record

ERROR = "error"
WARNING = "warning"

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_INTERNAL = 1  # usage or internal error
EXIT_INVALID = 2  # invalid input (spec, SVD, image, ...)


@record
class Mark:
    """A position in a source file (1-based line and column)."""

    file: str
    line: int = 1
    column: int = 1


@record
class Diagnostic:
    file: str
    line: int
    column: int
    path: str
    severity: str
    message: str

    @classmethod
    def at(cls, mark: Mark | None, path: str, message: str, severity: str = ERROR,
           file: str = "<input>") -> Diagnostic:
        if mark is None:
            mark = Mark(file)
        return cls(mark.file, mark.line, mark.column, path, severity, message)

    def text(self) -> str:
        where = f" at {self.path}:" if self.path else ""
        # One line per problem, whatever a parser's message holds; what the input put in it (a
        # vendor SVD's names hold C1 controls such as CSI, a file name a line break) reaches the
        # terminal only as printable text (terminal_safe).
        message = " ".join(self.message.split("\n"))
        return terminal_safe(f"{self.file}:{self.line}:{self.column}: {self.severity}:{where} {message}")

    def github(self) -> str:
        kind = "error" if self.severity == ERROR else "warning"
        # GitHub workflow commands need %, CR and LF escaped in the message.
        msg = (f"at {self.path}: " if self.path else "") + self.message
        msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        # property values also escape ':' and ','
        file = (self.file.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
                .replace(":", "%3A").replace(",", "%2C"))
        return f"::{kind} file={file},line={self.line},col={self.column}::{msg}"


class DiagnosticError(Exception):
    """Raised by a stage when the input is invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.text() for d in self.diagnostics))


class UsageError(Exception):
    """A problem with how a command was called or with the environment (exit 1)."""


class InputError(Exception):
    """Invalid input that has no position in a file, such as an --out path that may not be
    replaced (exit 2, like a DiagnosticError)."""


@record(frozen=False)
class Report:
    """Collects diagnostics across stages."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, d: Diagnostic) -> None:
        if d not in self.diagnostics:
            self.diagnostics.append(d)

    def extend(self, ds: Iterable[Diagnostic]) -> None:
        for d in ds:
            self.add(d)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == WARNING]


def in_file_order(diags: Iterable[Diagnostic], main_file: str) -> list[Diagnostic]:
    """``diags`` in the order a reader goes through them: those of ``main_file`` first, then those of
    other files (an included file, a secrets.yaml), each file's by line and column."""
    return sorted(diags, key=lambda d: (d.file != main_file, d.file, d.line, d.column))


def format_diagnostics(diags: Sequence[Diagnostic], fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps([asdict(d) for d in diags], indent=2)
    if fmt == "github":
        return "\n".join(d.github() for d in diags)
    return "\n".join(d.text() for d in diags)


def terminal_safe(text: str, keep: str = "\t") -> str:
    """``text`` with the characters that are not printable (C0 controls but ``keep``, DEL, C1: an
    escape sequence's start, line and paragraph separators) as "?": for the user's terminal, of
    text that quotes input clawgen did not write."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else "?" for c in text)


def peer_text(data: bytes | str, limit: int = 200) -> str:
    """What a device or server said (or a value of the user's quoted back: a host, a chip name),
    for a message on the user's terminal: decoded (bad UTF-8 replaced), stripped, cut at ``limit``
    characters, control characters and escape sequences shown as "?" (a peer must not drive the
    terminal)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if len(text) > limit:
        text = text[:limit] + "..."
    return terminal_safe(text, keep="")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close match exists, else ''."""
    import difflib  # (only on the error path)

    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


def did_you_mean_file(name: str, choices: Iterable[str]) -> str:
    """did_you_mean for file names, compared without the extension they all share."""
    import difflib

    stems = {Path(c).stem: c for c in choices}
    matches = difflib.get_close_matches(Path(name).stem, list(stems), n=1, cutoff=0.6)
    return f' (did you mean "{stems[matches[0]]}"?)' if matches else ""
