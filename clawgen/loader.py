"""Load stage: YAML spec -> plain data with the position of every node.

Supports ``!secret NAME`` (from ``secrets.yaml`` beside the spec), ``!include FILE``
(relative to the including file) and ``${NAME}`` substitutions from a top-level
``substitutions:`` block, overridable from the command line. Guards against alias
bombs and absurd nesting before anything is expanded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark

MAX_DEPTH = 32  # nesting levels of collections
MAX_NODES = 50_000  # nodes after alias expansion
MAX_FILE_BYTES = 1 << 20
MAX_INCLUDE_DEPTH = 8
SECRETS_FILE = "secrets.yaml"

PathT = tuple[str | int, ...]
_SUBST_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{([^}]*)\}?")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Secret:
    """A secret value from secrets.yaml. Prints masked; ``.value`` holds the real thing."""

    __slots__ = ("name", "source", "value")

    def __init__(self, name: str, value: str, source: str):
        self.name = name
        self.value = value
        self.source = source

    def __repr__(self) -> str:
        return f"<secret {self.name}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.name, self.value) == (other.name, other.value)

    def __hash__(self) -> int:
        return hash(("secret", self.name))


@dataclass
class Document:
    """A loaded spec: plain data plus the mark of every node, keyed by its path."""

    path: Path
    data: Any
    marks: dict[PathT, Mark] = field(default_factory=dict)
    key_marks: dict[PathT, Mark] = field(default_factory=dict)  # where a mapping key itself is
    secrets: dict[PathT, Secret] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every file read (spec, includes, secrets.yaml)
    warnings: list[Diagnostic] = field(default_factory=list)

    def mark(self, path: PathT, key: bool = False) -> Mark:
        """The nearest known position for ``path`` (falls back to its parents)."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        if key and p in table:
            return table[p]
        while p:
            if p in self.marks:
                return self.marks[p]
            p = p[:-1]
        return self.marks.get((), Mark(str(self.path)))

    def position(self) -> Callable[[PathT], Mark | None]:
        return lambda p: self.mark(p)


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Include:
    def __init__(self, target: str):
        self.target = target


class _SecretRef:
    def __init__(self, name: str):
        self.name = name


def _mark(file: str, m: yaml.Mark | None) -> Mark:
    if m is None:
        return Mark(file)
    return Mark(file, m.line + 1, m.column + 1)


def _err(file: str, m: yaml.Mark | None, msg: str, path: PathT = ()) -> DiagnosticError:
    return DiagnosticError(Diagnostic.at(_mark(file, m), format_path(path), msg))


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a regular file of at most ``limit`` bytes (never /dev/zero, a FIFO or a huge file)."""
    import stat

    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(str(path))
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OverflowError(f"larger than {limit} bytes")
    return data


def _codepoint(ch: int | str | bytes) -> int:
    if isinstance(ch, int):
        return ch
    return ord(ch) if ch else 0


def _line_col(raw: bytes | str, off: int) -> tuple[int, int]:
    nl = b"\n" if isinstance(raw, bytes) else "\n"
    return raw.count(nl, 0, off) + 1, off - (raw.rfind(nl, 0, off) + 1) + 1  # type: ignore[arg-type]


def _read_text(path: Path, display: str, including: tuple[Mark, PathT] | None = None) -> str:
    where = including[0] if including else Mark(display)
    ipath = format_path(including[1]) if including else ""
    try:
        raw = read_bounded(path)
    except FileNotFoundError:
        hint = ""
        if including and path.parent.is_dir():
            from clawgen.diagnostics import did_you_mean_file
            hint = did_you_mean_file(path.name, [p.name for p in path.parent.iterdir()
                                                 if p.suffix in (".yaml", ".yml")])
        raise DiagnosticError(Diagnostic.at(where, ipath, f"file not found: {display}{hint}")) from None
    except IsADirectoryError:
        raise DiagnosticError(Diagnostic.at(where, ipath, f"{display} is a directory, not a YAML file")) from None
    except ValueError:
        raise DiagnosticError(Diagnostic.at(where, ipath, f"{display} is not a regular file")) from None
    except OverflowError:
        raise DiagnosticError(Diagnostic.at(where, ipath, f"{display} is larger than {MAX_FILE_BYTES} bytes; "
                                            "a spec file is never that big")) from None
    except OSError as e:
        raise DiagnosticError(Diagnostic.at(where, ipath, f"cannot read {display}: {e.strerror}")) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DiagnosticError(Diagnostic.at(Mark(display), "", "the file is UTF-16 text; save it as UTF-8"))
    if b"\x00" in raw:
        line, col = _line_col(raw, raw.index(b"\x00"))
        raise DiagnosticError(Diagnostic.at(Mark(display, line, col), "",
                                            "binary data (a NUL byte): this is not a YAML text file"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col = _line_col(raw, e.start)
        raise DiagnosticError(Diagnostic.at(Mark(display, line, col), "",
                                            "the file is not valid UTF-8; save it as UTF-8 text")) from None


# libyaml's parser when PyYAML was built with it: same events and marks, ~20x faster.
_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _syntax_hint(problem: str) -> str:
    """A fix for the YAML mistakes people make most, in the words of the spec, not the parser."""
    if "'\\t'" in problem:
        return "; YAML does not allow tabs for indentation: indent with spaces"
    if "expected <block end>" in problem or "mapping values are not allowed" in problem:
        return ("; check the indentation of this line against the lines above it "
                "(and quote a value that contains ': ')")
    if "could not find expected ':'" in problem:
        return "; a key needs a ':' after it (or a line is indented too much)"
    return ""


class _Composer:
    """Turns one YAML file into a node tree after checking nesting on the event stream."""

    def __init__(self, text: str, display: str):
        self.text = text
        self.display = display

    def compose(self) -> yaml.Node | None:
        try:
            return self._compose(_FastLoader)
        except DiagnosticError:
            if _FastLoader is yaml.SafeLoader:
                raise
        # libyaml said no: ask the pure-Python parser, whose messages name more (the alias, the token).
        return self._compose(yaml.SafeLoader)

    def _compose(self, loader: type) -> yaml.Node | None:
        depth = 0
        doc_starts: list[yaml.Mark] = []
        try:
            for ev in yaml.parse(self.text, Loader=loader):
                if isinstance(ev, yaml.DocumentStartEvent):
                    doc_starts.append(ev.start_mark)
                elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise _err(self.display, ev.start_mark,
                                   f"nesting deeper than {MAX_DEPTH} levels; a spec never needs this, "
                                   "flatten the structure")
                elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                    depth -= 1
            nodes = list(yaml.compose_all(self.text, Loader=loader))
        except yaml.MarkedYAMLError as e:
            m = e.problem_mark or e.context_mark
            problem = (e.problem or e.context or "invalid YAML").strip()
            raise _err(self.display, m, f"invalid YAML: {problem}{_syntax_hint(problem)}") from None
        except yaml.reader.ReaderError as e:
            line, col = _line_col(self.text, e.position)
            raise DiagnosticError(Diagnostic.at(
                Mark(self.display, line, col), "",
                f"invalid YAML: unacceptable character #x{_codepoint(e.character):04x}: "
                "special characters are not allowed")) from None
        except yaml.YAMLError as e:
            raise _err(self.display, None, f"invalid YAML: {e}") from None
        except RecursionError:
            raise _err(self.display, None, "nesting too deep to read") from None
        if len(nodes) > 1:
            raise _err(self.display, doc_starts[1] if len(doc_starts) > 1 else nodes[1].start_mark,
                       "the file holds several YAML documents ('---'); a spec is one document")
        return nodes[0] if nodes else None


class SpecLoader:
    def __init__(self, root: Path, overrides: Mapping[str, str] | None = None,
                 display_root: str | None = None, placeholder_secrets: bool = False):
        self.root = root
        # The simulator needs no real Wi-Fi password: a missing secret becomes "" with a warning.
        self.placeholder_secrets = placeholder_secrets
        self.base_dir = root.parent
        self.display_root = display_root or str(root)
        self.overrides = dict(overrides or {})
        self.doc = Document(path=root, data=None)
        self.node_count = 0
        self._secrets_cache: dict[str, Any] | None = None
        self._subst: dict[str, str] = {}
        self._declared: set[str] = set()  # names in the spec's substitutions: block
        self._used: set[str] = set()
        self._texts: dict[str, str] = {}  # file display name -> text, to see explicit tags
        self._including: list[Path] = [root.resolve()]

    # -- public -----------------------------------------------------------
    def load(self) -> Document:
        text = _read_text(self.root, self.display_root)
        self._texts[self.display_root] = text
        self.doc.files.append(self.root)
        node = _Composer(text, self.display_root).compose()
        self.doc.marks[()] = Mark(self.display_root)
        if node is None:
            self.doc.data = None
            return self.doc
        self._collect_substitutions(node)
        self.doc.data = self._convert(node, (), self.display_root, self.root.parent, 0)
        self.doc.substitutions = dict(self._subst)
        self._warn_unused_overrides()
        return self.doc

    def _warn_unused_overrides(self) -> None:
        """A -s name the spec neither declares nor uses is most likely a typo of one it does."""
        from clawgen.diagnostics import did_you_mean
        for name in self.overrides:
            if name not in self._declared and name not in self._used:
                self.doc.warnings.append(Diagnostic.at(
                    Mark(self.display_root), "", f"-s {name}: the spec never uses ${{{name}}}; "
                    "the override has no effect" + did_you_mean(name, self._declared | self._used),
                    severity="warning"))

    # -- substitutions ----------------------------------------------------
    def _collect_substitutions(self, node: yaml.Node) -> None:
        subst: dict[str, str] = {}
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == "substitutions":
                    if not isinstance(v, yaml.MappingNode):
                        raise _err(self.display_root, v.start_mark,
                                   "substitutions must be a mapping of NAME: value", ("substitutions",))
                    for sk, sv in v.value:
                        if not isinstance(sk, yaml.ScalarNode) or not _NAME_RE.match(str(sk.value)):
                            raise _err(self.display_root, sk.start_mark,
                                       "a substitution name must be an identifier like WIFI_SSID",
                                       ("substitutions",))
                        if not isinstance(sv, yaml.ScalarNode) or sv.tag.startswith("!"):
                            raise _err(self.display_root, sv.start_mark,
                                       "a substitution value must be a plain scalar",
                                       ("substitutions", sk.value))
                        subst[sk.value] = sv.value
        self._declared = set(subst)
        for name, value in self.overrides.items():
            subst[name] = value
        self._subst = subst

    def _substitute(self, text: str, path: PathT, file: str, m: yaml.Mark) -> str:
        if "$" not in text:
            return text

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                bad = match.group(2)
                raise _err(file, m, f"bad substitution '${{{bad}': use ${{NAME}} with NAME an identifier",
                           path)
            if name not in self._subst:
                from clawgen.diagnostics import did_you_mean
                raise _err(file, m, f"undefined substitution ${{{name}}}: define it under "
                           f"'substitutions:' or pass -s {name} VALUE"
                           + did_you_mean(name, self._subst), path)
            self._used.add(name)
            return str(self._subst[name])

        # "$${X}" escapes to a literal "${X}".
        parts = text.split("$$")
        return "$".join(_SUBST_RE.sub(repl, p) for p in parts)

    # -- secrets ----------------------------------------------------------
    def _secrets(self, file: str, m: yaml.Mark, path: PathT, name: str) -> dict[str, Any]:
        if self._secrets_cache is None:
            sp = self.base_dir / SECRETS_FILE
            if not sp.is_file() and self.placeholder_secrets:
                self._secrets_cache = {}
                return self._secrets_cache
            if not sp.is_file():
                raise _err(file, m, f"!secret {name}: {sp} does not exist; create it beside the spec "
                           f"with a line '{name}: VALUE' (and keep it out of version control)", path)
            sub = SpecLoader(sp, display_root=str(sp))
            sub_doc = sub.load()
            self.doc.files.append(sp)
            if not isinstance(sub_doc.data, dict):
                raise _err(str(sp), None, "secrets.yaml must be a mapping of name: value")
            self._secrets_cache = sub_doc.data
        return self._secrets_cache

    # -- conversion -------------------------------------------------------
    def _count(self, file: str, node: yaml.Node) -> None:
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise _err(file, node.start_mark,
                       f"the spec expands to more than {MAX_NODES} nodes (an alias bomb?): "
                       "refusing to expand it")

    def _convert(self, node: yaml.Node, path: PathT, file: str, base: Path, inc_depth: int) -> Any:
        self._count(file, node)
        if len(path) > MAX_DEPTH:
            raise _err(file, node.start_mark, f"nesting deeper than {MAX_DEPTH} levels", path)
        self.doc.marks[path] = _mark(file, node.start_mark)
        tag = node.tag or ""
        if tag == "!secret":
            return self._convert_secret(node, path, file)
        if tag == "!include":
            return self._convert_include(node, path, file, base, inc_depth)
        shown = "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag
        if not tag.startswith(_CORE) or tag[len(_CORE):] not in _CORE_TAGS:
            raise _err(file, node.start_mark,
                       f"unknown tag {shown}: clawgen understands !secret and !include", path)
        if not isinstance(node, yaml.ScalarNode) and tag[len(_CORE):] not in ("map", "seq"):
            raise _err(file, node.start_mark, f"{shown} cannot tag a list or mapping", path)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise _err(file, knode.start_mark, "YAML merge keys ('<<') are not supported; "
                               "write the keys out or use !include", path)
                if not isinstance(knode, yaml.ScalarNode):
                    raise _err(file, knode.start_mark, "a mapping key must be a plain name, "
                               "not a list or mapping", path)
                key = str(knode.value)
                if key in out:
                    raise _err(file, knode.start_mark, f"duplicate key '{key}'", (*path, key))
                cpath = (*path, key)
                self.doc.key_marks[cpath] = _mark(file, knode.start_mark)
                out[key] = self._convert(vnode, cpath, file, base, inc_depth)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(v, (*path, i), file, base, inc_depth) for i, v in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode):
            raise _err(file, node.start_mark, f"{shown} must tag a single value", path)
        return self._scalar(node, path, file)

    def _explicit_tag(self, node: yaml.ScalarNode, file: str) -> str | None:
        """The core tag written in the file (``!!str 100``), if any."""
        text = self._texts.get(file, "")
        i = node.start_mark.index
        if 0 <= i < len(text) and text.startswith("!!", i):
            return node.tag[len(_CORE):]
        return None

    def _scalar(self, node: yaml.ScalarNode, path: PathT, file: str) -> Any:
        value: str = node.value
        explicit = self._explicit_tag(node, file)
        if path and path[0] != "substitutions" and "$" in value:
            value = self._substitute(value, path, file, node.start_mark)
            if not node.style and explicit is None and value != node.value:
                # a plain scalar that was substituted is typed by its new text ("${PORT}" -> 2323)
                return _resolve_plain(value, node, file, path)
        if explicit is not None:
            return _explicit(explicit, value, node, file, path)
        if node.style:  # quoted / block: always a string (libyaml says '' for plain, PyYAML None)
            return value
        return _resolve_plain(value, node, file, path)

    def _convert_secret(self, node: yaml.Node, path: PathT, file: str) -> Secret:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise _err(file, node.start_mark, "!secret takes the name of a key in secrets.yaml, "
                       "e.g. api_key: !secret openai_api_key", path)
        name = str(node.value).strip()
        secrets = self._secrets(file, node.start_mark, path, name)
        sp = self.base_dir / SECRETS_FILE
        if name not in secrets and self.placeholder_secrets:
            self.doc.warnings.append(Diagnostic.at(_mark(file, node.start_mark), format_path(path),
                                                   f"secret '{name}' not found in {sp}: using an empty "
                                                   "value in the simulator", severity="warning"))
            s = Secret(name, "", str(sp))
            self.doc.secrets[path] = s
            return s
        if name not in secrets:
            from clawgen.diagnostics import did_you_mean
            raise _err(file, node.start_mark, f"secret '{name}' is not defined in {sp}"
                       + did_you_mean(name, secrets), path)
        value = secrets[name]
        if isinstance(value, (dict, list)) or value is None:
            raise _err(file, node.start_mark, f"secret '{name}' in {sp} must be a single value", path)
        s = Secret(name, str(value), str(sp))
        self.doc.secrets[path] = s
        return s

    def _convert_include(self, node: yaml.Node, path: PathT, file: str, base: Path, inc_depth: int) -> Any:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise _err(file, node.start_mark, "!include takes a file name, e.g. tools: !include tools.yaml",
                       path)
        if inc_depth >= MAX_INCLUDE_DEPTH:
            raise _err(file, node.start_mark, f"includes nested more than {MAX_INCLUDE_DEPTH} deep "
                       "(an include cycle?)", path)
        rel = self._substitute(str(node.value).strip(), path, file, node.start_mark)
        target = (base / rel).resolve()
        display = str(Path(file).parent / rel) if not Path(rel).is_absolute() else rel
        if target in self._including:
            chain = " -> ".join(p.name for p in [*self._including, target])
            current = self._including[-1]
            what = (f"{target.name} includes itself" if target == current
                    else f"{current.name} includes {target.name} again")
            raise _err(file, node.start_mark, f"include cycle: {what} ({chain})", path)
        text = _read_text(target, display, (_mark(file, node.start_mark), path))
        self._texts[display] = text
        self.doc.files.append(target)
        inner = _Composer(text, display).compose()
        if inner is None:
            return None
        self._including.append(target)
        try:
            return self._convert(inner, path, display, target.parent, inc_depth + 1)
        finally:
            self._including.pop()


_BOOL_TRUE = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"}
_BOOL_FALSE = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}
_NULL = {"", "~", "null", "Null", "NULL"}
_INT_RE = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_HEX_RE = re.compile(r"^[-+]?0x[0-9a-fA-F_]+$")
_OCT_RE = re.compile(r"^0o[0-7_]+$")
_BIN_RE = re.compile(r"^0b[01_]+$")
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")


_CORE = "tag:yaml.org,2002:"
_CORE_TAGS = ("str", "int", "float", "bool", "null", "map", "seq")


def _explicit(tag: str, text: str, node: yaml.ScalarNode, file: str, path: PathT) -> Any:
    """A scalar with an explicit core tag: !!str keeps the text, the others must parse as said."""
    if tag == "str":
        return text
    value = _resolve_plain(text, node, file, path)
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "bool": lambda v: isinstance(v, bool), "null": lambda v: v is None}
    if tag not in ok or not ok[tag](value):
        raise _err(file, node.start_mark, f"'{text}' is not a valid !!{tag}", path)
    return float(value) if tag == "float" else value


def _resolve_plain(text: str, node: yaml.ScalarNode, file: str, path: PathT = ()) -> Any:
    """Type a plain scalar: YAML 1.2 numbers (no sexagesimal), YAML 1.1 yes/no/on/off booleans."""
    if text in _NULL:
        return None
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    try:
        if _INT_RE.match(text):
            return int(text.replace("_", ""))
        if _HEX_RE.match(text):
            return int(text.replace("_", ""), 16)
        if _OCT_RE.match(text):
            return int(text[2:].replace("_", ""), 8)
        if _BIN_RE.match(text):
            return int(text[2:].replace("_", ""), 2)
    except ValueError:
        # Python refuses to parse int strings of more than 4300 digits
        raise _err(file, node.start_mark, "number too large", path) from None
    if _FLOAT_RE.match(text) and any(c.isdigit() for c in text):
        return float(text.replace("_", ""))
    if text in (".inf", ".Inf", ".INF", "+.inf", "-.inf", ".nan", ".NaN", ".NAN"):
        return float(text.replace(".", "", 1)) if "nan" not in text.lower() else float("nan")
    return text


def load_spec(path: str | Path, overrides: Mapping[str, str] | None = None,
              placeholder_secrets: bool = False) -> Document:
    """Load a spec file. Raises DiagnosticError for anything wrong with it."""
    p = Path(path)
    return SpecLoader(p, overrides, display_root=str(path), placeholder_secrets=placeholder_secrets).load()
