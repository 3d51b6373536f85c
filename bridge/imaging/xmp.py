"""XMP packets as bytes: the two edits the codecs ever make to one.

A packet passes through the bridge as it was stored, with two exceptions:
- the decoder turned the pixels upright, so a tiff:Orientation becomes 1 (a
  viewer that reads XMP must not turn them a second time);
- a JPEG segment holds at most 65504 bytes of XMP, so a larger packet first
  loses its padding (whitespace kept for in-place editing) before it is split
  into Extended XMP (jpeg_xmp.py, which also merges one on read).
Nothing is parsed as XML: an edit replaces only the bytes it must, and the
packet keeps its length by taking the difference from its padding.
"""

from __future__ import annotations

import re

TIFF_NS = b"http://ns.adobe.com/tiff/1.0/"
# The trailer that closes a packet; the whitespace just before it is the padding.
_TRAILER = re.compile(rb"<\?xpacket\s+end\s*=")
_WHITESPACE = b" \t\r\n"


def _tiff_prefixes(packet: bytes) -> list[bytes]:
    """The prefixes bound to the TIFF namespace; Adobe always writes 'tiff'."""
    declared = re.findall(rb"xmlns:([A-Za-z_][\w.-]*)\s*=\s*[\"']" + re.escape(TIFF_NS), packet)
    return sorted(set(declared)) or [b"tiff"]


def _orientation_values(packet: bytes) -> list[tuple[int, int]]:
    """(start, end) of each tiff:Orientation value, in attribute or element form."""
    spans = []
    for prefix in _tiff_prefixes(packet):
        p = re.escape(prefix)
        attribute = rb"\s" + p + rb":Orientation\s*=\s*([\"'])\s*(\d+)\s*\1"
        spans += [m.span(2) for m in re.finditer(attribute, packet)]
        element = rb"<" + p + rb":Orientation(?:\s[^>]*)?>\s*(\d+)\s*</" + p + rb":Orientation\s*>"
        spans += [m.span(1) for m in re.finditer(element, packet)]
    return sorted(spans)


def orientation(packet: bytes | None) -> int | None:
    """The first tiff:Orientation value, or None when the packet has none."""
    spans = _orientation_values(packet) if packet else []
    return int(packet[spans[0][0]: spans[0][1]]) if spans and packet else None


def reset_orientation(packet: bytes) -> bytes:
    """The packet with every tiff:Orientation set to 1; all other bytes as they were.

    The usual one-digit value keeps the length as it is; a longer one ("06") gives
    its extra bytes to the padding, so the packet keeps its length whenever it has
    a trailer.
    """
    spans = _orientation_values(packet)
    if not spans:
        return packet
    out = bytearray()
    start = 0
    for a, b in spans:
        out += packet[start:a] + b"1"
        start = b
    out += packet[start:]
    shrunk = len(packet) - len(out)
    trailer = _last_trailer(bytes(out))
    if shrunk and trailer is not None:
        out[trailer:trailer] = b" " * shrunk
    return bytes(out)


def _last_trailer(packet: bytes) -> int | None:
    found = None
    for m in _TRAILER.finditer(packet):
        found = m.start()
    return found


def without_padding(packet: bytes) -> bytes:
    """The packet with its padding cut to one newline (for a format with a size limit)."""
    trailer = _last_trailer(packet)
    if trailer is None:
        return packet
    start = trailer
    while start > 0 and packet[start - 1] in _WHITESPACE:
        start -= 1
    if trailer - start <= 1:
        return packet
    return packet[:start] + b"\n" + packet[trailer:]
