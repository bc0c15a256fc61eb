"""CMSIS-SVD importer: vendor XML -> resolved ``clawgen.chips.model.Chip``.

The XML is read with lxml; the model is resolved here rather than by cmsis-svd, which drops data
(see docs/chips.md). Three phases:

1. *read*: each SVD element becomes a ``_Node`` (simple child values with their line numbers,
   child nodes by kind). Unknown elements and malformed values become warnings.
2. *derive*: ``derivedFrom`` is applied lazily and shallowly (``_Resolver.resolve``): a derived
   node is its base's values overridden by its own; child lists merge by name. References are
   looked up relative to each enclosing scope, innermost first, then from the device (dotted
   paths), so forward references and chains work; cycles are reported and cut.
3. *build*: a top-down walk applies property inheritance (device -> peripheral -> cluster ->
   register -> field) and builds the model; arrays stay compact. Derived peripherals that add no
   registers of their own share their base's register objects.

Every vendor error becomes a ``Diagnostic`` warning naming FILE:LINE; an unusable file raises
``DiagnosticError`` (exit 2).

This module is also compiled with mypyc when clawgen is installed (setup.py): the compiled twin,
``clawgen.chips._svd_native``, is this same code; ``import_svd`` runs it when it was built from
this file's current text (``implementation()`` says which one runs), else the code here.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lxml import etree
from lxml.etree import tostring

from clawgen.chips.model import (
    ACCESS_TYPES,
    ENUM_USAGES,
    MAX_REGISTER_INSTANCES,
    MODIFIED_WRITE_VALUES,
    PROTECTIONS,
    READ_ACTIONS,
    AddressBlock,
    Chip,
    Cluster,
    Dim,
    EnumSet,
    EnumValue,
    Field,
    Interrupt,
    Peripheral,
    Register,
    WriteConstraint,
    dim_count,
)
from clawgen.diagnostics import ERROR, WARNING, Diagnostic, DiagnosticError
from clawgen.files import read_bounded

# Simple (text) children each element kind may carry; anything else is warned about once per file.
_REG_PROPS = {"size", "access", "protection", "resetValue", "resetMask"}
_DIM = {"dim", "dimIncrement", "dimIndex", "dimName", "dimArrayIndex"}
_SIMPLE: dict[str, set[str]] = {
    "device": _REG_PROPS | {"vendor", "vendorID", "name", "series", "version", "description", "licenseText",
                            "headerSystemFilename", "headerDefinitionsPrefix", "addressUnitBits", "width"},
    "peripheral": _REG_PROPS | _DIM | {"name", "version", "description", "alternatePeripheral", "groupName",
                                       "prependToName", "appendToName", "headerStructName", "disableCondition",
                                       "baseAddress"},
    "cluster": _REG_PROPS | _DIM | {"name", "description", "alternateCluster", "headerStructName",
                                    "addressOffset"},
    "register": _REG_PROPS | _DIM | {"name", "displayName", "description", "alternateGroup",
                                     "alternateRegister", "addressOffset", "dataType", "modifiedWriteValues",
                                     "readAction"},
    "field": _DIM | {"name", "description", "bitOffset", "bitWidth", "lsb", "msb", "bitRange", "access",
                     "modifiedWriteValues", "readAction"},
    "enumeratedValues": {"name", "headerEnumName", "usage"},
    "enumeratedValue": {"name", "description", "value", "isDefault"},
    "addressBlock": {"offset", "size", "usage", "protection"},
    "interrupt": {"name", "description", "value"},
}
# Structural children, handled explicitly per kind.
_STRUCT: dict[str, set[str]] = {
    "device": {"cpu", "peripherals", "vendorExtensions"},
    "peripheral": {"registers", "addressBlock", "interrupt", "dimArrayIndex"},
    "cluster": {"register", "cluster", "dimArrayIndex"},
    "register": {"fields", "writeConstraint", "dimArrayIndex"},
    "field": {"enumeratedValues", "writeConstraint", "dimArrayIndex"},
    "enumeratedValues": {"enumeratedValue"},
    "enumeratedValue": set(),
    "addressBlock": set(),
    "interrupt": set(),
}

# Non-standard access spellings seen in vendor files, mapped to the schema's five values.
_ACCESS_ALIASES = {
    "read": "read-only", "r": "read-only", "ro": "read-only", "readonly": "read-only", "read_only": "read-only",
    "write": "write-only", "w": "write-only", "wo": "write-only", "writeonly": "write-only",
    "write_only": "write-only", "rw": "read-write", "readwrite": "read-write", "read/write": "read-write",
    "read_write": "read-write", "writeonce": "writeOnce", "write-once": "writeOnce",
    "read-writeonce": "read-writeOnce", "readwriteonce": "read-writeOnce", "rwonce": "read-writeOnce",
}
_ACCESS_EXACT = {a: a for a in ACCESS_TYPES}
# (``_Importer.plain_fields`` builds fields with only name, description, bitOffset/bitWidth,
# lsb/msb or bitRange, access, modifiedWriteValues, readAction and enumeratedValues whose values
# have only name, description and value, without a node: see there.)
# Bit offsets and widths as plain decimals: a lookup instead of checking and parsing each one
# (any other spelling goes through the general path and parse_int).
_BIT_NUMBER: dict[str | None, int] = {str(i): i for i in range(65)}
# "[7:4]" -> (lsb 4, width 4): the plain forms ``_bit_range`` accepts (at most 65 x 65 of them),
# each split and looked up once.
_BIT_RANGES: dict[str, tuple[int, int]] = {}


def _bit_range(text: str) -> tuple[int, int] | None:
    """(lsb, width) of a plain ``[msb:lsb]`` (decimals 0..64, no spaces, msb >= lsb), kept in
    _BIT_RANGES; None for any other form (the general path reads those, with their warnings)."""
    if not text or text[0] != "[" or text[-1] != "]":
        return None
    hi_text, _, lo_text = text[1:-1].partition(":")
    lsb, top = _BIT_NUMBER.get(lo_text), _BIT_NUMBER.get(hi_text)
    if lsb is None or top is None or top < lsb:
        return None
    pos = _BIT_RANGES[text] = (lsb, top - lsb + 1)
    return pos


_UNSEEN = object()  # a memo's "not looked at yet" (None is a value there)

_MAX_DIM = 1 << 20  # far above any real array; guards memory against a broken <dim>
MAX_SVD_BYTES = 256 * 1024 * 1024  # ten times the largest vendor SVD (MIMXRT1176, 24 MB)
# Numbers are addresses, sizes and bit positions: none needs more than 64 bits. Longer digit
# strings are refused before int() sees them (int() of a 5,000-digit string raises ValueError).
_MAX_VALUE = 1 << 64
_MAX_DIGITS = 80
_INT_RE = re.compile(r"^\s*\+?(0[xX][0-9a-fA-F]+|0[bB][01]+|#[01]+|[0-9]+)\s*([kKmMgGtT])?\s*$")
_SCALE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_BITRANGE_RE = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")
_ENUM_VALUE_RE = re.compile(r"^\s*(?:(0[xX])([0-9a-fA-F]+)|(0[bB]|#)([01xX]+)|(\d+))\s*$")


def parse_int(text: str | None) -> int | None:
    """An SVD scaledNonNegativeInteger (``0x1F``, ``0b101``, ``#101``, ``42``, ``4k``), or None."""
    if text is None or len(text) > _MAX_DIGITS:
        return None
    m = _INT_RE.match(text)
    if not m:
        return None
    s, scale = m.group(1), m.group(2)
    if s[0] == "#":
        v = int(s[1:], 2)
    elif s[:2] in ("0b", "0B"):
        v = int(s[2:], 2)
    else:
        v = int(s[2:], 16) if s[:2] in ("0x", "0X") else int(s, 10)
    return v * _SCALE[scale.lower()] if scale else v


def _int(text: str) -> int | None:
    """parse_int with a fast path for the common plain decimal and 0x forms."""
    if text[:2] in ("0x", "0X"):
        try:
            return int(text[2:], 16)
        except ValueError:
            return parse_int(text)
    if text.isdecimal() and text.isascii():  # isdigit() passes '²', which int() rejects
        return int(text)
    return parse_int(text)


def _shown(text: str) -> str:
    """A value for a message: long ones cut (a hostile file's 5,000 digits are no help)."""
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def parse_enum_value(text: str) -> tuple[int, int | None] | None:
    """(value, mask) of an enumeratedValue ``value``; mask None means "all bits of the field".
    ``#1xx0`` -> (0b1000, 0b1001): ``x`` marks a don't-care bit."""
    m = _ENUM_VALUE_RE.match(text) if len(text) <= _MAX_DIGITS else None
    if not m:
        return None
    if m.group(2) is not None:
        return int(m.group(2), 16), None
    if m.group(4) is not None:
        bits = m.group(4).lower()
        value = int(bits.replace("x", "0"), 2)
        if "x" not in bits:
            return value, None
        return value, int("".join("0" if c == "x" else "1" for c in bits), 2)
    return int(m.group(5), 10), None


# ---------------------------------------------------------------------------------------------
# Phase 1: read


class _Node:
    """One SVD element: its simple values (text, line) and its child nodes by kind."""

    __slots__ = ("derived_from", "el", "field_els", "fields_from", "fields_read", "index", "kids", "kind", "line",
                 "name", "parent", "props", "resolved", "resolving", "wc")

    def __init__(self, kind: str, el: etree._Element, parent: _Node | None):
        self.kind = kind
        self.el = el
        self.line: int = el.sourceline or 0
        self.parent = parent
        # Raw text of each simple child (unstripped; None when empty). Lines are looked up in
        # ``el`` only when a warning needs one: most values never need it.
        self.props: dict[str, str | None] = {}
        self.kids: dict[str, list[_Node]] = {}
        self.name = ""
        self.derived_from: tuple[str, int] | None = None
        self.resolved: _Node | None = None
        self.resolving = False
        self.index: dict[str, _Node] | None = None
        self.wc: dict[str, tuple[str, int]] | None = None  # writeConstraint children
        # A register's <fields> containers. They are read into child nodes (``_Importer.items``)
        # only when a lookup or the general build path needs them: most fields are plain and are
        # built straight from the XML without a node of their own.
        self.field_els: list[etree._Element] | None = None
        self.fields_read = False
        # A derived register without fields of its own: the node whose fields it has.
        self.fields_from: _Node | None = None

    def get(self, key: str) -> str | None:
        """The stripped text of a simple child; None when absent or empty."""
        v = self.props.get(key)
        return (v.strip() or None) if v else None

    def line_of(self, key: str) -> int:
        c = self.el.find(key)
        return (c.sourceline or self.line) if c is not None else self.line

    def path(self) -> str:
        parts = []
        n: _Node | None = self
        while n is not None and n.kind != "device":
            parts.append(n.name or f"<{n.kind}>")
            n = n.parent
        return ".".join(reversed(parts))


# Which child element (or container) holds which kind of child node.
_CHILD_KIND = {
    ("device", "peripherals"): ("peripheral", "items"),
    ("peripheral", "registers"): (None, "items"),  # register and cluster
    ("peripheral", "addressBlock"): ("addressBlock", "blocks"),
    ("peripheral", "interrupt"): ("interrupt", "interrupts"),
    ("cluster", "register"): ("register", "items"),
    ("cluster", "cluster"): ("cluster", "items"),
    ("register", "fields"): ("field", "items"),
    ("field", "enumeratedValues"): ("enumeratedValues", "items"),
    ("enumeratedValues", "enumeratedValue"): ("enumeratedValue", "items"),
}
# Of those, the elements that merely wrap a list of children.
_CONTAINERS = {("device", "peripherals"), ("peripheral", "registers"), ("register", "fields")}


def _fingerprint(el: etree._Element) -> tuple:
    """A cheap summary of an element's subtree: its number of children and the first texts of its
    first and last child (a field's name and description...). Equal XML has equal
    fingerprints, and in the vendor corpus most elements with equal fingerprints have equal XML
    (of the <fields> serialized for that, 4 in 5 were repeats): only those are worth serializing
    (``tostring``) to find out. Reads at most five elements."""
    n = len(el)
    if not n:
        return (0,)
    first, last = el[0], el[n - 1]
    k = len(first)
    head = (first[0].text, first[1].text if k > 1 else None) if k else first.text
    return (n, head, last[0].text if len(last) else last.text)


class _TextMemo:
    """Values built from elements, shared between elements of equal XML (``tostring``): vendor
    files repeat themselves (half the <fields> of the corpus repeat an earlier one: a
    peripheral's copies without derivedFrom, channels of one layout), and equal XML in the same
    context gives an equal value (the model is read-only, so it is shared).

    Serializing a <fields> costs about a fifth of building it, so it is paid only for elements
    that may repeat one seen before: an element whose fingerprint (``_fingerprint`` and the
    context) is new is built without being serialized; its text is taken when a second element
    of that fingerprint comes. Where a file hardly repeats itself even the fingerprints cost more
    than they save: a stretch of 32 look-ups that finds fewer than 2 repeats pauses the look-up
    for the next 128 elements (built without one)."""

    __slots__ = ("by_print", "by_text", "hits", "looked", "skip")

    def __init__(self) -> None:
        # fingerprint -> (the first element of it, not serialized yet, and its value) or None
        self.by_print: dict[tuple, tuple[etree._Element, object] | None] = {}
        self.by_text: dict[tuple, object] = {}  # (serialized element, context) -> value
        self.looked = self.hits = self.skip = 0

    def get(self, el: etree._Element, context: tuple, build: Callable[..., object], *args: object) -> object:
        """The value of ``el`` in ``context``: an equal element's, or ``build(*args)``."""
        if self.skip:
            self.skip -= 1
            return build(*args)
        self.looked += 1
        if self.looked == 32:
            if self.hits < 2:
                self.skip = 128
            self.looked = self.hits = 0
        fp = (_fingerprint(el), context)
        first: Any = self.by_print.get(fp, _UNSEEN)
        if first is _UNSEEN:
            value = build(*args)
            self.by_print[fp] = (el, value)  # (the element is kept alive until serialized)
            return value
        by_text = self.by_text
        if first is not None:  # a second element of this fingerprint: the first is serialized now
            by_text.setdefault((tostring(first[0], encoding=str, with_tail=False), context), first[1])
            self.by_print[fp] = None
        key = (tostring(el, encoding=str, with_tail=False), context)
        value = by_text.get(key, _UNSEEN)
        if value is _UNSEEN:
            value = by_text[key] = build(*args)
        else:
            self.hits += 1
        return value


class _Ctx:
    """Register properties in effect (inherited) at some level (read-only once made)."""

    __slots__ = ("access", "k", "protection", "reset_mask", "reset_value", "size")

    def __init__(self, size: int | None = None, access: str | None = None, protection: str | None = None,
                 reset_value: int | None = None, reset_mask: int | None = None):
        self.size = size
        self.access = access
        self.protection = protection
        self.reset_value = reset_value
        self.reset_mask = reset_mask
        # The values, as a key for memos (made once: ctx_of and build_block look it up often).
        self.k = (size, access, protection, reset_value, reset_mask)

    def key(self) -> tuple:
        return self.k


class _Importer:
    def __init__(self, file: str, keep_descriptions: bool):
        self.file = file
        self.keep_descriptions = keep_descriptions
        self.diags: dict[tuple, Diagnostic] = {}
        self.unknown: dict[tuple[str, str], list[int]] = {}
        self.build_memo: dict[tuple, tuple[list[Register], list[Cluster]]] = {}
        self.enum_memo: dict[int, EnumSet | None] = {}
        self.plain_enum_memo: dict[tuple[str, int], EnumSet | None] = {}
        self.empty_enum_set: EnumSet | None = None  # shared by every childless <enumeratedValues>
        self.enum_value_texts: dict[str, tuple[int, int | None]] = {}  # <value> text -> parsed, (-1, None): bad
        # (id(field containers), access, size) -> (the containers, kept alive for their id; fields)
        self.plain_memo: dict[tuple, tuple[list, tuple[list[Field], bool, str] | None]] = {}
        # <fields> -> plain_fields' result, shared between equal ones: see shared_fields.
        self.fields_memo = _TextMemo()
        self.ctx_memo: dict[tuple, _Ctx] = {}
        self.default_indices: dict[int, list[str]] = {}  # dim count -> ['0', '1', ...]
        self.nodes: list[_Node] = []  # every node read, to break their parent cycles at the end
        self.device: _Node | None = None
        self.enum_index: dict[str, _Node] | None = None
        self.reg_lines: dict[int, int] = {}  # id(Register) -> source line, for later checks
        self.items_owner: dict[int, _Node] = {}  # id(peripheral's register list) -> declaring node
        self.instances: dict[int, int] = {}  # id(Cluster) -> its register instances, arrays expanded
        # (id(register list), id(cluster list), spans...) of blocks check_blocks found all inside
        self.blocks_clean: dict[tuple, tuple[list[Register], list[Cluster]]] = {}
        self.block_counts: dict[tuple[int, int], int] = {}  # (id(registers), id(clusters)) -> instances
        self.total_instances = 0  # of the peripherals built so far

    # -- diagnostics ---------------------------------------------------------------------------
    def warn(self, line: int, where: _Node | str, message: str) -> None:
        path = where if isinstance(where, str) else where.path()  # paths are built only when needed
        key = (line, path, message)
        if key not in self.diags:
            self.diags[key] = Diagnostic(self.file, line or 1, 1, path, WARNING, message)

    def fatal(self, line: int, message: str) -> DiagnosticError:
        return DiagnosticError([*self.diagnostics(), Diagnostic(self.file, line or 1, 1, "", ERROR, message)])

    def diagnostics(self) -> list[Diagnostic]:
        out = list(self.diags.values())
        for (kind, tag), lines in self.unknown.items():
            more = f" ({len(lines)} times)" if len(lines) > 1 else ""
            out.append(Diagnostic(self.file, lines[0], 1, "", WARNING,
                                  f"unknown element <{tag}> in <{kind}> ignored{more}"))
        out.sort(key=lambda d: d.line)
        return out

    # -- phase 1: read -------------------------------------------------------------------------
    def read(self, el: etree._Element, kind: str, parent: _Node | None) -> _Node:
        node = _Node(kind, el, parent)
        self.nodes.append(node)
        df = el.get("derivedFrom")
        if df is not None:
            node.derived_from = (df.strip(), node.line)
        else:
            node.resolved = node  # what resolve() would say
        # One C-level pass for the simple values (over a list of the children: faster than the
        # element's own iterator); the rare rest is sorted out below.
        kids = el[:]
        props = {c.tag: c.text for c in kids}
        simple = _SIMPLE[kind]
        if kind == "register" and "fields" in props:  # the usual register: its <fields>
            del props["fields"]
            # Usually the last child, and the only one of its tag (no tag repeats: as many
            # children as values).
            last = kids[-1]
            if last.tag == "fields" and len(kids) == len(props) + 1:
                node.field_els = [last]
            else:
                node.field_els = list(el.iterchildren("fields"))
        if not props.keys() <= simple:
            extra = props.keys() - simple
            struct = _STRUCT[kind]
            for tag in extra:
                del props[tag]
                if not isinstance(tag, str):
                    continue  # comments, processing instructions, entities
                if tag in struct:
                    for child in el.iterchildren(tag):
                        self.read_struct(node, kind, tag, child)
                else:
                    self.unknown.setdefault((kind, tag), []).extend(
                        c.sourceline or 0 for c in el.iterchildren(tag))
        node.props = props
        name = props.get("name")
        node.name = name.strip() if name else ""
        return node

    def read_struct(self, node: _Node, kind: str, tag: str, child: etree._Element) -> None:
        if tag == "writeConstraint":
            node.wc = {}
            for c in child:
                if not isinstance(c.tag, str):
                    continue
                if c.tag == "range":
                    for r in c:
                        if isinstance(r.tag, str):
                            node.wc[r.tag] = ((r.text or "").strip(), r.sourceline or 0)
                else:
                    node.wc[c.tag] = ((c.text or "").strip(), c.sourceline or 0)
            return
        if tag in ("cpu", "vendorExtensions", "dimArrayIndex"):
            return  # cpu is read separately; vendor extensions and dimArrayIndex carry no register data
        if kind == "register" and tag == "fields":
            if node.field_els is None:
                node.field_els = []
            node.field_els.append(child)
            return
        spec = _CHILD_KIND.get((kind, tag))
        if spec is None:
            return
        child_kind, bucket = spec
        items = node.kids.setdefault(bucket, [])
        if (kind, tag) not in _CONTAINERS:
            items.append(self.read(child, tag, node))
            return
        # A container element (<peripherals>, <registers>, <fields>) of repeated children.
        for c in child:
            ctag = c.tag
            if not isinstance(ctag, str):
                continue
            if ctag == child_kind or (child_kind is None and ctag in ("register", "cluster")):
                items.append(self.read(c, ctag, node))
            else:
                self.unknown.setdefault((tag, ctag), []).append(c.sourceline or 0)

    def items(self, node: _Node) -> list[_Node]:
        """``node``'s child nodes (registers, clusters, fields, enumeratedValues), reading a
        register's deferred fields first."""
        if node.fields_from is not None:
            base, node.fields_from = node.fields_from, None
            node.fields_read = True
            node.kids["items"] = self.items(base)
        elif node.field_els is not None and not node.fields_read:
            node.fields_read = True
            items = node.kids.setdefault("items", [])
            for child in node.field_els:
                for c in child:
                    ctag = c.tag
                    if not isinstance(ctag, str):
                        continue
                    if ctag == "field":
                        items.append(self.read(c, "field", node))
                    else:
                        self.unknown.setdefault(("fields", ctag), []).append(c.sourceline or 0)
        return node.kids.get("items", [])

    # -- phase 2: derive -----------------------------------------------------------------------
    def resolve(self, node: _Node) -> _Node:
        """``node`` with its derivedFrom applied (shallowly: children are resolved on their own)."""
        if node.resolved is not None:
            return node.resolved
        if node.derived_from is None:
            node.resolved = node
            return node
        ref, line = node.derived_from
        if node.resolving:
            self.warn(line, node, f'derivedFrom cycle through "{ref}"; derivation ignored')
            return node  # cut the cycle here; the outer call settles node.resolved
        node.resolving = True
        try:
            base = self.lookup(node, ref)
            if base is None:
                self.warn(line, node, f'derivedFrom "{ref}": no {node.kind} of that name; ignored')
                node.resolved = node
                return node
            base_r = self.resolve(base)
            if node.kind == "register" and node.field_els is not None:
                # Merging fields by name works on field nodes: read them. (A register without
                # fields of its own takes its base's as they are: see merge.)
                self.items(base_r)
                self.items(node)
            if base_r is node or (base_r.derived_from is not None and base_r.resolved is None):
                # The chain came back to us (cycle): keep our own values only.
                node.resolved = node
                return node
            node.resolved = self.merge(base_r, node)
            return node.resolved
        finally:
            node.resolving = False

    def merge(self, base: _Node, own: _Node) -> _Node:
        m = _Node(own.kind, own.el, own.parent)
        m.props = {**base.props, **own.props}
        if own.kind == "peripheral":
            # Dims and interrupts belong to the instance, not to what it derives from.
            for k in _DIM:
                if k not in own.props:
                    m.props.pop(k, None)
        m.name = own.name or base.name  # an unnamed derived enumeratedValues keeps the base's name
        m.wc = own.wc if own.wc is not None else base.wc
        if own.kind == "register" and own.field_els is None:
            # No fields of its own: the base's, still unread if nothing looked into them, so the
            # fast path builds them (once: see plain_memo) as it does the base's.
            m.field_els = base.field_els
            m.fields_from = base
        for bucket in set(base.kids) | set(own.kids):
            b = base.kids.get(bucket, [])
            o = own.kids.get(bucket)
            if own.kind == "peripheral" and bucket == "interrupts":
                m.kids[bucket] = o or []
            elif not o:
                m.kids[bucket] = b  # shared list object: lets the builder share model objects
            elif not b or bucket != "items" or own.kind == "field":
                m.kids[bucket] = o  # own addressBlocks / a field's own enumeratedValues replace the base's
            else:
                names = {n.name for n in o if n.name}
                m.kids[bucket] = [n for n in b if not n.name or n.name not in names] + o
        return m

    def children_index(self, node: _Node) -> dict[str, _Node]:
        r = self.resolve(node)
        if r.index is None:
            idx: dict[str, _Node] = {}
            for k in self.items(r):
                if k.name:
                    idx.setdefault(k.name, k)
                    plain = k.name.replace("[%s]", "").replace("%s", "")
                    idx.setdefault(plain, k)
            r.index = idx
        return r.index

    def descend(self, scope: _Node, parts: list[str]) -> _Node | None:
        n: _Node | None = scope
        for p in parts:
            if n is None:
                return None
            n = self.children_index(n).get(p)
        return n

    def lookup(self, node: _Node, ref: str) -> _Node | None:
        """Find the base element named by ``ref``: relative to each enclosing scope, innermost
        first, then as a path from the device."""
        parts = [p for p in ref.split(".") if p]
        if not parts:
            return None
        scope = node.parent
        while scope is not None:
            found = self.descend(scope, parts)
            if found is not None and found is not node and found.kind == node.kind:
                return found
            scope = scope.parent
        if node.kind == "enumeratedValues" and len(parts) == 1:
            return self.find_enum_anywhere(node, parts[0])
        return None

    def find_enum_anywhere(self, node: _Node, name: str) -> _Node | None:
        """enumeratedValues are often referred to by bare name from another register."""
        # Innermost peripheral first, then the whole device.
        scope = node
        while scope.parent is not None and scope.kind != "peripheral":
            scope = scope.parent
        found = _find_enum(self.items, scope, name, node)
        if found is not None:
            return found
        if self.enum_index is None and self.device is not None:
            self.enum_index = {}
            _index_enums(self.items, self.device, self.enum_index)
        hit = (self.enum_index or {}).get(name)
        return hit if hit is not node else None

    # -- value helpers ---------------------------------------------------------------------------
    def int_prop(self, node: _Node, key: str) -> int | None:
        text = node.props.get(key)
        if not text:
            return None
        if len(text) > _MAX_DIGITS and len(text.strip()) > _MAX_DIGITS:
            self.warn(node.line_of(key), node, f"<{key}> has {len(text.strip())} characters: too large "
                                               "for any address, size or bit number; ignored")
            return None
        v = _int(text)
        if v is None:
            if not text.strip():
                return None
            self.warn(node.line_of(key), node, f'<{key}> "{_shown(text.strip())}" is not a number; ignored')
        elif v >= _MAX_VALUE:
            self.warn(node.line_of(key), node, f'<{key}> "{text.strip()}" does not fit in 64 bits; ignored')
            return None
        return v

    def access_prop(self, node: _Node, key: str = "access") -> str | None:
        text = node.props.get(key)
        if not text:
            return None
        exact = _ACCESS_EXACT.get(text)
        if exact is not None:
            return exact
        text = text.strip()
        if not text:
            return None
        exact = _ACCESS_EXACT.get(text)
        if exact is not None:
            return exact
        mapped = _ACCESS_ALIASES.get(text.lower().replace(" ", ""))
        if mapped is None and text.lower() in {a.lower() for a in ACCESS_TYPES}:
            mapped = next(a for a in ACCESS_TYPES if a.lower() == text.lower())
        if mapped is not None:
            self.warn(node.line_of(key), node, f'non-standard access "{text}" read as "{mapped}"')
            return mapped
        self.warn(node.line_of(key), node, f'unknown access "{text}"; ignored')
        return None

    def choice_prop(self, node: _Node, key: str, allowed: frozenset[str]) -> str | None:
        text = node.props.get(key)
        if not text:
            return None
        if text in allowed:
            return text
        text = text.strip()
        if not text:
            return None
        if text in allowed:
            return text
        for a in allowed:
            if a.lower() == text.lower():
                self.warn(node.line_of(key), node, f'<{key}> "{text}" read as "{a}"')
                return a
        self.warn(node.line_of(key), node,
                  f'unknown <{key}> "{text}" ignored (expected one of {", ".join(sorted(allowed))})')
        return None

    def description(self, node: _Node) -> str | None:
        if not self.keep_descriptions:
            return None
        d = node.props.get("description")
        return _squeeze(d) if d else None

    def ctx_of(self, node: _Node, outer: _Ctx) -> _Ctx:
        p = node.props
        if p.keys().isdisjoint(_REG_PROPS):
            return outer
        # Most registers repeat a few combinations: reuse the result unless it warned.
        key = (outer.k, p.get("size"), p.get("access"), p.get("protection"), p.get("resetValue"),
               p.get("resetMask"))
        hit = self.ctx_memo.get(key)
        if hit is not None:
            return hit
        warned = len(self.diags)
        ctx = self.new_ctx(node, outer)
        if len(self.diags) == warned:
            self.ctx_memo[key] = ctx
        return ctx

    def new_ctx(self, node: _Node, outer: _Ctx) -> _Ctx:
        size = self.int_prop(node, "size")
        return _Ctx(
            size if size is not None else outer.size,
            self.access_prop(node) or outer.access,
            self.choice_prop(node, "protection", PROTECTIONS) or outer.protection,
            _first(self.int_prop(node, "resetValue"), outer.reset_value),
            _first(self.int_prop(node, "resetMask"), outer.reset_mask),
        )

    def dim_of(self, node: _Node, name_has_placeholder: bool) -> Dim | None:
        count = self.int_prop(node, "dim")
        if count is None:
            if name_has_placeholder:
                self.warn(node.line, node, f'"{node.name}" has %s but no <dim>; taken as one element')
                return Dim(1, 0, ["0"])
            if node.get("dimIncrement") is not None or node.get("dimIndex") is not None:
                self.warn(node.line, node, "<dimIncrement>/<dimIndex> without <dim>; ignored")
            return None
        inc = self.int_prop(node, "dimIncrement")
        if inc is None:
            self.warn(node.line_of("dim"), node, "<dim> without <dimIncrement>; increment taken as 0")
            inc = 0
        if count < 1 or count > _MAX_DIM:
            self.warn(node.line_of("dim"), node, f"<dim> {count} is out of range (1..{_MAX_DIM}); taken as 1")
            count = 1
        # The default indices 0..count-1: one list per count, shared by the arrays of that
        # count (the model is read-only; large arrays repeat across a file's peripherals).
        indices = self.default_indices.get(count)
        if indices is None:
            indices = self.default_indices[count] = [str(i) for i in range(count)]
        text = node.get("dimIndex")
        if text is not None:
            parsed = parse_dim_index(text)
            if parsed is None:
                self.warn(node.line_of("dimIndex"), node, f'<dimIndex> "{text}" not understood; using 0..{count - 1}')
            elif len(parsed) != count:
                self.warn(node.line_of("dimIndex"), node,
                          f"<dimIndex> lists {len(parsed)} indices but <dim> is {count}; using <dim>")
                indices = (parsed + indices[len(parsed):])[:count]
            else:
                indices = parsed
        if not name_has_placeholder:
            self.warn(node.line_of("dim"), node, f'array "{node.name}" has no %s in its name; appending it')
        return Dim(count, inc, indices)

    # -- phase 3: build ------------------------------------------------------------------------
    def build_block(self, items: list[_Node], ctx: _Ctx) -> tuple[list[Register], list[Cluster]]:
        key = (id(items), ctx.k)
        hit = self.build_memo.get(key)
        if hit is not None:
            return hit
        regs: list[Register] = []
        clusters: list[Cluster] = []
        for raw in items:
            n = raw.resolved or self.resolve(raw)
            if n.kind == "register":
                r = self.build_register(n, ctx)
                if r is not None:
                    regs.append(r)
            else:
                c = self.build_cluster(n, ctx)
                if c is not None:
                    clusters.append(c)
        self.check_overlaps(items, regs)
        out = (regs, clusters)
        self.build_memo[key] = out
        return out

    def array_name(self, n: _Node) -> tuple[str, Dim | None] | None:
        name = n.name
        if not name:
            self.warn(n.line, n, f"<{n.kind}> without <name>; skipped")
            return None
        has = "%s" in name
        if not has and n.props.keys().isdisjoint(_DIM):
            return name, None
        dim = self.dim_of(n, has)
        if dim is not None and not has:
            name += "%s"
        return name, dim

    def build_cluster(self, n: _Node, outer: _Ctx) -> Cluster | None:
        named = self.array_name(n)
        if named is None:
            return None
        offset = self.int_prop(n, "addressOffset")
        if offset is None:
            self.warn(n.line, n, "cluster without <addressOffset>; taken as 0")
            offset = 0
        regs, clusters = self.build_block(n.kids.get("items", []), self.ctx_of(n, outer))
        count = dim_count(named[1]) * self.block_instances(regs, clusters)
        self.check_instances(n, "cluster", count)
        c = Cluster(named[0], offset, named[1], regs, clusters, self.description(n))
        self.instances[id(c)] = count
        return c

    def block_instances(self, regs: list[Register], clusters: list[Cluster]) -> int:
        """Register instances of a block, arrays at every level expanded (counted, not built; once
        per block: derived peripherals share their base's, and build_memo keeps the lists alive)."""
        key = (id(regs), id(clusters))
        n = self.block_counts.get(key)
        if n is None:
            n = self.block_counts[key] = sum(1 if r.dim is None else r.dim.count for r in regs) \
                + sum(self.instances[id(c)] for c in clusters)
        return n

    def check_instances(self, n: _Node, kind: str, count: int) -> None:
        """Refuse arrays whose expansion (all nesting levels multiplied) exceeds the chip cap:
        every later pass that expands arrays would take hours or run out of memory."""
        if count > MAX_REGISTER_INSTANCES:
            raise self.fatal(n.line, f'{kind} "{n.path()}" expands to {count:,} register instances (its '
                             f"<dim> arrays and those inside it multiplied), more than the "
                             f"{MAX_REGISTER_INSTANCES:,} a chip may have; check the <dim> values")

    def build_register(self, n: _Node, outer: _Ctx) -> Register | None:
        props = n.props
        name = n.name
        # The common forms inline: a plain name, a hex or decimal offset that needs no warning.
        if name and "%s" not in name and props.keys().isdisjoint(_DIM):
            dim = None
        else:
            named = self.array_name(n)
            if named is None:
                return None
            name, dim = named
        text = props.get("addressOffset")
        offset = _plain_int(text) if text else None
        if offset is None:
            offset = self.int_prop(n, "addressOffset")
            if offset is None:
                self.warn(n.line, n, "register without <addressOffset>; taken as 0")
                offset = 0
        if props.keys().isdisjoint(_REG_PROPS):  # ctx_of, its common cases inlined
            ctx = outer
        else:
            ctx = self.ctx_memo.get((outer.k, props.get("size"), props.get("access"), props.get("protection"),
                                     props.get("resetValue"), props.get("resetMask"))) or self.ctx_of(n, outer)
        size = ctx.size if ctx.size is not None else 32
        if size <= 0 or size > 64:
            self.warn(n.line_of("size"), n, f"register size {size} bits is out of range; taken as 32")
            size = 32
        full = (1 << size) - 1
        reset_value = ctx.reset_value if ctx.reset_value is not None else 0
        reset_mask = ctx.reset_mask if ctx.reset_mask is not None else full
        if reset_value & ~full:
            self.warn(n.line_of("resetValue"), n,
                      f"reset value {reset_value:#x} does not fit in {size} bits; truncated")
            reset_value &= full
        reset_mask &= full
        access = ctx.access
        if n.field_els is not None:
            # Registers derived without fields of their own share the base's containers: same
            # XML, same inherited access and size -> the same fields, built once and shared.
            key = (id(n.field_els), access, size)
            hit = self.plain_memo.get(key)
            if hit is None:
                hit = self.plain_memo[key] = (n.field_els, self.shared_fields(n.field_els, access, size))
            plain = hit[1]
        else:
            plain = None
        if plain is not None:
            fields, clean, access = plain
        elif n.field_els is None and n.fields_from is None and not n.kids:  # no fields at all
            fields, clean = [], True
            if access is None:
                access = "read-write"
        else:
            fields, field_lines, clean = [], [], False
            for x in self.items(n):
                f = self.build_field(x.resolved or self.resolve(x), access, size)
                if f is not None:
                    fields.append(f)
                    field_lines.append(x.line)
            if access is None:
                access = _fields_access(fields)
        if not clean:
            self.check_fields(n, fields, field_lines if plain is None else _field_lines(n.field_els), size)
        reg = Register(
            name, offset, size, access, ctx.protection, reset_value, reset_mask, dim, fields,
            self.choice_prop(n, "modifiedWriteValues", MODIFIED_WRITE_VALUES) if "modifiedWriteValues" in props else None,
            self.choice_prop(n, "readAction", READ_ACTIONS) if "readAction" in props else None,
            self.write_constraint(n) if n.wc is not None else None,
            n.get("alternateRegister") if "alternateRegister" in props else None,
            n.get("alternateGroup") if "alternateGroup" in props else None,
            _squeeze(desc) if self.keep_descriptions and (desc := props.get("description")) else None)
        self.reg_lines[id(reg)] = n.line
        return reg

    def shared_fields(self, containers: list[etree._Element], reg_access: str | None,
                      size: int) -> tuple[list[Field], bool, str] | None:
        """``plain_fields``, built once per distinct <fields> text: many vendor files spell the
        same registers out again and again (a peripheral's copies without derivedFrom, channels
        of one layout: half the containers of the corpus repeat an earlier one), and equal XML
        (with the same inherited access and size) gives equal fields, shared (the model is
        read-only). ``_TextMemo`` serializes only the containers that may be repeats."""
        if len(containers) != 1 or len(containers[0]) < 2:  # (one field: cheaper to build than to look up)
            return self.plain_fields(containers, reg_access, size)
        return self.fields_memo.get(  # type: ignore[return-value]
            containers[0], (reg_access, size), self.plain_fields, containers, reg_access, size)

    def plain_fields(self, containers: list[etree._Element], reg_access: str | None,
                     size: int) -> tuple[list[Field], bool, str] | None:
        """The fields of a register straight from the XML, when every one is plain (name, bit
        position as decimals inside the register, standard or no access, description, standard
        modifiedWriteValues/readAction, plain enumerated values; no derivedFrom): the common case,
        and the bulk of an import. None sends the register down the general path
        (``_Importer.items`` + ``build_field``), which also does all the warning. The flag says the
        fields need no check_fields (they neither overlap nor leave the register); their lines,
        which only check_fields' warnings need, are read again then (``_field_lines``). Last, the
        register's access: ``reg_access``, or when None, what the fields say (``_fields_access``)."""
        fields: list[Field] = []
        append = fields.append
        keep = self.keep_descriptions
        bits = _BIT_NUMBER
        exact = _ACCESS_EXACT
        used = 0
        clean = True
        index: _FieldIndex | None = None  # made for the first derived field
        for child in containers:
            for c in child[:]:
                if c.tag != "field":
                    return None
                # (Other attributes mean nothing; most fields have none: keys() is the cheap test.)
                df = c.get("derivedFrom") if c.keys() else None
                if df is None:
                    kids = c[:]
                else:
                    # Derived from an earlier field of this register (CH1_IEN from CH0_IEN...):
                    # its children once the derivation is applied, read as a plain field's.
                    if index is None:
                        index = _FieldIndex(containers)
                    kids = _derived_children(index, c, df.strip(), 0)
                    if kids is None:
                        return None
                # One pass over the children, dispatching on the tag (the last of a repeated
                # child wins, as in the general path's dict). A position child that is present
                # but empty is "" (present, not a number); any other child sends the field down
                # the general path.
                name = desc = bo = bw = acc = br = lo = hi = mwv = action = evs = None
                for x in kids:
                    t = x.tag
                    if t == "name":
                        name = x.text
                    elif t == "description":
                        desc = x.text
                    elif t == "bitOffset":
                        bo = x.text or ""
                    elif t == "bitWidth":
                        bw = x.text
                    elif t == "access":
                        acc = x.text
                    elif t == "bitRange":
                        br = x.text or ""
                    elif t == "lsb":
                        lo = x.text or ""
                    elif t == "msb":
                        hi = x.text or ""
                    elif t == "enumeratedValues":
                        if evs is None:
                            evs = [x]
                        else:
                            evs.append(x)
                    elif t == "modifiedWriteValues":
                        mwv = x.text
                        if mwv is not None and mwv not in MODIFIED_WRITE_VALUES:
                            return None
                    elif t == "readAction":
                        action = x.text
                        if action is not None and action not in READ_ACTIONS:
                            return None
                    else:
                        return None
                # The same precedence as build_field: bitOffset, then lsb + msb, then bitRange.
                if bo is not None:
                    lsb, width = bits.get(bo), bits.get(bw)
                elif lo is not None and hi is not None:
                    lsb, top = bits.get(lo), bits.get(hi)
                    if lsb is None or top is None or top < lsb:
                        return None
                    width = top - lsb + 1
                elif br is not None:
                    pos = _BIT_RANGES.get(br) or _bit_range(br)
                    if pos is None:
                        return None
                    lsb, width = pos
                else:
                    return None
                if not name or lsb is None or not width or lsb >= size or width > size or "%s" in name:
                    return None
                if acc is not None:
                    acc = exact.get(acc)
                    if acc is None:
                        return None
                else:
                    acc = reg_access
                name = name.strip()
                if not name:
                    return None
                if desc and keep:  # _squeeze, inlined for the common one-line description
                    desc = (desc.strip(" ") or None) if desc.isprintable() and "  " not in desc else _squeeze(desc)
                else:
                    desc = None
                if evs is None:
                    append(Field(name, lsb, width, acc, mwv, action, None, [], desc, None))
                else:
                    enums = self.plain_enums(evs, width)
                    if enums is None:
                        return None
                    append(Field(name, lsb, width, acc, mwv, action, None, enums, desc, None))
                m = ((1 << width) - 1) << lsb
                if used & m:
                    clean = False
                used |= m
        if reg_access is None:  # _fields_access, inlined
            accesses = {f.access for f in fields}
            missing = None in accesses
            accesses.discard(None)
            reg_access = _access_of(accesses) or "read-write"
            if missing:
                for f in fields:
                    if f.access is None:
                        f.access = reg_access
        return fields, clean and used.bit_length() <= size, reg_access

    def plain_enums(self, evs: list[etree._Element], width: int) -> list[EnumSet] | None:
        """The enumeratedValues sets of a plain field (at most two), or None if one is not plain."""
        if len(evs) > 2:
            return None
        memo = self.plain_enum_memo
        enums: list[EnumSet] = []
        for ev in evs:
            if not len(ev) and not ev.keys():
                # An empty set (some vendors give every field an <enumeratedValues></enumeratedValues>):
                # what plain_enum_set makes of it, without serializing it for the memo.
                es = self.empty_enum_set
                if es is None:
                    es = self.empty_enum_set = EnumSet(None, "read-write", [])
                enums.append(es)
                continue
            # Vendor files repeat the same sets many times over (ENABLE/DISABLE...): equal
            # XML gives an equal set, built once and shared (the model is read-only).
            text = tostring(ev, encoding=str, with_tail=False)
            key = (text, width)
            es = memo.get(key)
            if es is None:
                # Attributes serialize as name="value": without that in the text, no element of
                # the set has one (and plain_enum_set need not look).
                es = memo[key] = self.plain_enum_set(ev, width, '="' in text)
                if es is None:
                    return None
            enums.append(es)
        return enums

    def plain_enum_set(self, el: etree._Element, width: int, attributes: bool = True) -> EnumSet | None:
        """An <enumeratedValues> straight from the XML when nothing in it needs a warning or a
        lookup (no derivedFrom, isDefault, odd usage, bad or repeated values); else None. Gives
        what ``build_enum_set`` gives for the same element. ``attributes`` False: the caller
        knows that no element of the set has an attribute."""
        if attributes and len(el.attrib):
            return None
        full = (1 << width) - 1
        name = usage = None
        values: list[EnumValue] = []
        seen: set[tuple[int, int]] = set()
        keep = self.keep_descriptions
        parsed_values = self.enum_value_texts
        for v in el[:]:
            tag = v.tag
            if tag == "enumeratedValue":
                if attributes and len(v.attrib):
                    return None
                vname = text = d = None
                for y in v[:]:  # one pass, dispatching on the tag (the last of a repeated child wins)
                    t = y.tag
                    if t == "name":
                        vname = y.text
                    elif t == "value":
                        text = y.text
                    elif t == "description":
                        d = y.text
                    else:
                        return None
                if not vname or not text:
                    return None
                vname = vname.strip()
                if not vname:
                    return None
                # A file spells its values a few ways over and over ("#0", "#1", "0x1"): each
                # distinct text is parsed once.
                parsed = parsed_values.get(text)
                if parsed is None:
                    parsed = parsed_values[text] = parse_enum_value(text) or (-1, None)
                value, m = parsed
                if value < 0:
                    return None
                vmask = full if m is None else m & full
                key = (value, vmask)
                if value & ~full or key in seen:
                    return None
                seen.add(key)
                if d and keep:  # _squeeze, inlined for the common one-line description
                    d = (d.strip(" ") or None) if d.isprintable() and "  " not in d else _squeeze(d)
                else:
                    d = None
                values.append(EnumValue(vname, value, vmask, False, d))
            elif tag == "name":
                name = v.text
            elif tag == "usage":
                usage = v.text
            elif tag != "headerEnumName":
                return None
        if usage is not None and usage not in ENUM_USAGES:
            return None
        name = name.strip() if name else None
        return EnumSet(name or None, usage or "read-write", values)

    def build_field(self, n: _Node, reg_access: str | None, size: int) -> Field | None:
        # The hot path of an import (most elements are fields): common forms are inlined.
        p = n.props
        name = n.name
        dim: Dim | None = None
        if not name or "%s" in name or not p.keys().isdisjoint(_DIM):
            named = self.array_name(n)
            if named is None:
                return None
            name, dim = named
        lsb: int | None
        width: int | None
        bo, bw = p.get("bitOffset"), p.get("bitWidth")
        if bo is not None and bw is not None and bo.isdecimal() and bw.isdecimal() and bo.isascii() and bw.isascii() \
                and len(bo) < 20 and len(bw) < 20:
            lsb, width = int(bo), int(bw)
        elif "bitOffset" in p:
            lsb = self.int_prop(n, "bitOffset")
            width = self.int_prop(n, "bitWidth") if "bitWidth" in p else 1
        elif ("lsb" in p and "msb" in p) or "bitRange" in p:
            if "bitRange" in p and not ("lsb" in p and "msb" in p):
                br = p["bitRange"] or ""
                m = _BITRANGE_RE.match(br) if len(br) <= _MAX_DIGITS else None
                lo, hi = (int(m.group(2)), int(m.group(1))) if m is not None else (None, None)
            else:
                lo, hi = self.int_prop(n, "lsb"), self.int_prop(n, "msb")
            if lo is not None and hi is not None and hi < lo:
                self.warn(n.line, n, f"field msb {hi} is below its lsb {lo}; read as bits {lo}:{hi}")
                lo, hi = hi, lo
            lsb, width = (lo, hi - lo + 1) if lo is not None and hi is not None else (None, None)
        else:
            lsb = width = None
        if lsb is not None and width is not None and width <= 0:
            self.warn(n.line, n, f"field width {width} is not positive; skipped")
            return None
        if lsb is None or width is None:
            self.warn(n.line, n, "field without a valid bit position (bitOffset/bitWidth, lsb/msb or "
                                 "bitRange); skipped")
            return None
        # Bit numbers are bounded by the register: a field that starts beyond it (or is wider than
        # it) is dropped, so no mask ever has more than 2 x 64 bits. (A field that merely runs
        # past the register's end is kept, with check_fields' warning.)
        last = lsb + (dim.count - 1) * dim.increment if dim is not None else lsb
        if last >= size or width > size or (dim is not None and dim.count > size):
            arr = f", {dim.count} elements {dim.increment} bits apart" if dim is not None else ""
            self.warn(n.line, n, f'field "{name}" (bit offset {lsb}, width {width}{arr}) lies outside the '
                                 f"{size}-bit register; skipped")
            return None
        acc = p.get("access")
        access = (_ACCESS_EXACT.get(acc) or self.access_prop(n) if acc else None) or reg_access
        enums = []
        if n.kids:
            for e in n.kids.get("items", ()):
                s = self.build_enum_set(e, width)
                if s is not None:
                    enums.append(s)
            if len(enums) > 2:
                self.warn(n.line, n, f"{len(enums)} enumeratedValues sets; at most 2 (read and write) expected")
        desc = p.get("description") if self.keep_descriptions else None
        return Field(name, lsb, width, access,
                     self.choice_prop(n, "modifiedWriteValues", MODIFIED_WRITE_VALUES) if "modifiedWriteValues" in p else None,
                     self.choice_prop(n, "readAction", READ_ACTIONS) if "readAction" in p else None,
                     self.write_constraint(n) if n.wc is not None else None, enums,
                     _squeeze(desc) if desc else None, dim)

    def build_enum_set(self, raw: _Node, width: int) -> EnumSet | None:
        key = id(raw)
        if key in self.enum_memo:
            hit = self.enum_memo[key]
            # Shared only when the field width matches; else rebuild to check values against it.
            if hit is None or all(v.is_default or v.value >> width == 0 for v in hit.values):
                return hit
        n = self.resolve(raw)
        usage = self.choice_prop(n, "usage", ENUM_USAGES) or "read-write"
        full = (1 << width) - 1
        values: list[EnumValue] = []
        seen: dict[tuple[int, int], str] = {}
        for v in n.kids.get("items", []):
            vname = v.name
            if not vname:
                self.warn(v.line, n, "<enumeratedValue> without <name>; skipped")
                continue
            is_default = (v.get("isDefault") or "").lower() in ("true", "1")
            text = v.get("value")
            if text is None:
                if not is_default:
                    self.warn(v.line, n, f'enumeratedValue "{vname}" has neither <value> nor '
                                                "<isDefault>; skipped")
                    continue
                values.append(EnumValue(vname, 0, 0, True, self.description(v)))
                continue
            parsed = parse_enum_value(text)
            if parsed is None:
                self.warn(v.line_of("value"), n, f'enumeratedValue "{vname}": value "{_shown(text)}" '
                                                        "is not a number; skipped")
                continue
            value, mask = parsed
            mask = full if mask is None else mask & full
            if value >= _MAX_VALUE:
                self.warn(v.line_of("value"), n, f'enumeratedValue "{vname}": value "{_shown(text)}" does not fit '
                                                 "in 64 bits (no register is wider); skipped")
                continue
            if value & ~full:
                self.warn(v.line_of("value"), n,
                          f'enumeratedValue "{vname}" = {value:#x} does not fit in the field\'s {width} bits')
            dup = seen.get((value, mask))
            if dup is not None and not is_default:
                self.warn(v.line_of("value"), n, f'enumeratedValue "{vname}" repeats the value of "{dup}"')
            seen.setdefault((value, mask), vname)
            values.append(EnumValue(vname, value, mask, is_default, self.description(v)))
        out = EnumSet(n.name or None, usage, values)
        self.enum_memo[key] = out
        return out

    def write_constraint(self, n: _Node) -> WriteConstraint | None:
        wc = n.wc
        if wc is None:
            return None
        out = WriteConstraint()
        for tag, (text, line) in wc.items():
            if tag in ("writeAsRead", "useEnumeratedValues"):
                setattr(out, "write_as_read" if tag == "writeAsRead" else "use_enumerated_values",
                        text.lower() in ("true", "1"))
            elif tag not in ("minimum", "maximum"):
                self.warn(line, n, f"unknown element <{tag}> in <writeConstraint> ignored")
        if "minimum" in wc or "maximum" in wc:
            lo = parse_int(wc.get("minimum", ("", 0))[0])
            hi = parse_int(wc.get("maximum", ("", 0))[0])
            line = wc.get("minimum", wc.get("maximum", ("", n.line)))[1]
            if lo is None or hi is None:
                self.warn(line, n, "writeConstraint <range> needs numeric <minimum> and <maximum>; ignored")
            elif lo > hi:
                self.warn(line, n, f"writeConstraint range {lo}..{hi} is empty; ignored")
            elif hi >= _MAX_VALUE:
                self.warn(line, n, "writeConstraint range does not fit in 64 bits (no register is wider); ignored")
            else:
                out.range = (lo, hi)
        return out

    # -- sanity checks -------------------------------------------------------------------------
    def check_fields(self, n: _Node, fields: list[Field], lines: list[int], size: int) -> None:
        """Fields inside the register, not overlapping (except a read field with a write field)."""
        if not fields:
            return
        used = 0
        for f in fields:
            if f.dim is not None:
                break
            m = ((1 << f.width) - 1) << f.lsb
            if used & m:
                break
            used |= m
        else:  # no arrays, no overlap: only the register's width is left to check
            if used.bit_length() <= size:
                return
        spans: list[tuple[int, int, int]] = []  # (lo, hi, index into fields)
        for k, f in enumerate(fields):
            if f.dim is None:
                spans.append((f.lsb, f.lsb + f.width - 1, k))
            else:
                inc = f.dim.increment
                spans.extend((f.lsb + i * inc, f.lsb + i * inc + f.width - 1, k) for i in range(f.dim.count))
        spans.sort()
        top = -1
        clean = True
        for lo, hi, _ in spans:
            if lo <= top:
                clean = False
            if hi > top:
                top = hi
        if top >= size:
            for k, f in enumerate(fields):
                ftop = max(hi for lo, hi, j in spans if j == k)
                if ftop >= size:
                    self.warn(lines[k], n,
                              f'field "{f.name}" (bits {ftop}:{f.lsb}) lies outside the {size}-bit register')
        if clean:
            return
        active: list[tuple[int, int, int]] = []
        for span in spans:
            lo = span[0]
            active = [a for a in active if a[1] >= lo]
            f = fields[span[2]]
            for a in active:
                g = fields[a[2]]
                if g is not f and {f.access, g.access} != {"read-only", "write-only"}:
                    self.warn(lines[span[2]], n, f'fields "{g.name}" and "{f.name}" overlap')
                    break
            active.append(span)

    def check_overlaps(self, items: list[_Node], regs: list[Register]) -> None:
        """Registers at the same offset must say they are alternates of each other."""
        by_offset: dict[int, Register] = {}
        for r in regs:
            other = by_offset.get(r.offset)
            if other is None:
                by_offset[r.offset] = r
                continue
            if r.alternate_register or r.alternate_group or other.alternate_register or other.alternate_group:
                continue
            if {r.access, other.access} == {"read-only", "write-only"}:
                continue
            raw = next((x for x in items if x.name == r.name.replace("%s", "") or x.name == r.name), None)
            line = raw.line if raw is not None else 0
            self.warn(line, raw.path() if raw is not None else r.name,
                      f'register "{r.name}" has the same address as "{other.name}" and neither is marked '
                      "alternateRegister/alternateGroup")

    def check_blocks(self, p: Peripheral) -> None:
        """Registers should lie inside the peripheral's addressBlocks; one warning per peripheral."""
        if not p.address_blocks:
            return
        blocks = [(b.offset, b.offset + b.size) for b in p.address_blocks]
        # Coalesce touching or overlapping blocks, so a register is inside iff it is inside one span.
        spans: list[list[int]] = []
        for b0, b1 in sorted(blocks):
            if spans and b0 <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], b1)
            else:
                spans.append([b0, b1])
        # Peripherals that share their registers (derivedFrom) often share their blocks too: the
        # walk is done once for them when it found nothing outside.
        key = (id(p.registers), id(p.clusters), *(b for span in spans for b in span))
        if key in self.blocks_clean:
            return
        outside: list[tuple[str, int, Register]] = []
        _regs_outside(p.registers, p.clusters, 0, p.name, [(b0, b1) for b0, b1 in spans], outside)
        if not outside:
            self.blocks_clean[key] = (p.registers, p.clusters)  # (kept alive for their ids)
        else:
            path, off, r = outside[0]
            more = f" and {len(outside) - 1} more" if len(outside) > 1 else ""
            self.warn(self.reg_lines.get(id(r), 0), path,
                      f"register at offset {off:#x}{more} lie(s) outside {p.name}'s addressBlocks "
                      f"({', '.join(f'{b0:#x}..{b1 - 1:#x}' for b0, b1 in blocks)})")

    def build_peripheral(self, raw: _Node, dev_ctx: _Ctx) -> list[Peripheral]:
        n = self.resolve(raw)
        named = self.array_name(n)
        if named is None:
            return []
        name, dim = named
        base = self.int_prop(n, "baseAddress")
        if base is None:
            self.warn(n.line, n, "peripheral without <baseAddress>; skipped")
            return []
        ctx = self.ctx_of(n, dev_ctx)
        regs, clusters = self.build_block(n.kids.get("items", []), ctx)
        if not regs and not clusters:
            self.warn(n.line, n, "peripheral has no registers")
        blocks = []
        for b in n.kids.get("blocks", []):
            off, size = self.int_prop(b, "offset"), self.int_prop(b, "size")
            if off is None or size is None:
                self.warn(b.line, n, "addressBlock needs <offset> and <size>; ignored")
                continue
            blocks.append(AddressBlock(off, size, b.get("usage")))
        irqs = []
        for i in n.kids.get("interrupts", []):
            value = self.int_prop(i, "value")
            if not i.name or value is None:
                self.warn(i.line, n, "interrupt needs <name> and <value>; ignored")
                continue
            irqs.append(Interrupt(i.name, value, self.description(i)))
        count = dim_count(dim) * self.block_instances(regs, clusters)
        self.check_instances(n, "peripheral", count)
        self.total_instances += count
        if self.total_instances > MAX_REGISTER_INSTANCES:
            raise self.fatal(n.line, f'peripheral "{n.path()}" brings the chip to {self.total_instances:,} '
                             f"register instances (arrays expanded), more than the {MAX_REGISTER_INSTANCES:,} "
                             "a chip may have")
        # The peripheral that declared the registers this one shares (end of a derivedFrom chain).
        owner = self.items_owner.get(id(n.kids.get("items")))
        derived = owner.name if owner is not None and owner is not raw else None
        out: list[Peripheral] = []
        for k in range(dim.count if dim else 1):
            pname = name.replace("[%s]", dim.indices[k]).replace("%s", dim.indices[k]) if dim else name
            pbase = base + (k * dim.increment if dim else 0)
            if pbase >= _MAX_VALUE:
                self.warn(n.line, n, f'peripheral "{pname}" (element {k} of the array) lies beyond the 64-bit '
                          "address space; it and the elements after it are skipped")
                break
            # Elements of a peripheral array share the first element's registers.
            p = Peripheral(pname, pbase, n.get("groupName") or None, self.description(n), blocks, irqs, regs,
                           clusters, None, derived if k == 0 or derived else out[0].name)
            if k == 0:
                self.check_blocks(p)
            out.append(p)
        return out


def _regs_outside(regs: list[Register], clusters: list[Cluster], base: int, prefix: str,
                  spans: list[tuple[int, int]], outside: list[tuple[str, int, Register]]) -> None:
    """Collect into ``outside`` the registers (first or last array element) not inside one of the
    ``spans`` (sorted, disjoint). (A module function, not a recursive closure: that would be a
    reference cycle per call.)"""
    s0, s1 = spans[0] if len(spans) == 1 else (-1, -1)
    for r in regs:
        nbytes = r.size >> 3 or 1
        d = r.dim
        last = (d.count - 1) * d.increment if d is not None else 0
        off = base + r.offset
        if s0 <= off and off + last + nbytes <= s1:
            continue  # one span (the common case): first and last element inside, so all are
        if not _inside(spans, off, off + nbytes):
            outside.append((f"{prefix}.{r.name}", off, r))
        elif last and not _inside(spans, off + last, off + last + nbytes):
            outside.append((f"{prefix}.{r.name}", off + last, r))
    for c in clusters:
        last = (c.dim.count - 1) * c.dim.increment if c.dim else 0
        for off in sorted({base + c.offset, base + c.offset + last}):
            _regs_outside(c.registers, c.clusters, off, f"{prefix}.{c.name}", spans, outside)


def _inside(spans: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(b0 <= lo and hi <= b1 for b0, b1 in spans)


def _field_lines(containers: list[etree._Element] | None) -> list[int]:
    """The line of each <field> in ``containers`` (those plain_fields built, in its order)."""
    return [c.sourceline or 0 for child in containers or () for c in child]


class _FieldIndex:
    """The fields of a register's containers by name, as ``_Importer.children_index`` finds them
    for a derivedFrom there (the first field of each stripped name), and by position."""

    __slots__ = ("names", "positions")

    def __init__(self, containers: list[etree._Element]):
        self.names: dict[str, etree._Element] = {}
        self.positions: dict[etree._Element, int] = {}
        for child in containers:
            for f in child:
                self.positions[f] = len(self.positions)
                name = None
                for x in f.iterchildren("name"):  # (the last one counts, as in the general path)
                    name = x.text
                if name and (name := name.strip()):
                    self.names.setdefault(name, f)


def _derived_children(index: _FieldIndex, field: etree._Element, ref: str, depth: int) -> list[etree._Element] | None:
    """The children of ``field`` with its derivedFrom ``ref`` applied as ``_Importer.merge`` does
    (the base's simple children overridden by its own; its own enumeratedValues, else the
    base's), when the lookup finds an earlier field of the same register; else None (the general
    path derives it, with its warnings). A short chain of such derivations is followed."""
    base = index.names.get(ref) if "." not in ref else None
    if base is None or depth > 8 or index.positions[base] >= index.positions[field]:
        return None
    base_df = base.get("derivedFrom")
    base_kids = base[:] if base_df is None else _derived_children(index, base, base_df.strip(), depth + 1)
    if base_kids is None:
        return None
    own = field[:]
    merged = {x.tag: x for x in base_kids if x.tag != "enumeratedValues"}
    merged.update((x.tag, x) for x in own if x.tag != "enumeratedValues")
    evs = [x for x in own if x.tag == "enumeratedValues"] or [x for x in base_kids if x.tag == "enumeratedValues"]
    return [*merged.values(), *evs]


def _squeeze(text: str) -> str | None:
    """Whitespace runs as single spaces, ends stripped; None if nothing is left."""
    # Most descriptions are one line with single spaces: isprintable() is False for every
    # whitespace character but the ASCII space, so those need no split/join.
    if text.isprintable() and "  " not in text:
        return text.strip(" ") or None
    return " ".join(text.split()) or None


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b


def _fields_access(fields: list[Field]) -> str:
    """The access of a register that declares none: from its fields (those without one get it)."""
    access = _access_from_fields(fields) or "read-write"
    for f in fields:
        if f.access is None:
            f.access = access
    return access


def _plain_int(text: str) -> int | None:
    """A hex (0x...) or decimal number that surely fits in 64 bits, or None (then int_prop reads
    it, with its warnings)."""
    if text[:2] in ("0x", "0X"):
        if len(text) <= 18:
            try:
                return int(text[2:], 16)
            except ValueError:
                return None
        return None
    if len(text) <= 19 and text.isdecimal() and text.isascii():
        return int(text)
    return None


def _access_from_fields(fields: list[Field]) -> str | None:
    return _access_of({f.access for f in fields if f.access is not None})


def _access_of(accesses: set[str | None]) -> str | None:
    """A register's access from the set of its fields' accesses (without None)."""
    if not accesses:
        return None
    if accesses == {"read-only"}:
        return "read-only"
    if accesses <= {"write-only", "writeOnce"}:
        return "write-only" if accesses == {"write-only"} else "writeOnce"
    return "read-write"


def _find_enum(items: Callable[[_Node], list[_Node]], scope: _Node, name: str, exclude: _Node) -> _Node | None:
    for k in items(scope):
        if k.kind == "enumeratedValues":
            if k.name == name and k is not exclude:
                return k
        elif k.kind in ("register", "cluster", "field"):
            hit = _find_enum(items, k, name, exclude)
            if hit is not None:
                return hit
    return None


def _index_enums(items: Callable[[_Node], list[_Node]], node: _Node, index: dict[str, _Node]) -> None:
    for k in items(node):
        if k.kind == "enumeratedValues":
            if k.name:
                index.setdefault(k.name, k)
        elif k.kind != "enumeratedValue":
            _index_enums(items, k, index)


def parse_dim_index(text: str) -> list[str] | None:
    """``0-3`` -> 0..3, ``A-D`` -> A..D, ``a,b,c`` -> [a, b, c]; None when malformed."""
    text = text.strip()
    m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if m:
        if len(m.group(1)) > 9 or len(m.group(2)) > 9:
            return None
        lo, hi = int(m.group(1)), int(m.group(2))
        # Never more than the largest <dim>: a broken range must not allocate a billion strings.
        return [str(i) for i in range(lo, hi + 1)] if lo <= hi and hi - lo < _MAX_DIM else None
    m = re.fullmatch(r"([A-Z])\s*-\s*([A-Z])", text)
    if m:
        lo, hi = ord(m.group(1)), ord(m.group(2))
        return [chr(i) for i in range(lo, hi + 1)] if lo <= hi else None
    parts = [p.strip() for p in text.split(",")]
    ok = set(string.ascii_letters + string.digits + "_")
    if parts and all(p and set(p) <= ok for p in parts):
        return parts
    return None


def _strip_namespaces(root: etree._Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = etree.QName(el).localname


def _cpu(el: etree._Element | None) -> dict | None:
    if el is None:
        return None
    out: dict = {}
    for c in el:
        if not isinstance(c.tag, str) or len(c):
            continue
        text = (c.text or "").strip()
        if text.lower() in ("true", "false"):
            out[c.tag] = text.lower() == "true"
        else:
            v = parse_int(text)
            out[c.tag] = v if v is not None and c.tag not in ("name", "revision") else text
    return out or None


def import_svd(path: str | os.PathLike[str], chip_name: str | None = None, *, keep_descriptions: bool = True,
               display_path: str | None = None) -> tuple[Chip, list[Diagnostic]]:
    """Import one SVD file: the resolved chip and the warnings (``DiagnosticError`` if unusable).
    Runs the compiled twin of this module when there is a current one (``implementation``)."""
    return _IMPORT(path, chip_name, keep_descriptions=keep_descriptions, display_path=display_path)


def _import_svd(path: str | os.PathLike[str], chip_name: str | None = None, *, keep_descriptions: bool = True,
                display_path: str | None = None) -> tuple[Chip, list[Diagnostic]]:
    """``import_svd``, by the code of this module. The stages, each a function of this module
    (bench/svd_import.py --phases times them one by one): ``read_svd_bytes``, ``parse_svd``,
    ``_Importer.read`` of the device (``_read_device``), ``_build_peripherals``, then the chip."""
    file = display_path if display_path is not None else str(path)
    imp = _Importer(file, keep_descriptions)
    data = read_svd_bytes(path, file)
    root = parse_svd(data, file)
    with _importing(imp):
        dev, periph_nodes = _read_device(imp, root)
        width = imp.int_prop(dev, "width") or 32  # (before the peripherals: the order of the warnings)
        aub = imp.int_prop(dev, "addressUnitBits") or 8
        peripherals = _build_peripherals(imp, dev, periph_nodes)
        if not peripherals:
            raise imp.fatal(root.sourceline or 1, "no usable peripheral in this SVD file")
        chip = Chip(
            name=chip_name or dev.name or Path(file).stem,
            device_name=dev.name or Path(file).stem,
            vendor=dev.get("vendor") or None,
            width=width,
            address_unit_bits=aub,
            peripherals=peripherals,
            source={"file": os.path.basename(file), "sha256": hashlib.sha256(data).hexdigest()},
            cpu=_cpu(root.find("cpu")),
            description=imp.description(dev),
        )
        return chip, imp.diagnostics()


@contextlib.contextmanager
def _importing(imp: _Importer) -> Iterator[None]:
    """The phases of an import (``_read_device``, ``_build_peripherals``) run inside this: the cyclic
    GC off (the import allocates ~10 objects per SVD element, all alive until it returns: the GC's
    passes over them are pure overhead, a third of the import time on esp32s3.svd), too deep a
    nesting as an error of the file, and the nodes' cycles broken at the end (``_release``).

    At the end the young objects go straight to the GC's oldest generation (``_promote``): left
    young, the first allocation after ``gc.enable()`` ran a young-generation pass over every
    object of the import, 5% of the import's time, to find them all alive, and another pass moved
    them on later."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    except RecursionError:
        raise imp.fatal(1, "elements nested too deeply (or a derivedFrom chain too long) to import") from None
    finally:
        _release(imp)
        if gc_was_enabled:
            _promote()
            gc.enable()


def _promote() -> None:
    """Move every object the cyclic GC tracks into its oldest generation without a pass over them
    (``gc.freeze()`` then ``gc.unfreeze()``: two list splices, whatever the number of objects), as
    two young-generation passes would have done after finding them alive. Garbage among them is
    collected by the next full collection. Not done when objects are kept frozen already, by the
    program (``gc.freeze()`` before a fork, say) or the interpreter (CPython 3.12 keeps some of its
    own tuples frozen from the start): ``unfreeze`` would release those too."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def read_svd_bytes(path: str | os.PathLike[str], file: str) -> bytes:
    """The file's bytes, bounded (``DiagnosticError`` naming ``file`` when it cannot be read)."""
    try:
        return read_bounded(Path(path), MAX_SVD_BYTES)  # a FIFO would block, /dev/zero would not end
    except IsADirectoryError:
        raise DiagnosticError(Diagnostic(file, 1, 1, "", ERROR, "cannot read SVD file: a directory")) from None
    except ValueError:
        raise DiagnosticError(Diagnostic(file, 1, 1, "", ERROR, "cannot read SVD file: not a regular file (a "
                                         "device or a pipe?)")) from None
    except OverflowError:
        raise DiagnosticError(Diagnostic(file, 1, 1, "", ERROR, f"SVD file larger than {MAX_SVD_BYTES:,} bytes "
                                         "(the largest vendor SVDs are about 25 MB): not imported")) from None
    except OSError as e:
        raise DiagnosticError(Diagnostic(file, 1, 1, "", ERROR, f"cannot read SVD file: {e.strerror or e}")) from None


def parse_svd(data: bytes, file: str) -> etree._Element:
    """The XML tree of an SVD file's bytes: its <device> root, namespaces stripped
    (``DiagnosticError`` at the syntax error's FILE:LINE:COLUMN, or for another root)."""
    # libxml2's default limits stay on (nesting depth, text size): no SVD comes near them.
    # remove_blank_text drops the indentation between elements (a text node per element, about
    # a third of the parse and free time); whitespace inside a leaf like <name> </name> is kept.
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False, no_network=True,
                             load_dtd=False, remove_blank_text=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        line, col = e.position if e.position and e.position[0] else (1, 1)
        # libxml2 appends ", line N, column M", which the FILE:LINE:COL prefix already says.
        msg = re.sub(r",? line \d+, column \d+$", "", e.msg or "") or "syntax error"
        raise DiagnosticError(Diagnostic(file, line, max(col, 1), "", ERROR, f"not well-formed XML: {msg}")) from None
    except ValueError as e:
        raise DiagnosticError(Diagnostic(file, 1, 1, "", ERROR, f"not an XML file: {e}")) from None
    if root is None:
        raise DiagnosticError(Diagnostic(file, 1, 1, "", ERROR, "empty XML document"))
    if isinstance(root.tag, str) and root.tag.startswith("{"):
        _strip_namespaces(root)
    if root.tag != "device":
        raise DiagnosticError(Diagnostic(file, root.sourceline or 1, 1, "", ERROR,
                                         f"not a CMSIS-SVD file: root element is <{root.tag}>, not <device>"))
    return root


def _release(imp: _Importer) -> None:
    """Break the node <-> parent cycles: the nodes and the XML tree are then freed by reference
    counting when the import returns, not left to a later GC pass."""
    for n in imp.nodes:
        n.parent = n.resolved = None


def _read_device(imp: _Importer, root: etree._Element) -> tuple[_Node, list[_Node]]:
    """Phase 1: the device's node and its peripherals' (their registers read, their fields not)."""
    dev = imp.read(root, "device", None)
    imp.device = dev
    periph_nodes = dev.kids.get("items", [])
    for raw in periph_nodes:
        if raw.kids.get("items"):
            imp.items_owner[id(raw.kids["items"])] = raw
    if not periph_nodes:
        raise imp.fatal(root.sourceline or 1, "no <peripherals> in this SVD file")
    return dev, periph_nodes


def _build_peripherals(imp: _Importer, dev: _Node, periph_nodes: list[_Node]) -> list[Peripheral]:
    """Phases 2 and 3: every peripheral resolved and built (the first of two of one name kept)."""
    dev_ctx = imp.ctx_of(dev, _Ctx())
    peripherals: list[Peripheral] = []
    seen: dict[str, int] = {}
    for raw in periph_nodes:
        for p in imp.build_peripheral(raw, dev_ctx):
            key = p.name.upper()
            if key in seen:
                imp.warn(raw.line, p.name, f'peripheral "{p.name}" is defined twice; the first one is kept')
                continue
            seen[key] = 1
            peripherals.append(p)
    return peripherals


# ---------------------------------------------------------------------------------------------
# The compiled twin (setup.py): this code, compiled by mypyc, about 20% less time per import.

TWIN = "clawgen.chips._svd_native"


def _twin() -> tuple[Callable[..., tuple[Chip, list[Diagnostic]]] | None, str]:
    """(the compiled twin's import function, or None; what runs, in words). The twin is used only
    when it is an extension module built from this file's current text (``SOURCE_SHA256``, which
    setup.py writes into it): after an edit of this file without a new `pip install`, the code here
    runs, not a stale build of older code."""
    import importlib
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec(TWIN)
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return None, "interpreted (no compiled importer: clawgen was installed without a C compiler or mypyc)"
    twin = importlib.import_module(TWIN)
    here = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    if getattr(twin, "SOURCE_SHA256", None) != here:
        return None, ("interpreted (the compiled importer was built from another version of svd.py: "
                      "`pip install -e .` again to rebuild it)")
    return twin._import_svd, "compiled (mypyc)"


def implementation() -> str:
    """Which code ``import_svd`` runs: "compiled (mypyc)" or "interpreted (why)"."""
    return _IMPLEMENTATION


_IMPORT: Callable[..., tuple[Chip, list[Diagnostic]]] = _import_svd
_IMPLEMENTATION = "interpreted (this is the compiled twin itself)"
if __name__ == "clawgen.chips.svd":
    _compiled, _IMPLEMENTATION = _twin()
    if _compiled is not None:
        _IMPORT = _compiled
