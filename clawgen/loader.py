"""Load stage: YAML spec -> plain data with the position of every node.

Supports ``!secret NAME`` (from ``secrets.yaml`` beside the spec), ``!include FILE``
(relative to the including file, optionally ``!include {file: F, vars: {NAME: value}}``),
``${NAME}`` substitutions from ``substitutions:`` blocks (overridable from the command line)
and ``packages:``, partial specs merged into the spec before validation (docs/spec.md,
"packages"). Guards against alias bombs and absurd nesting before anything is expanded.

Order of work: read the spec and, depth first, every package it names (cycles refused at the
``packages:`` entry); collect the substitutions of all of them (a file's own win over its
packages', later packages over earlier ones, ``-s`` over all) and resolve them; convert each
file to data with the mark of every node; merge the packages into the spec, carrying each
node's mark from the file it came from.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from clawgen.diagnostics import Diagnostic, DiagnosticError, Mark
from clawgen.files import read_bounded
from clawgen.records import record

MAX_DEPTH = 32  # nesting levels of collections
MAX_NODES = 50_000  # nodes after alias expansion
# Characters of text (keys and values) after alias expansion and substitution: a node count
# alone lets 8,000 aliases of one 900 KB string through (7 GB). Four spec files' worth.
MAX_TEXT_CHARS = 4 << 20
MAX_FILE_BYTES = 1 << 20
MAX_INCLUDE_DEPTH = 8  # also the deepest nesting of packages
MAX_PACKAGES = 64  # package files read for one spec (a file named twice counts twice)
SECRETS_FILE = "secrets.yaml"
# Top-level keys the loader itself consumes: they are in the schema (for editors) but not in the
# typed spec. `packages` is removed from the data once merged; `substitutions` stays (validated).
LOADER_KEYS = ("substitutions", "packages")

PathT = tuple[str | int, ...]
_SUBST_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{([^}]*)\}?")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Secret:
    """A secret value from secrets.yaml. Prints masked; ``.value`` holds the real thing."""

    __slots__ = ("mark", "name", "placeholder", "source", "value")

    def __init__(self, name: str, value: str, source: str, mark: Mark | None = None,
                 placeholder: bool = False):
        self.name = name
        self.value = value
        self.source = source
        self.mark = mark  # where the value is written in secrets.yaml (diagnostics about the value)
        self.placeholder = placeholder  # the simulator's stand-in for a secret that is not defined

    def __repr__(self) -> str:
        return f"<secret {self.name}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.name, self.value) == (other.name, other.value)

    def __hash__(self) -> int:
        return hash(("secret", self.name))


@record(frozen=False)
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
        raw = read_bounded(path, MAX_FILE_BYTES)
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


class _Scope:
    """The vars of one ``!include {file, vars}`` (or package with vars): they apply to the
    included file and to what it includes, over the substitutions and the outer vars."""

    def __init__(self, values: dict[str, str], marks: dict[str, Mark], parent: _Scope | None,
                 path: PathT, file: str):
        self.values = values  # name -> value as written in the including file
        self.marks = marks  # name -> where the value is written
        self.parent = parent  # the scope of the including file (a var's value is expanded there)
        self.path = path  # the spec path of the include (for messages)
        self.file = file  # the included file's display name
        self.resolved: dict[str, str] = {}


@record(frozen=False)
class _Unit:
    """One file of the package tree: the spec itself or a package, with the packages it names."""

    node: yaml.Node | None
    display: str
    base: Path  # directory of the file: paths in it are relative to this
    scope: _Scope | None
    chain: tuple[Path, ...]  # resolved paths from the spec down to this file (cycle detection)
    packages: list[_Unit] = field(default_factory=list)


@record(frozen=False)
class _Tree:
    """Converted data of one file (or of a merge) with the marks of its nodes, by path."""

    data: Any
    marks: dict[PathT, Mark] = field(default_factory=dict)
    key_marks: dict[PathT, Mark] = field(default_factory=dict)
    secrets: dict[PathT, Secret] = field(default_factory=dict)


def _named(item: Any) -> str | None:
    """The name of a list item that has one (a tool): items with the same name are merged."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return str(item["name"])
    return None


def _scalar_key(item: Any) -> tuple[type, Any] | None:
    """Equal scalars in two merged lists are kept once (a capability named by two packages)."""
    if isinstance(item, (dict, list)):
        return None
    try:
        hash(item)
    except TypeError:
        return None
    return (type(item), item)


def _copy(value: Any, src: _Tree, sp: PathT, out: _Tree, op: PathT) -> Any:
    """``value`` (at ``sp`` in ``src``) placed at ``op`` in ``out``, with its marks."""
    if sp in src.marks:
        out.marks[op] = src.marks[sp]
    if isinstance(value, dict):
        res: dict[str, Any] = {}
        for k, v in value.items():
            if (*sp, k) in src.key_marks:
                out.key_marks[(*op, k)] = src.key_marks[(*sp, k)]
            res[k] = _copy(v, src, (*sp, k), out, (*op, k))
        return res
    if isinstance(value, list):
        return [_copy(v, src, (*sp, i), out, (*op, i)) for i, v in enumerate(value)]
    if isinstance(value, Secret) and sp in src.secrets:
        out.secrets[op] = src.secrets[sp]
    return value


def _drop(tree: _Tree, path: PathT, value: Any) -> None:
    """Forget the marks of ``value`` (at ``path`` in ``tree``): a later file replaces it."""
    tree.marks.pop(path, None)
    tree.secrets.pop(path, None)
    if isinstance(value, dict):
        for k, v in value.items():
            tree.key_marks.pop((*path, k), None)
            _drop(tree, (*path, k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _drop(tree, (*path, i), v)


def _absorb(acc: _Tree, ap: PathT, a: Any, new: _Tree, np: PathT, b: Any) -> Any:
    """``b`` (at ``np`` in the later file ``new``) merged over ``a`` (at ``ap`` in ``acc``), in place:
    the rule of docs/spec.md, "packages". Costs the size of ``b``, not of ``a``."""
    if isinstance(a, dict) and isinstance(b, dict):
        if np in new.marks:
            acc.marks[ap] = new.marks[np]
        for k, v in b.items():
            if (*np, k) in new.key_marks:
                acc.key_marks[(*ap, k)] = new.key_marks[(*np, k)]
            if k in a:
                a[k] = _absorb(acc, (*ap, k), a[k], new, (*np, k), v)
            else:
                a[k] = _copy(v, new, (*np, k), acc, (*ap, k))
        return a
    if isinstance(a, list) and isinstance(b, list):
        if np in new.marks:
            acc.marks[ap] = new.marks[np]
        named: dict[str, int] = {}
        for i, v in enumerate(a):
            name = _named(v)
            if name is not None:
                named.setdefault(name, i)
        # Each scalar of `a` absorbs one equal scalar of `b`: a duplicate within one file stays
        # (and is reported by validation where it is written).
        earlier = Counter(k for k in map(_scalar_key, a) if k is not None)
        for j, v in enumerate(b):
            name = _named(v)
            key = _scalar_key(v)
            if name is not None and name in named:
                i = named.pop(name)  # the first item of that name in `b` merges; a second is added
                a[i] = _absorb(acc, (*ap, i), a[i], new, (*np, j), v)
            elif key is not None and earlier[key] > 0:
                earlier[key] -= 1
            else:
                a.append(_copy(v, new, (*np, j), acc, (*ap, len(a))))
        return a
    _drop(acc, ap, a)
    return _copy(b, new, np, acc, ap)


def _merge_into(acc: _Tree, later: _Tree) -> None:
    acc.data = _absorb(acc, (), acc.data, later, (), later.data)


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
        self._subst: dict[str, str] = {}  # name -> value with its own ${...} resolved
        self._subst_raw: dict[str, str] = {}  # name -> value as written (or given with -s)
        self._subst_marks: dict[str, Mark] = {}  # name -> where its value is written
        self._secret_marks: dict[PathT, Mark] = {}
        self.text_chars = 0
        self.raw_scalars = False  # secrets.yaml: every value is text exactly as written
        self.secrets_file = False  # this is secrets.yaml: no !secret (it would read itself) or !include
        self._declared: set[str] = set()  # names in the spec's substitutions: block
        self._used: set[str] = set()
        self._texts: dict[str, str] = {}  # file display name -> text, to see explicit tags
        self._including: list[Path] = [root.resolve()]
        self._subst_scope: dict[str, _Scope | None] = {}  # name -> vars its value may use
        self._scope: _Scope | None = None  # vars of the include being converted
        self._scopes: list[_Scope] = []  # package scopes, resolved once substitutions are known
        self._unit_node: yaml.Node | None = None  # top node of the file being converted
        self._packages_read = 0

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
        top = _Unit(node, self.display_root, self.root.parent, None, (self.root.resolve(),))
        if not self.raw_scalars:
            self._gather(top)
        self._collect_substitutions(top)
        self._finish_substitutions()
        for scope in self._scopes:
            self._resolve_scope(scope)
        tree = self._build(top)
        self.doc.data = tree.data
        self.doc.marks, self.doc.key_marks, self.doc.secrets = tree.marks, tree.key_marks, tree.secrets
        if isinstance(tree.data, dict) and "packages" in tree.data and not self.raw_scalars:
            raise DiagnosticError(Diagnostic.at(
                self.doc.mark(("packages",), key=True), "packages",
                "packages: belongs in the spec file itself or in a package, not in a file read with "
                "!include"))
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
    def _collect_substitutions(self, unit: _Unit) -> None:
        """The substitutions: blocks of the package tree, in the order later-wins applies:
        a file's packages first (in order, each with its own packages before it), then the file."""
        for package in unit.packages:
            self._collect_substitutions(package)
        node, file = unit.node, unit.display
        if not isinstance(node, yaml.MappingNode):
            return
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "substitutions":
                if not isinstance(v, yaml.MappingNode):
                    raise _err(file, v.start_mark,
                               "substitutions must be a mapping of NAME: value", ("substitutions",))
                for sk, sv in v.value:
                    if not isinstance(sk, yaml.ScalarNode) or not _NAME_RE.match(str(sk.value)):
                        raise _err(file, sk.start_mark,
                                   "a substitution name must be an identifier like WIFI_SSID",
                                   ("substitutions",))
                    if not isinstance(sv, yaml.ScalarNode) or sv.tag.startswith("!"):
                        raise _err(file, sv.start_mark,
                                   "a substitution value must be a plain scalar",
                                   ("substitutions", sk.value))
                    self._subst_raw.pop(sk.value, None)  # a later definition also comes later
                    self._subst_raw[sk.value] = sv.value
                    self._subst_marks[sk.value] = _mark(file, sv.start_mark)
                    self._subst_scope[sk.value] = unit.scope
                    self._declared.add(sk.value)

    def _finish_substitutions(self) -> None:
        for name, value in self.overrides.items():
            self._subst_raw[name] = value
            self._subst_marks[name] = Mark(self.display_root)
            self._subst_scope[name] = None
        self._subst = {}
        # A value may use other substitutions (B: "${A}-x"): resolve each one now, so a
        # cycle or an undefined name is reported at the value that has it, used or not.
        for name in self._subst_raw:
            self._resolve_subst(name, [])

    def _resolve_subst(self, name: str, stack: list[tuple[int, str]]) -> str:
        """The value of substitution ``name`` with the substitutions it uses replaced."""
        if name in self._subst:
            return self._subst[name]
        where = self._subst_marks[name]
        what = f"-s {name}" if name in self.overrides else f"substitution {name}"
        path: PathT = () if name in self.overrides else ("substitutions", name)
        key = (0, name)
        if key in stack:
            chain = " -> ".join(f"${{{n}}}" for _, n in [*stack[stack.index(key):], key])
            raise DiagnosticError(Diagnostic.at(
                where, format_path(path), f"substitution cycle: {chain}; a substitution cannot use itself"
                " (directly or through others)"))
        value = self._expand(self._subst_raw[name], [*stack, key], where, path, f" in the value of {what}",
                             self._subst_scope.get(name))
        self._subst[name] = value
        return value

    def _resolve_var(self, scope: _Scope, name: str, stack: list[tuple[int, str]]) -> str:
        """The value of an include var, expanded in the including file (outer vars, substitutions)."""
        if name in scope.resolved:
            return scope.resolved[name]
        key = (id(scope), name)
        where = scope.marks[name]
        path = (*scope.path, "vars", name)
        if key in stack:
            chain = " -> ".join(f"${{{n}}}" for _, n in [*stack[stack.index(key):], key])
            raise DiagnosticError(Diagnostic.at(
                where, format_path(path), f"substitution cycle: {chain}; a var cannot use itself"
                " (directly or through others)"))
        value = self._expand(scope.values[name], [*stack, key], where, path,
                             f" in the value of var {name} of {scope.file}", scope.parent)
        scope.resolved[name] = value
        return value

    def _resolve_scope(self, scope: _Scope) -> None:
        for name in scope.values:
            self._resolve_var(scope, name, [])

    def _expand(self, text: str, stack: list[tuple[int, str]], where: Mark, path: PathT, context: str = "",
                scope: _Scope | None = None) -> str:
        """``text`` with each ${NAME} replaced by its (resolved) value; "$${X}" is a literal "${X}".
        A var of ``scope`` (or of the scopes around it) wins over a substitution of that name."""
        if "$" not in text:
            return text
        size = [len(text)]

        def too_big() -> DiagnosticError:
            return DiagnosticError(Diagnostic.at(
                where, format_path(path), f"the substitutions{context} expand to more than "
                f"{MAX_TEXT_CHARS} characters: refusing to expand them"))

        def lookup(name: str) -> str:
            s = scope
            while s is not None:
                if name in s.values:
                    return self._resolve_var(s, name, stack)
                s = s.parent
            if name not in self._subst_raw:
                from clawgen.diagnostics import did_you_mean
                known = set(self._subst_raw)
                where_vars = f", in the vars of the !include of {scope.file}" if scope else ""
                s = scope
                while s is not None:
                    known |= set(s.values)
                    s = s.parent
                raise DiagnosticError(Diagnostic.at(
                    where, format_path(path),
                    f"undefined substitution ${{{name}}}{context}: define it under "
                    f"'substitutions:'{where_vars}{',' if where_vars else ''} or pass -s {name} VALUE"
                    + did_you_mean(name, known)))
            self._used.add(name)
            return self._resolve_subst(name, stack)

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                bad = match.group(2)
                raise DiagnosticError(Diagnostic.at(
                    where, format_path(path),
                    f"bad substitution '${{{bad}'{context}: use ${{NAME}} with NAME an identifier"))
            value = lookup(name)
            size[0] += len(value)  # counted before the pieces are joined: no giant string is built
            if size[0] > MAX_TEXT_CHARS:
                raise too_big()
            return value

        # Split on "$$" first: a resolved value is final text and is never scanned again.
        return "$".join(_SUBST_RE.sub(repl, p) for p in text.split("$$"))

    def _substitute(self, text: str, path: PathT, file: str, m: yaml.Mark) -> str:
        return self._expand(text, [], _mark(file, m), path, scope=self._scope)

    # -- secrets ----------------------------------------------------------
    def _secrets(self, file: str, m: yaml.Mark, path: PathT, name: str) -> dict[str, Any]:
        if self._secrets_cache is None:
            sp = self.base_dir / SECRETS_FILE
            if not sp.is_file() and self.placeholder_secrets:
                self._secrets_cache = {}
                return self._secrets_cache
            if not sp.is_file():
                if sp.exists():  # a directory, a FIFO, a link to a device
                    raise _err(file, m, f"!secret {name}: {sp} is not a regular file; make it the YAML file "
                               f"of your secrets, with a line '{name}: VALUE'", path)
                raise _err(file, m, f"!secret {name}: {sp} does not exist; create it beside the spec "
                           f"with a line '{name}: VALUE' (and keep it out of version control)", path)
            sub = SpecLoader(sp, display_root=str(sp))
            sub.raw_scalars = True
            sub.secrets_file = True
            sub_doc = sub.load()
            self.doc.files.append(sp)
            if not isinstance(sub_doc.data, dict):
                raise _err(str(sp), None, "secrets.yaml must be a mapping of name: value")
            self._secrets_cache = sub_doc.data
            self._secret_marks = sub_doc.marks
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
        if self.secrets_file and tag in ("!secret", "!include"):
            raise _err(file, node.start_mark, f"{tag} cannot be used in {SECRETS_FILE}: write the value itself "
                       f"({SECRETS_FILE} holds the values that !secret in a spec refers to)", path)
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
            keys: set[str] = set()
            unit_top = not path and node is self._unit_node  # its packages: are read by _gather
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise _err(file, knode.start_mark, "YAML merge keys ('<<') are not supported; "
                               "write the keys out or use !include", path)
                if not isinstance(knode, yaml.ScalarNode):
                    raise _err(file, knode.start_mark, "a mapping key must be a plain name, "
                               "not a list or mapping", path)
                key = str(knode.value)
                self._count_text(file, knode, key)
                if key in keys:
                    raise _err(file, knode.start_mark, f"duplicate key '{key}'", (*path, key))
                keys.add(key)
                if unit_top and key == "packages":
                    continue
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

    def _count_text(self, file: str, node: yaml.Node, text: str) -> None:
        self.text_chars += len(text)
        if self.text_chars > MAX_TEXT_CHARS:
            raise _err(file, node.start_mark,
                       f"the spec expands to more than {MAX_TEXT_CHARS} characters of text (aliases or "
                       "substitutions repeating a long value?): refusing to expand it")

    def _scalar(self, node: yaml.ScalarNode, path: PathT, file: str) -> Any:
        value: str = node.value
        if self.raw_scalars:
            # secrets.yaml: a value is text as written ("0123", "yes", "pa$$word" stay as they are);
            # only a plain empty value or ~ / null means "no value".
            self._count_text(file, node, value)
            return None if not node.style and value in _NULL else value
        explicit = self._explicit_tag(node, file)
        if path and path[0] != "substitutions" and "$" in value:
            value = self._substitute(value, path, file, node.start_mark)
            if not node.style and explicit is None and value != node.value:
                # a plain scalar that was substituted is typed by its new text ("${PORT}" -> 2323)
                self._count_text(file, node, value)
                return _resolve_plain(value, node, file, path)
        self._count_text(file, node, value)
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
            s = Secret(name, "", str(sp), placeholder=True)
            self.doc.secrets[path] = s
            return s
        if name not in secrets:
            from clawgen.diagnostics import did_you_mean
            raise _err(file, node.start_mark, f"secret '{name}' is not defined in {sp}"
                       + did_you_mean(name, secrets), path)
        value = secrets[name]
        own = self._secret_marks.get((name,))
        if isinstance(value, (dict, list)):
            raise _err(file, node.start_mark, f"secret '{name}' in {sp} must be a single value", path)
        if value is None:
            raise DiagnosticError(Diagnostic.at(own, name, f"secret '{name}' has no value: write the value "
                                                f"after '{name}:' (used at {format_path(path)})"))
        s = Secret(name, str(value), str(sp), mark=own)
        self.doc.secrets[path] = s
        return s

    def _include_args(self, node: yaml.Node, path: PathT, file: str,
                      what: str) -> tuple[str, yaml.MappingNode | None]:
        """The file name and the vars node of ``!include FILE`` / ``!include {file: F, vars: {...}}``."""
        usage = (f"{what} takes a file name, e.g. tools: !include tools.yaml, or "
                 "!include {file: tool.yaml, vars: {pin: 4}}")
        if isinstance(node, yaml.ScalarNode):
            if not str(node.value).strip():
                raise _err(file, node.start_mark, usage, path)
            return str(node.value).strip(), None
        if not isinstance(node, yaml.MappingNode):
            raise _err(file, node.start_mark, usage, path)
        target: str | None = None
        vars_node: yaml.MappingNode | None = None
        for k, v in node.value:
            key = str(k.value) if isinstance(k, yaml.ScalarNode) else None
            if key == "file" and isinstance(v, yaml.ScalarNode) and v.tag == _CORE + "str" and str(v.value).strip():
                target = str(v.value).strip()
            elif key == "file":
                raise _err(file, v.start_mark, f"{what}: 'file' is the name of the file to include", path)
            elif key == "vars" and isinstance(v, yaml.MappingNode) and not v.tag.startswith("!"):
                vars_node = v
            elif key == "vars":
                raise _err(file, v.start_mark, f"{what}: 'vars' is a mapping of NAME: value, "
                           "e.g. vars: {pin: 4}", path)
            else:
                from clawgen.diagnostics import did_you_mean
                shown = key if key is not None else "a list or mapping"
                raise _err(file, k.start_mark, f"{what}: unknown key '{shown}'"
                           + (did_you_mean(key, ("file", "vars")) if key else "")
                           + "; the keys are file and vars", path)
        if target is None:
            raise _err(file, node.start_mark, f"{what}: missing 'file', the name of the file to include",
                       path)
        return target, vars_node

    def _new_scope(self, vars_node: yaml.MappingNode | None, path: PathT, file: str,
                   included: str) -> _Scope | None:
        """The scope of an included file: the vars given at its include over the current scope."""
        if vars_node is None:
            return self._scope
        values: dict[str, str] = {}
        marks: dict[str, Mark] = {}
        for k, v in vars_node.value:
            if not isinstance(k, yaml.ScalarNode) or not _NAME_RE.match(str(k.value)):
                raise _err(file, k.start_mark, "a var name must be an identifier like pin", path)
            name = str(k.value)
            if name in values:
                raise _err(file, k.start_mark, f"duplicate var '{name}'", (*path, "vars", name))
            if not isinstance(v, yaml.ScalarNode) or v.tag.startswith("!"):
                raise _err(file, v.start_mark, "a var value must be a plain scalar (text, number or "
                           "boolean)", (*path, "vars", name))
            values[name] = str(v.value)
            marks[name] = _mark(file, v.start_mark)
        return _Scope(values, marks, self._scope, path, included)

    def _convert_include(self, node: yaml.Node, path: PathT, file: str, base: Path, inc_depth: int) -> Any:
        rel, vars_node = self._include_args(node, path, file, "!include")
        if inc_depth >= MAX_INCLUDE_DEPTH:
            raise _err(file, node.start_mark, f"includes nested more than {MAX_INCLUDE_DEPTH} deep "
                       "(an include cycle?)", path)
        rel = self._substitute(rel, path, file, node.start_mark)
        target = (base / rel).resolve()
        display = str(Path(file).parent / rel) if not Path(rel).is_absolute() else rel
        if target in self._including:
            chain = " -> ".join(p.name for p in [*self._including, target])
            current = self._including[-1]
            what = (f"{target.name} includes itself" if target == current
                    else f"{current.name} includes {target.name} again")
            raise _err(file, node.start_mark, f"include cycle: {what} ({chain})", path)
        scope = self._new_scope(vars_node, path, file, display)
        if scope is not self._scope and scope is not None:
            self._resolve_scope(scope)  # an error in a var is reported even if the file never uses it
        text = _read_text(target, display, (_mark(file, node.start_mark), path))
        self._texts[display] = text
        self.doc.files.append(target)
        inner = _Composer(text, display).compose()
        if inner is None:
            return None
        if (isinstance(inner, yaml.ScalarNode) and not inner.style and inner.tag.startswith(_CORE)
                and isinstance(_resolve_plain(inner.value, inner, display), str)):
            # A file of plain text (/etc/passwd, a prompt.txt) reads as one plain YAML string. Say so
            # without quoting it: the file may hold anything.
            raise _err(file, node.start_mark, f"{display} is not a YAML mapping, list or quoted string; "
                       "an included file must hold YAML (for a text, write it as a block: '|' then "
                       "the indented lines)", path)
        self._including.append(target)
        outer = self._scope
        self._scope = scope
        try:
            return self._convert(inner, path, display, target.parent, inc_depth + 1)
        finally:
            self._including.pop()
            self._scope = outer

    # -- packages ---------------------------------------------------------
    def _gather(self, unit: _Unit) -> None:
        """Read the packages ``unit`` names (and theirs, depth first) into ``unit.packages``."""
        node, file = unit.node, unit.display
        if not isinstance(node, yaml.MappingNode):
            return
        entries: list[tuple[PathT, yaml.Node]] = []
        for k, v in node.value:
            if not (isinstance(k, yaml.ScalarNode) and k.value == "packages"):
                continue
            if isinstance(v, yaml.MappingNode) and not v.tag.startswith("!"):
                names: set[str] = set()
                for pk, pv in v.value:
                    if not isinstance(pk, yaml.ScalarNode):
                        raise _err(file, pk.start_mark, "a package name must be a plain name", ("packages",))
                    if str(pk.value) in names:
                        raise _err(file, pk.start_mark, f"duplicate key '{pk.value}'", ("packages", str(pk.value)))
                    names.add(str(pk.value))
                    entries.append((("packages", str(pk.value)), pv))
            elif isinstance(v, yaml.SequenceNode) and not v.tag.startswith("!"):
                entries += [(("packages", i), pv) for i, pv in enumerate(v.value)]
            else:
                raise _err(file, v.start_mark, "packages must be a mapping of NAME: FILE (or NAME: !include "
                           "FILE) or a list of files", ("packages",))
        for path, entry in entries:
            unit.packages.append(self._package(unit, path, entry))

    def _package(self, unit: _Unit, path: PathT, entry: yaml.Node) -> _Unit:
        file = unit.display
        where = _mark(file, entry.start_mark)
        if entry.tag == "!include":
            rel, vars_node = self._include_args(entry, path, file, "a package")
        elif isinstance(entry, yaml.ScalarNode) and entry.tag == _CORE + "str" and str(entry.value).strip():
            rel, vars_node = str(entry.value).strip(), None
        else:
            raise _err(file, entry.start_mark, "a package is a file: write NAME: FILE, NAME: !include FILE or "
                       "NAME: !include {file: FILE, vars: {...}} (the keys of a package go in that file)", path)
        if "${" in rel.replace("$$", ""):
            raise _err(file, entry.start_mark, "a package file name cannot use ${...} substitutions: packages "
                       "are read before the substitutions are known", path)
        rel = rel.replace("$$", "$")
        if len(unit.chain) > MAX_INCLUDE_DEPTH:
            raise _err(file, entry.start_mark, f"packages nested more than {MAX_INCLUDE_DEPTH} deep", path)
        target = (unit.base / rel).resolve()
        display = str(Path(file).parent / rel) if not Path(rel).is_absolute() else rel
        if target in unit.chain:
            chain = " -> ".join(p.name for p in [*unit.chain, target])
            what = ("the spec names itself as a package" if target == unit.chain[0] and len(unit.chain) == 1
                    else f"{target.name} includes itself" if target == unit.chain[-1]
                    else f"{unit.chain[-1].name} includes {target.name}, which includes it")
            raise _err(file, entry.start_mark, f"package cycle: {what} ({chain}); remove this entry", path)
        self._packages_read += 1
        if self._packages_read > MAX_PACKAGES:
            raise _err(file, entry.start_mark, f"more than {MAX_PACKAGES} package files to read (the same "
                       "files named over and over?): refusing to read more", path)
        text = _read_text(target, display, (where, path))
        self._texts[display] = text
        self.doc.files.append(target)
        inner = _Composer(text, display).compose()
        if inner is not None and not (isinstance(inner, yaml.MappingNode) and inner.tag == _CORE + "map"):
            kind = "a list" if isinstance(inner, yaml.SequenceNode) else "a single value"
            raise _err(file, entry.start_mark, f"package {display} holds {kind}; a package is a mapping of "
                       "spec keys (a partial spec)", path)
        outer = self._scope
        self._scope = unit.scope
        try:
            scope = self._new_scope(vars_node, path, file, display)
        finally:
            self._scope = outer
        if scope is not unit.scope and scope is not None:
            self._scopes.append(scope)
        package = _Unit(inner, display, target.parent, scope, (*unit.chain, target))
        self._gather(package)
        return package

    def _build(self, unit: _Unit) -> _Tree:
        """The data of ``unit`` with its packages merged in: P1 < P2 < ... < the file itself."""
        trees = [self._build(p) for p in unit.packages]
        saved = (self.doc.marks, self.doc.key_marks, self.doc.secrets, self._scope, self._including,
                 self._unit_node)
        own = _Tree(None)
        self.doc.marks, self.doc.key_marks, self.doc.secrets = own.marks, own.key_marks, own.secrets
        self._scope, self._including = unit.scope, list(unit.chain)
        self._unit_node = None if self.raw_scalars else unit.node
        try:
            if unit.node is not None:
                own.data = self._convert(unit.node, (), unit.display, unit.base, 0)
        finally:
            (self.doc.marks, self.doc.key_marks, self.doc.secrets, self._scope, self._including,
             self._unit_node) = saved
        if not trees:
            return own
        acc = trees[0]  # P1, then P2 ... over it, then the file itself over them all
        for later in (*trees[1:], own):
            _merge_into(acc, later)
        return acc


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


def referenced_files(path: Path, text: str | None = None) -> set[Path]:
    """The files a spec file names with ``!include`` or under ``packages:`` (resolved), as far as
    they can be told without loading it: parts of a spec, not specs (``validate DIR``)."""
    try:
        node = _Composer(_read_text(path, str(path)) if text is None else text, str(path)).compose()
    except DiagnosticError:
        return set()
    names: list[str] = []
    todo: list[yaml.Node] = [node] if node is not None else []
    seen: set[int] = set()  # aliases share nodes: each is looked at once (no alias bomb)
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.tag == "!include" and isinstance(n, yaml.ScalarNode):
            names.append(str(n.value).strip())
        elif n.tag == "!include" and isinstance(n, yaml.MappingNode):
            names += [str(v.value).strip() for k, v in n.value
                      if isinstance(k, yaml.ScalarNode) and k.value == "file" and isinstance(v, yaml.ScalarNode)]
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if n is node and isinstance(k, yaml.ScalarNode) and k.value == "packages":
                    entries = [e for _, e in v.value] if isinstance(v, yaml.MappingNode) else (
                        list(v.value) if isinstance(v, yaml.SequenceNode) else [])
                    names += [str(e.value).strip() for e in entries
                              if isinstance(e, yaml.ScalarNode) and e.tag == _CORE + "str"]
                todo.append(v)
        elif isinstance(n, yaml.SequenceNode):
            todo += n.value
    return {(path.parent / name).resolve() for name in names if name and "${" not in name}
