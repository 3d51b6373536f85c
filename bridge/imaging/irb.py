"""Photoshop image resource blocks ("8BIM"), and the IPTC-IIM record they carry.

JPEG keeps them in APP13 "Photoshop 3.0" segments, TIFF in tag 34377. Resource
0x0404 is the IPTC record, which an Image carries on its own (`Image.iptc`); the
others travel as opaque bytes (`Image.photoshop_resources`), except those that
describe the pixels or copy what an Image carries separately: after an edit they
would be stale, or contradict the real thing.

A resource block is a 4-byte signature ("8BIM"; a few rarer ones exist), a 16-bit
id, a Pascal name padded to an even length, a 32-bit data size, and the data
padded to an even length.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

IPTC = 0x0404
SIGNATURES = (b"8BIM", b"MeSa", b"PHUT", b"AgHg", b"DCSR")
DROPPED = frozenset({
    0x0409, 0x040C,  # thumbnails of the old pixels
    0x0400, 0x0402, 0x0414, 0x042D, 0x0430,  # layer state, groups and ids: we flatten
    0x03EE, 0x03EF, 0x0415, 0x041D, 0x0435,  # extra (alpha) channel names, ids, display
    0x040F, 0x0422, 0x0423, 0x0424,  # copies of the ICC profile, EXIF and XMP
})


@dataclass(frozen=True)
class Resource:
    id: int
    block: bytes  # signature to padding, as stored
    data: bytes


def resources(blob: bytes | memoryview) -> list[Resource]:
    """The resource blocks from the start of `blob`, up to the first that is not whole."""
    out = []
    pos, n = 0, len(blob)
    while pos + 12 <= n and bytes(blob[pos: pos + 4]) in SIGNATURES:
        (rid,) = struct.unpack_from(">H", blob, pos + 4)
        name_len = blob[pos + 6]
        size_at = pos + 6 + name_len + 1 + ((name_len + 1) & 1)
        if size_at + 4 > n:
            break
        (size,) = struct.unpack_from(">I", blob, size_at)
        data_end = size_at + 4 + size
        if data_end > n:
            break
        end = min(n, data_end + (size & 1))
        out.append(Resource(rid, bytes(blob[pos:end]), bytes(blob[size_at + 4: data_end])))
        pos = end
    return out


def split(blob: bytes | memoryview) -> tuple[bytes | None, bytes | None]:
    """(IPTC record, the other resources kept) of a resource blob; None for nothing."""
    iptc = None
    kept = []
    for r in resources(blob):
        if r.id == IPTC:
            iptc = iptc or r.data or None
        elif r.id not in DROPPED:
            kept.append(r.block)
    return iptc, b"".join(kept) or None


def replace_data(blob: bytes, rid: int, change: Callable[[bytes], bytes]) -> bytes:
    """The blob with the data of each `rid` resource passed through `change`; every
    other byte (names, other resources, anything unparsed at the end) as it was."""
    found = resources(blob)
    if not any(r.id == rid for r in found):
        return blob
    out = []
    for r in found:
        if r.id != rid:
            out.append(r.block)
            continue
        size_at = 7 + r.block[6] + ((r.block[6] + 1) & 1)  # after the padded Pascal name
        data = change(r.data)
        out.append(r.block[:size_at] + struct.pack(">I", len(data)) + data
                   + b"\0" * (len(data) & 1))
    return b"".join(out) + bytes(blob[sum(len(r.block) for r in found):])


def block(rid: int, data: bytes) -> bytes:
    """One 8BIM resource with an empty name."""
    return b"8BIM" + struct.pack(">HHI", rid, 0, len(data)) + data + b"\0" * (len(data) & 1)


def join(others: bytes | None, iptc: bytes | None) -> bytes | None:
    """A resource blob: `others` as they are, with the IPTC record in id order among them.

    An IPTC resource already in `others` is left out, so a file never holds two.
    """
    found = resources(others) if others else []
    tail = others[sum(len(r.block) for r in found):] if others else b""  # unparsed: kept as is
    kept = [r for r in found if r.id != IPTC]
    blocks = [r.block for r in kept]
    if iptc:
        at = next((i for i, r in enumerate(kept) if r.id > IPTC), len(kept))
        blocks.insert(at, block(IPTC, iptc))
    return b"".join(blocks) + tail or None


# -- IPTC-IIM ----------------------------------------------------------------------
def iptc_end(record: bytes) -> int:
    """Where the last whole dataset of an IPTC record ends (0 if it starts with none)."""
    pos, n = 0, len(record)
    while pos + 5 <= n and record[pos] == 0x1C:
        (size,) = struct.unpack_from(">H", record, pos + 3)
        head = 5
        if size & 0x8000:  # extended dataset: the next (size & 0x7FFF) bytes hold the length
            k = size & 0x7FFF
            if not 0 < k <= 8 or pos + 5 + k > n:
                break
            size = int.from_bytes(record[pos + 5: pos + 5 + k], "big")
            head += k
        if pos + head + size > n:
            break
        pos += head + size
    return pos


def strip_iptc_padding(record: bytes) -> bytes:
    """The record without the zero bytes a TIFF LONG tag pads it with."""
    end = iptc_end(record)
    return record[:end] if end and not any(record[end:]) else record
