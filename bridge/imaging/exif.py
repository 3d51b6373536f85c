"""TIFF-structured metadata, read and written by hand: EXIF blobs and a TIFF file's tags.

EXIF is a little TIFF file (header, IFD0, an EXIF sub-IFD, a GPS sub-IFD). An
`Image.exif` blob is exactly that structure, without the "Exif\\0\\0" prefix JPEG
puts in front. We only ever need a few things from it, so we avoid a library:
- read and reset the orientation in place (every other byte stays as it was);
- read and set IFD0 values such as the resolution, in place or by adding tags
  to a copy of IFD0 at the end (nothing that was there moves);
- lift the EXIF-worthy tags out of a TIFF file into a standalone blob;
- write the sub-IFDs of a blob into a TIFF file we produce.
Values are copied as raw bytes in the blob's own byte order, never re-encoded.
"""

from __future__ import annotations

import contextlib
import io
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

EXIF_PREFIX = b"Exif\x00\x00"
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
INTEROP_IFD = 0xA005
POINTER_TAGS = (EXIF_IFD, GPS_IFD, INTEROP_IFD)
SHORT, LONG, ASCII, RATIONAL = 3, 4, 2, 5

# Bytes per value of each TIFF field type (classic TIFF; 13 is an IFD offset).
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}

# IFD0 tags of a TIFF file that describe the photo rather than the pixel layout;
# these travel into the EXIF blob of a decoded TIFF.
DESCRIPTIVE_TAGS = (270, 271, 272, ORIENTATION, 305, 306, 315, 33432)
_SOFTWARE = 305
_MAX_ENTRIES = 4096
_MAX_DEPTH = 3


@dataclass
class Entry:
    tag: int
    type: int
    count: int
    value: bytes  # count * TYPE_SIZES[type] bytes, in the source's byte order


@dataclass
class Ifd:
    entries: list[Entry] = field(default_factory=list)
    children: dict[int, Ifd] = field(default_factory=dict)  # pointer tag -> sub-IFD

    def get(self, tag: int) -> Entry | None:
        return next((e for e in self.entries if e.tag == tag), None)


def strip_prefix(blob: bytes) -> bytes:
    return blob[len(EXIF_PREFIX):] if blob.startswith(EXIF_PREFIX) else blob


def byte_order(blob: bytes | memoryview) -> str | None:
    """'<' or '>' for a classic TIFF structure, None for anything else."""
    head = bytes(blob[:4])
    if head == b"II*\x00":
        return "<"
    if head == b"MM\x00*":
        return ">"
    return None


def read_ifd(blob: bytes | memoryview, offset: int, order: str, depth: int = 0,
             seen: set[int] | None = None) -> Ifd:
    """One IFD and, below it, the EXIF/GPS/interop sub-IFDs. Broken entries are skipped.

    Raises ValueError only when the IFD itself cannot be located.
    """
    seen = set() if seen is None else seen
    if offset in seen or not 0 < offset <= len(blob) - 2:
        raise ValueError(f"IFD offset {offset} is outside the data")
    seen.add(offset)
    (count,) = struct.unpack_from(order + "H", blob, offset)
    count = min(count, _MAX_ENTRIES, (len(blob) - offset - 2) // 12)
    ifd = Ifd()
    for i in range(count):
        pos = offset + 2 + 12 * i
        tag, typ, n = struct.unpack_from(order + "HHI", blob, pos)
        size = TYPE_SIZES.get(typ, 0) * n
        if size == 0:
            continue
        if size <= 4:
            value = bytes(blob[pos + 8: pos + 8 + size])
        else:
            (at,) = struct.unpack_from(order + "I", blob, pos + 8)
            if at + size > len(blob):
                continue
            value = bytes(blob[at: at + size])
        entry = Entry(tag, typ, n, value)
        if tag in POINTER_TAGS and typ in (LONG, 13) and depth < _MAX_DEPTH:
            # A dangling pointer drops the sub-IFD; the rest is kept.
            with contextlib.suppress(ValueError, struct.error):
                ifd.children[tag] = read_ifd(blob, _u32(value, order), order, depth + 1, seen)
            continue
        ifd.entries.append(entry)
    return ifd


def parse(blob: bytes | memoryview) -> tuple[str, Ifd] | None:
    """Byte order and IFD0 of an EXIF blob or a classic TIFF file; None if unreadable."""
    order = byte_order(blob)
    if order is None or len(blob) < 8:
        return None
    try:
        return order, read_ifd(blob, _u32(bytes(blob[4:8]), order), order)
    except (ValueError, struct.error):
        return None


# -- IFD0 fields in place -----------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """Where one IFD0 entry sits in a blob."""

    entry: int  # byte position of the 12-byte entry
    type: int
    count: int
    value: int  # byte position of the value (inside the entry when it fits in 4 bytes)


def _ifd0_at(blob: bytes) -> tuple[str, int] | None:
    order = byte_order(blob)
    if order is None or len(blob) < 8:
        return None
    (ifd,) = struct.unpack_from(order + "I", blob, 4)
    if not 8 <= ifd <= len(blob) - 2:
        return None
    return order, ifd


def ifd0_fields(blob: bytes) -> tuple[str, dict[int, Field]] | None:
    """Byte order and the IFD0 entries whose values lie inside the blob (first of each tag)."""
    found = _ifd0_at(blob)
    if found is None:
        return None
    order, ifd = found
    fields: dict[int, Field] = {}
    (count,) = struct.unpack_from(order + "H", blob, ifd)
    for i in range(min(count, (len(blob) - ifd - 2) // 12)):
        pos = ifd + 2 + 12 * i
        tag, typ, n = struct.unpack_from(order + "HHI", blob, pos)
        size = TYPE_SIZES.get(typ, 0) * n
        at = pos + 8 if size <= 4 else struct.unpack_from(order + "I", blob, pos + 8)[0]
        if size and at + size <= len(blob) and tag not in fields:
            fields[tag] = Field(pos, typ, n, at)
    return order, fields


def with_ifd0_values(exif: bytes, values: dict[int, tuple[int, bytes]], *, add: bool) -> bytes:
    """The blob with IFD0 tags set to (type, one value's bytes in the blob's byte order).

    A tag already there with that type has its first value overwritten in place, so
    every other byte stays where it was. With `add`, tags that are missing (or of
    another type) are added: IFD0 is copied to the end of the blob with them, and
    the header points at the copy. Nothing else moves, so every offset in the blob
    (sub-IFDs, maker notes) stays valid; the old IFD0 is left as a few dead bytes.
    """
    blob = strip_prefix(exif)
    parsed = ifd0_fields(blob)
    if parsed is None:
        return blob
    order, fields = parsed
    out = bytearray(blob)
    missing = {}
    for tag, (typ, value) in values.items():
        f = fields.get(tag)
        if f is not None and f.type == typ and len(value) == TYPE_SIZES[typ]:
            out[f.value: f.value + len(value)] = value
        elif add:
            missing[tag] = (typ, value)
    if missing:
        _append_ifd0(out, order, missing)
    return bytes(out)


def _append_ifd0(out: bytearray, order: str, extra: dict[int, tuple[int, bytes]]) -> None:
    (ifd,) = struct.unpack_from(order + "I", out, 4)
    (count,) = struct.unpack_from(order + "H", out, ifd)
    count = min(count, (len(out) - ifd - 6) // 12)
    entries = {}
    for i in range(count):
        raw = bytes(out[ifd + 2 + 12 * i: ifd + 14 + 12 * i])
        entries.setdefault(struct.unpack_from(order + "H", raw)[0], raw)
    next_ifd = bytes(out[ifd + 2 + 12 * count: ifd + 6 + 12 * count])
    for tag, (typ, value) in extra.items():
        if len(value) <= 4:
            entries[tag] = struct.pack(order + "HHI", tag, typ, 1) + value.ljust(4, b"\0")
        else:
            if len(out) % 2:
                out.append(0)  # word-aligned offsets
            entries[tag] = struct.pack(order + "HHII", tag, typ, 1, len(out))
            out += value
    if len(out) % 2:
        out.append(0)
    struct.pack_into(order + "I", out, 4, len(out))
    out += struct.pack(order + "H", len(entries))
    out += b"".join(entries[t] for t in sorted(entries)) + next_ifd.ljust(4, b"\0")


def rational_values(blob: bytes, tag: int) -> tuple[int, int] | None:
    """The first (numerator, denominator) of an IFD0 RATIONAL tag."""
    parsed = ifd0_fields(blob)
    f = parsed[1].get(tag) if parsed else None
    if parsed is None or f is None or f.type != RATIONAL:
        return None
    return struct.unpack_from(parsed[0] + "II", blob, f.value)


def short_value(blob: bytes, tag: int) -> int | None:
    """The first value of an IFD0 SHORT or LONG tag."""
    parsed = ifd0_fields(blob)
    f = parsed[1].get(tag) if parsed else None
    if parsed is None or f is None or f.type not in (SHORT, LONG):
        return None
    return struct.unpack_from(parsed[0] + ("H" if f.type == SHORT else "I"), blob, f.value)[0]


# -- orientation -----------------------------------------------------------------
def _orientation_field(blob: bytes) -> tuple[int, str, int] | None:
    """(byte position of the value, byte order, field type) of IFD0's Orientation."""
    parsed = ifd0_fields(blob)
    f = parsed[1].get(ORIENTATION) if parsed else None
    if parsed is None or f is None or f.type not in (SHORT, LONG):
        return None
    return f.value, parsed[0], f.type


def orientation(exif: bytes | None) -> int:
    """EXIF orientation 1-8; 1 when absent or not a valid value."""
    if not exif:
        return 1
    blob = strip_prefix(exif)
    found = _orientation_field(blob)
    if found is None:
        return 1
    pos, order, typ = found
    value = struct.unpack_from(order + ("H" if typ == SHORT else "I"), blob, pos)[0]
    return value if 1 <= value <= 8 else 1


def reset_orientation(exif: bytes) -> bytes:
    """The same blob with Orientation set to 1; every other byte unchanged."""
    blob = strip_prefix(exif)
    found = _orientation_field(blob)
    if found is None:
        return blob
    pos, order, typ = found
    out = bytearray(blob)
    struct.pack_into(order + ("H" if typ == SHORT else "I"), out, pos, 1)
    return bytes(out)


# -- building blobs and IFDs -------------------------------------------------------
def exif_from_tiff(tiff: bytes | memoryview) -> bytes | None:
    """A standalone EXIF blob from a TIFF file's descriptive tags and EXIF/GPS IFDs.

    Orientation, when present, is written as 1: the decoder applies it to the pixels.
    None when the file carries nothing EXIF-worthy (or is BigTIFF: not read here).
    """
    parsed = parse(tiff)
    if parsed is None:
        return None
    order, ifd0 = parsed
    keep = Ifd()
    for e in ifd0.entries:
        if e.tag not in DESCRIPTIVE_TAGS or _is_tifffile_shape(e):
            continue
        if e.tag == ORIENTATION:
            e = Entry(ORIENTATION, SHORT, 1, struct.pack(order + "H", 1))
        keep.entries.append(e)
    keep.children = {t: c for t, c in ifd0.children.items() if t in (EXIF_IFD, GPS_IFD)}
    # A writer's name alone (tifffile puts its own in every file) is no photo metadata.
    if not keep.children and all(e.tag == _SOFTWARE for e in keep.entries):
        return None
    return build_blob(order, keep)


def _is_tifffile_shape(e: Entry) -> bool:
    # tifffile stores its own JSON shape note in ImageDescription; it is not a caption.
    return e.tag == 270 and e.value.startswith(b'{"shape"')


def build_blob(order: str, ifd0: Ifd) -> bytes:
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    return header + serialize_ifd(ifd0, order, 8)


def serialize_ifd(ifd: Ifd, order: str, base: int) -> bytes:
    """The IFD placed at file offset `base`, followed by its long values and sub-IFDs."""
    entries = sorted((e for e in ifd.entries if e.tag not in ifd.children), key=lambda e: e.tag)
    tags = sorted([e.tag for e in entries] + list(ifd.children))
    head_len = 2 + 12 * len(tags) + 4
    tail = bytearray()
    fields: dict[int, bytes] = {}

    def place(payload: bytes) -> int:
        if (base + head_len + len(tail)) % 2:
            tail.append(0)  # TIFF wants word-aligned offsets
        at = base + head_len + len(tail)
        tail.extend(payload)
        return at

    for e in entries:
        if len(e.value) <= 4:
            inline = e.value.ljust(4, b"\0")
            fields[e.tag] = struct.pack(order + "HHI", e.tag, e.type, e.count) + inline
        else:
            fields[e.tag] = struct.pack(order + "HHII", e.tag, e.type, e.count, place(e.value))
    for tag in sorted(ifd.children):
        if (base + head_len + len(tail)) % 2:
            tail.append(0)
        at = base + head_len + len(tail)
        tail.extend(serialize_ifd(ifd.children[tag], order, at))
        fields[tag] = struct.pack(order + "HHII", tag, LONG, 1, at)
    out = bytearray(struct.pack(order + "H", len(tags)))
    for tag in tags:
        out += fields[tag]
    out += struct.pack(order + "I", 0) + tail
    return bytes(out)


def ascii_value(e: Entry) -> bytes:
    """An ASCII entry's text without its terminating NULs."""
    return e.value.rstrip(b"\0")


def _u32(value: bytes, order: str) -> int:
    return struct.unpack_from(order + "I", value.ljust(4, b"\0"))[0]


def add_sub_ifds(fh: BinaryIO, start: int, children: dict[int, Ifd], order: str) -> bool:
    """Give the TIFF written at `start` in `fh` these EXIF/GPS sub-IFDs.

    tifffile will not write sub-IFD pointers itself, so the sub-IFDs and a copy
    of IFD0 with the pointers added go at the end of the file, and the header is
    pointed at the new IFD0 (the old one stays behind as a few dead bytes).
    Returns False, writing nothing, for a BigTIFF or a byte order that differs.
    """
    fh.seek(start)
    head = fh.read(8)
    if byte_order(head) != order:
        return False
    (ifd0,) = struct.unpack_from(order + "I", head, 4)
    fh.seek(start + ifd0)
    (count,) = struct.unpack(order + "H", fh.read(2))
    raw = fh.read(12 * count)
    next_ifd = fh.read(4)
    entries = {struct.unpack_from(order + "H", raw, 12 * i)[0]: raw[12 * i: 12 * i + 12]
               for i in range(count)}
    end = fh.seek(0, io.SEEK_END) - start
    for tag in sorted(children):
        if end % 2:
            fh.write(b"\0")
            end += 1
        blob = serialize_ifd(children[tag], order, end)
        fh.write(blob)
        entries[tag] = struct.pack(order + "HHII", tag, LONG, 1, end)
        end += len(blob)
    if end % 2:
        fh.write(b"\0")
        end += 1
    fh.write(struct.pack(order + "H", len(entries)))
    fh.write(b"".join(entries[t] for t in sorted(entries)) + next_ifd)
    fh.seek(start + 4)
    fh.write(struct.pack(order + "I", end))
    fh.seek(0, io.SEEK_END)
    return True
