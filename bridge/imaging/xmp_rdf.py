"""Where an XMP packet's top-level properties lie, as byte spans of the packet itself.

Extended XMP in JPEG (jpeg_xmp.py) moves whole top-level properties between two
packets. Doing that through an XML tree and back would rewrite the packet:
ElementTree renames every prefix it was not told about to ns0, ns1..., drops the
packet wrapper and re-escapes text. So the packet is parsed with expat (stdlib)
only to learn where things are, and every edit cuts or copies the original bytes:
each property keeps its prefix, its quoting, its escaping and its layout.

`outline(packet)` gives the rdf:RDF element and, for each rdf:Description in it,
the properties in attribute form (`dc:format="image/jpeg"`) and in element form
(`<dc:subject>...</dc:subject>`), each with its namespace URI and its span. It
raises ValueError for a packet that is not well-formed XML, has a DTD (XMP forbids
them, and entity expansion is how hostile XML grows), or is not UTF-8.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass, field

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XML_NS = "http://www.w3.org/XML/1998/namespace"

# One attribute in a start tag: leading whitespace, name, value in either quote.
_ATTRIBUTE = re.compile(rb"""(\s+)([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')""")
_TAG_CLOSE = re.compile(rb"\s*(/?)>")
_WHITESPACE = b" \t\r\n"
_PREFIX_USE = re.compile(rb"[<\s/]([A-Za-z_][\w.-]*):[A-Za-z_]")


@dataclass(frozen=True)
class Property:
    """A top-level property: `start:end` covers it with the whitespace before it."""

    qname: str
    uri: str
    local: str
    start: int
    end: int
    attribute: bool

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class Description:
    """One rdf:Description: where its start tag ends (`tag_end` is the index of its
    `>` or `/>`), the namespaces in scope there (its own included) and its properties."""

    qname: str
    start: int
    tag_end: int
    end: int = 0
    empty: bool = False
    scope: dict[str, str] = field(default_factory=dict)
    own_prefixes: set[str] = field(default_factory=set)
    about: bytes = b""  # the rdf:about attribute as written, or b""
    properties: list[Property] = field(default_factory=list)


@dataclass
class Outline:
    rdf_prefix: str
    rdf_scope: dict[str, str]  # the namespaces in scope inside rdf:RDF
    rdf_end_tag: int | None  # index of `</rdf:RDF`; None when rdf:RDF is an empty element
    descriptions: list[Description]


@dataclass
class _Open:
    qname: str
    scope: dict[str, str]
    start: int
    tag_end: int
    empty: bool
    role: str  # "rdf", "description", "property" or "" (anything else)


def _start_tag(packet: bytes, at: int, qname: str) -> tuple[list[tuple[str, int, int]], int, bool]:
    """The attributes of the start tag at `at` as (name, start, end) spans, the index
    of its closing `>` or `/>`, and whether it is an empty-element tag."""
    pos = at + 1 + len(qname.encode())
    attrs = []
    while True:
        m = _ATTRIBUTE.match(packet, pos)
        if not m:
            break
        attrs.append((m.group(2).decode(), m.start(), m.end()))
        pos = m.end()
    close = _TAG_CLOSE.match(packet, pos)
    if not close:
        raise ValueError(f"cannot follow the start tag at byte {at}")
    return attrs, close.end() - len(close.group(1)) - 1, bool(close.group(1))


def _resolve(qname: str, scope: dict[str, str], attribute: bool = False) -> tuple[str, str]:
    prefix, _, local = qname.rpartition(":")
    if prefix == "xml":
        return XML_NS, local
    if attribute and not prefix:  # an attribute without a prefix is in no namespace
        return "", local
    return scope.get(prefix, ""), local


def outline(packet: bytes) -> Outline:
    """The first rdf:RDF's descriptions and their top-level properties (see the module doc)."""
    if packet[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\0" in packet[:64]:
        raise ValueError("the XMP packet is not UTF-8")
    parser = xml.parsers.expat.ParserCreate("utf-8")
    parser.ordered_attributes = True
    stack: list[_Open] = []
    result: Outline | None = None
    done = False

    def refuse_doctype(*_: object) -> None:
        raise ValueError("the XMP packet has a DTD")

    def start(qname: str, attributes: list[str]) -> None:
        at = parser.CurrentByteIndex
        scope = stack[-1].scope if stack else {}
        own = set()
        for name, value in zip(attributes[::2], attributes[1::2], strict=True):
            if name == "xmlns" or name.startswith("xmlns:"):
                if not own:  # shared with the parent until it changes: no copy per element
                    scope = dict(scope)
                prefix = name[6:]
                scope[prefix] = value
                own.add(prefix)
        uri, local = _resolve(qname, scope)
        parent = stack[-1].role if stack else ""
        spans, tag_end, empty = _start_tag(packet, at, qname)
        role = ""
        nonlocal result
        if not done and uri == RDF_NS and local == "RDF" and result is None:
            role = "rdf"
            result = Outline(qname.rpartition(":")[0], scope, None, [])
        elif parent == "rdf" and uri == RDF_NS and local == "Description" and result is not None:
            role = "description"
            d = Description(qname, at, tag_end, empty=empty, scope=scope, own_prefixes=own)
            for name, a, b in spans:
                a_uri, a_local = _resolve(name, scope, attribute=True)
                if name == "xmlns" or name.startswith("xmlns:") or a_uri in (RDF_NS, XML_NS):
                    if a_uri == RDF_NS and a_local == "about":
                        d.about = packet[a:b].lstrip(_WHITESPACE)
                    continue
                d.properties.append(Property(name, a_uri, a_local, a, b, attribute=True))
            result.descriptions.append(d)
        elif parent == "description":
            role = "property"
        stack.append(_Open(qname, scope, at, tag_end, empty, role))

    def end(qname: str) -> None:
        nonlocal done
        at = parser.CurrentByteIndex
        node = stack.pop()
        stop = node.tag_end + 2 if node.empty else packet.index(b">", at) + 1
        if node.role == "rdf" and result is not None and not done:
            result.rdf_end_tag = None if node.empty else at
            done = True
        elif node.role == "description" and result is not None:
            result.descriptions[-1].end = stop
        elif node.role == "property" and result is not None:
            start_at = node.start
            while start_at > 0 and packet[start_at - 1] in _WHITESPACE:
                start_at -= 1
            uri, local = _resolve(node.qname, node.scope)
            result.descriptions[-1].properties.append(
                Property(node.qname, uri, local, start_at, stop, attribute=False))

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(packet, True)
    except xml.parsers.expat.ExpatError as e:
        raise ValueError(f"the XMP packet is not well-formed: {e}") from None
    if result is None:
        raise ValueError("the XMP packet has no rdf:RDF element")
    return result


def edit(packet: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """The packet with each (start, end) span replaced by its bytes; spans must not overlap."""
    out, at = [], 0
    for a, b, text in sorted(edits, key=lambda e: (e[0], e[1])):
        if a < at:
            raise ValueError("overlapping edits")
        out += [packet[at:a], text]
        at = b
    out.append(packet[at:])
    return b"".join(out)


def used_prefixes(text: bytes) -> set[str]:
    """Every name prefix the text may use (element and attribute names; a few more at
    worst, which only costs an unneeded declaration), and "" for the default namespace."""
    return {m.decode() for m in _PREFIX_USE.findall(text)} | {""}


def declarations(scope: dict[str, str], only: set[str]) -> bytes:
    """`xmlns` attributes (each with a leading space) for the prefixes in `only` that
    `scope` binds."""
    out = b""
    for prefix, uri in scope.items():
        if prefix not in only:
            continue
        name = f"xmlns:{prefix}" if prefix else "xmlns"
        out += f' {name}="{_escape(uri)}"'.encode()
    return out


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
