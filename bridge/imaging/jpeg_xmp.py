"""Extended XMP in JPEG (XMP Specification Part 3, 1.1.3.1): packets over one APP1 segment.

A JPEG segment holds at most 65504 bytes of XMP. A larger packet is split by its
writer into a *standard* packet (its own APP1 segment, as usual) and an *extended*
serialisation carried in further APP1 segments tagged `http://ns.adobe.com/xmp/extension/`,
each with the 32-character GUID (the uppercase hex MD5 of the whole extension), the
extension's full length and the chunk's offset (both 32-bit big-endian). The standard
packet names the extension with `xmpNote:HasExtendedXMP="<GUID>"`; the two together
are one logical XMP tree.

How `Image` carries it: as one packet. On read the extension's rdf:Description
elements are added to the standard packet's rdf:RDF (RDF lets several descriptions of
one resource stand side by side; XMP readers join them), xmpNote:HasExtendedXMP is
removed, and a top-level property present in both parts is kept from the extension
(the extension is what its writer set aside, so it is taken as the later word). So
`Image.xmp` is the whole tree everywhere: PNG,
TIFF, WebP and PSD, which have no such limit, write it whole; tiff:Orientation is
reset by the usual byte edit wherever it was; and only the JPEG writer ever splits.
The other shapes were worse: carrying the extension beside the packet would make
every other writer merge it (or lose it), and re-serialising a parsed tree would
rename prefixes and rewrite the packet. Both edits here cut and copy the original
bytes at spans that xmp_rdf.outline() finds, so every property keeps its prefix,
its quoting and its escaping.

On write a packet that fits (after losing its padding) is written as before. One
that does not is split as the spec suggests: whole top-level properties move to the
extension, Camera Raw's settings (crs:) first, then the others largest first
(photoshop:DocumentAncestors, xmpMM:History, ...) until the standard packet fits in
STANDARD_MAX bytes with the xmpNote:HasExtendedXMP it gains; the small, common ones
(title, rights, keywords, rating) therefore stay where every reader sees them. A
description the split empties leaves the standard packet too; the extension has no
packet wrapper and is cut into chunks of CHUNK_MAX bytes by the JPEG writer.

Read is hostile-input safe: chunks are checked (one declared length, no more than the
file holds, offsets that tile it with no gap or overlap, the MD5), and any fault
drops the extension with a warning, keeping the standard packet as it was. Namespace
declarations copied onto moved descriptions are bounded (a hostile packet could
otherwise repeat one huge declaration on thousands of descriptions).
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass

from bridge.imaging import xmp as xmp_tags
from bridge.imaging import xmp_rdf

log = logging.getLogger(__name__)

EXTENSION_TAG = b"http://ns.adobe.com/xmp/extension/\0"
EXTENSION_HEADER = len(EXTENSION_TAG) + 32 + 8  # tag, GUID, full length, offset
NOTE_NS = "http://ns.adobe.com/xmp/note/"
CRS_NS = "http://ns.adobe.com/camera-raw-settings/1.0/"
STANDARD_MAX = 65502  # the spec's limit for the standard packet
CHUNK_MAX = 65400  # the chunk size writers commonly use (a segment could take 65458)


@dataclass(frozen=True)
class Chunk:
    """One extension segment's header and where its data lies in the file."""

    guid: bytes
    full_length: int
    offset: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def parse_chunk(body: bytes | memoryview, body_at: int) -> Chunk | None:
    """The chunk in an APP1 body that starts with EXTENSION_TAG (`body_at`: its file index)."""
    if len(body) < EXTENSION_HEADER:
        return None
    guid = bytes(body[len(EXTENSION_TAG): len(EXTENSION_TAG) + 32])
    full, offset = struct.unpack_from(">II", body, len(EXTENSION_TAG) + 32)
    return Chunk(guid, full, offset, body_at + EXTENSION_HEADER, body_at + len(body))


# -- read ------------------------------------------------------------------------------------
def extension_guid(packet: bytes) -> str | None:
    """The GUID a standard packet names in xmpNote:HasExtendedXMP, or None."""
    try:
        out = xmp_rdf.outline(packet)
    except ValueError:
        return None
    for prop in (p for d in out.descriptions for p in d.properties if _is_note(p)):
        value = _property_value(packet, prop)
        if value:
            return value
    return None


def read(packet: bytes | None, chunks: list[Chunk], data: bytes | memoryview) -> bytes | None:
    """The packet to carry: the standard one with its extension merged in when there is a
    valid one, else the standard one as it was (a fault is logged, never raised)."""
    if not chunks:
        return packet
    if packet is None:
        log.warning("JPEG has extended XMP but no standard XMP packet naming it; ignored")
        return None
    guid = extension_guid(packet)
    if guid is None:
        log.warning("JPEG has extended XMP that its XMP packet does not name; ignored")
        return packet
    extension = assemble(guid, chunks, data)
    if extension is None:
        return packet
    try:
        return merge(packet, extension)
    except ValueError as e:
        log.warning("JPEG extended XMP %s cannot be merged (%s); ignored", guid, e)
        return packet


def assemble(guid: str, chunks: list[Chunk], data: bytes | memoryview) -> bytes | None:
    """The extension named `guid`, or None (with a warning) when its chunks do not make it."""
    mine = sorted((c for c in chunks if c.guid == guid.encode("ascii", "replace")),
                  key=lambda c: c.offset)
    problem = None
    if not mine:
        problem = "is not in the file"
    elif len({c.full_length for c in mine}) != 1:
        problem = "has chunks that disagree on its length"
    elif mine[0].full_length > len(data):
        problem = f"declares {mine[0].full_length} bytes, more than the file holds"
    else:
        at = 0
        for c in mine:
            if c.offset != at:
                problem = "has a gap between chunks" if c.offset > at else "has overlapping chunks"
                break
            at += c.size
        if problem is None and at != mine[0].full_length:
            problem = f"has {at} bytes of the {mine[0].full_length} it declares"
    if problem:
        log.warning("JPEG extended XMP %s %s; ignored", guid, problem)
        return None
    extension = b"".join(bytes(data[c.start: c.end]) for c in mine)
    digest = hashlib.md5(extension, usedforsecurity=False).hexdigest().upper()
    if digest != guid.upper():
        log.warning("JPEG extended XMP %s does not match its MD5 (%s); ignored", guid, digest)
        return None
    return extension


def merge(standard: bytes, extension: bytes) -> bytes:
    """One packet: the standard's bytes with the extension's descriptions added to its
    rdf:RDF, its xmpNote:HasExtendedXMP removed, and a property the two share kept from
    the extension. Raises ValueError when either is not XMP this can follow."""
    std = xmp_rdf.outline(standard)
    ext = xmp_rdf.outline(extension)
    if std.rdf_end_tag is None:
        raise ValueError("the standard packet's rdf:RDF is empty")
    moved = {(p.uri, p.local) for d in ext.descriptions for p in d.properties}
    edits = [(p.start, p.end, b"") for d in std.descriptions for p in d.properties
             if (p.uri, p.local) in moved or _is_note(p)]
    added, size = [], 0
    for d in ext.descriptions:
        text = extension[d.start: d.end]
        # Declarations made outside the description (on rdf:RDF, x:xmpmeta) go with it,
        # unless the standard packet's rdf:RDF already binds the prefix the same way.
        cut = 1 + len(d.qname.encode())
        needed = {k for k in xmp_rdf.used_prefixes(text) - d.own_prefixes
                  if k in d.scope and std.rdf_scope.get(k) != d.scope[k]}
        decls = xmp_rdf.declarations(d.scope, needed)
        added += [b"\n", text[:cut], decls, text[cut:]]
        size += 1 + len(text) + len(decls)
        _check_growth(size, len(extension))
    edits.append((std.rdf_end_tag, std.rdf_end_tag, b"".join(added) + b"\n"))
    return xmp_rdf.edit(standard, edits)


# -- write -----------------------------------------------------------------------------------
def split(packet: bytes, limit: int = STANDARD_MAX) -> tuple[bytes, bytes, str] | None:
    """(standard, extension, its GUID) for a packet too large for one segment, or None (logged)
    when it is not XMP this can follow or no split makes the standard part fit."""
    try:
        return _split(packet, limit)
    except ValueError as e:
        log.warning("XMP packet of %d bytes cannot be split for JPEG (%s)", len(packet), e)
        return None


def _split(packet: bytes, limit: int) -> tuple[bytes, bytes, str] | None:
    out = xmp_rdf.outline(packet)
    if not out.descriptions:
        raise ValueError("it has no rdf:Description")
    first = out.descriptions[0]
    stale = [(d, p) for d in out.descriptions for p in d.properties if _is_note(p)]
    prefix, note_decl = _note_prefix(first.scope)
    note = note_decl + f' {prefix}:HasExtendedXMP="{"0" * 32}"'.encode()
    size = (len(xmp_tags.without_padding(packet)) + len(note)
            - sum(p.size for _, p in stale))
    candidates = [(d, p) for d in out.descriptions for p in d.properties if not _is_note(p)]
    # Camera Raw's settings first, as a group; then the largest, so the fewest move.
    candidates.sort(key=lambda dp: (dp[1].uri != CRS_NS, -dp[1].size))
    moving: list[tuple[xmp_rdf.Description, xmp_rdf.Property]] = []
    left = {id(d): sum(not _is_note(p) for p in d.properties) for d in out.descriptions}
    emptied: dict[int, int] = {}  # id -> where the whitespace before an emptied one starts
    for d, p in candidates:
        if size <= limit and (p.uri != CRS_NS or not moving or moving[-1][1].uri != CRS_NS):
            break
        moving.append((d, p))
        size -= p.size
        left[id(d)] -= 1
        if not left[id(d)] and d is not first:
            # A description left with nothing goes too (older writers made one per namespace).
            emptied[id(d)] = start = _whitespace_before(packet, d.start)
            size -= d.end - start - sum(q.size for q in d.properties)
    if size > limit:
        log.warning("XMP packet of %d bytes leaves %d bytes in the standard packet after "
                    "moving every property; not written", len(packet), size)
        return None
    extension = _extension(packet, out.rdf_prefix, moving)
    guid = hashlib.md5(extension, usedforsecurity=False).hexdigest().upper()
    note = note_decl + f' {prefix}:HasExtendedXMP="{guid}"'.encode()
    edits = [(p.start, p.end, b"") for d, p in stale + moving if id(d) not in emptied]
    edits += [(start, d.end, b"") for d in out.descriptions if (start := emptied.get(id(d)))]
    edits.append((first.tag_end, first.tag_end, note))
    standard = xmp_tags.without_padding(xmp_rdf.edit(packet, edits))
    if len(standard) > limit:  # the sizes above are exact; this guards against a slip
        raise ValueError(f"the standard part came out at {len(standard)} bytes")
    return standard, extension, guid


def _extension(packet: bytes, rdf_prefix: str,
               moving: list[tuple[xmp_rdf.Description, xmp_rdf.Property]]) -> bytes:
    """The moved properties as a packet of their own (no wrapper, as the spec asks), one
    description per description they came from, with the namespaces in scope there."""
    rdf = f"{rdf_prefix}:" if rdf_prefix else ""
    xmlns_rdf = f"xmlns:{rdf_prefix}" if rdf_prefix else "xmlns"
    parts = [f'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n <{rdf}RDF {xmlns_rdf}="{xmp_rdf.RDF_NS}">'
             .encode()]
    grouped: dict[int, tuple[xmp_rdf.Description, list[xmp_rdf.Property]]] = {}
    for d, p in moving:
        grouped.setdefault(id(d), (d, []))[1].append(p)
    size = sum(map(len, parts))
    for d, props in grouped.values():
        props.sort(key=lambda p: p.start)
        about = d.about or f'{rdf}about=""'.encode()
        attrs = b"".join(packet[p.start: p.end] for p in props if p.attribute)
        elements = b"".join(packet[p.start: p.end] for p in props if not p.attribute)
        used = xmp_rdf.used_prefixes(attrs + elements)
        if d.scope.get(rdf_prefix) == xmp_rdf.RDF_NS:
            used.discard(rdf_prefix)  # declared on the wrapper's rdf:RDF
        part = (b"\n  <" + f"{rdf}Description ".encode() + about
                + xmp_rdf.declarations(d.scope, used) + attrs + b">" + elements
                + f"\n  </{rdf}Description>".encode())
        parts.append(part)
        size += len(part)
        _check_growth(size, len(packet))
    parts.append(f"\n </{rdf}RDF>\n</x:xmpmeta>".encode())
    return b"".join(parts)


def _whitespace_before(packet: bytes, at: int) -> int:
    while at > 0 and packet[at - 1] in b" \t\r\n":
        at -= 1
    return at


def _check_growth(size: int, source: int) -> None:
    """Namespaces declared once on rdf:RDF are repeated on each description that moves;
    a hostile packet with a huge declaration and many descriptions would grow without
    bound, a real one by a few hundred bytes."""
    if size > 2 * source + 65536:
        raise ValueError("its namespace declarations would more than double it")


def _is_note(p: xmp_rdf.Property) -> bool:
    return p.uri == NOTE_NS and p.local == "HasExtendedXMP"


def _note_prefix(scope: dict[str, str]) -> tuple[str, bytes]:
    """A prefix for xmpNote in the first description, and its declaration if it needs one."""
    for prefix, uri in scope.items():
        if uri == NOTE_NS and prefix:
            return prefix, b""
    prefix, n = "xmpNote", 1
    while prefix in scope:
        prefix, n = f"xmpNote{n}", n + 1
    return prefix, f' xmlns:{prefix}="{NOTE_NS}"'.encode()


def _property_value(packet: bytes, p: xmp_rdf.Property) -> str | None:
    """A simple property's text (attribute value or element text), stripped."""
    text = packet[p.start: p.end]
    if p.attribute:
        value = text.split(b"=", 1)[1].strip()[1:-1]
    else:
        body = text[text.index(b">") + 1:]
        close = body.rfind(b"</")
        value = body[:close]
        if close < 0 or b"<" in value:
            return None
    try:
        return value.decode("ascii").strip() or None
    except UnicodeDecodeError:
        return None

