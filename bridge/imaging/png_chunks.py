"""PNG at the chunk level: read the header and metadata chunks, add chunks, write simple PNGs.

OpenCV decodes and encodes PNG pixels (16-bit RGB included) but neither reads
nor writes the colour profile, EXIF, XMP or IPTC as bytes, so we handle those
chunks here, with their CRCs checked on the way in and computed on the way out.

XMP is an uncompressed iTXt chunk with the keyword "XML:com.adobe.xmp" (Adobe's
XMP specification). PNG has no standard place for IPTC or Photoshop's resources;
we use the one ImageMagick and ExifTool read and write: zTXt chunks "Raw profile
type iptc" and "Raw profile type 8bim" whose text is a newline, the profile's
name, its length and its bytes in hex. Like ImageMagick, the 8bim profile holds
the IPTC record too (it is what ImageMagick puts in a JPEG's APP13).
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bridge.errors import InvalidInput
from bridge.imaging import irb

log = logging.getLogger(__name__)

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
_MAX_ICC = 64 << 20  # a compressed iCCP chunk must not expand into a memory bomb
_IDAT_PIECE = 8 << 20
_MAX_TEXT = 64 << 20  # the same guard for a compressed text chunk
TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")
XMP_KEYWORD = b"XML:com.adobe.xmp"
IPTC_KEYWORD = b"Raw profile type iptc"
PHOTOSHOP_KEYWORD = b"Raw profile type 8bim"
XMP_RAW_KEYWORD = b"Raw profile type xmp"  # how ImageMagick stores XMP
_KEYWORDS = (XMP_KEYWORD, IPTC_KEYWORD, PHOTOSHOP_KEYWORD, XMP_RAW_KEYWORD)


@dataclass
class PngInfo:
    width: int
    height: int
    bit_depth: int
    color_type: int
    interlaced: bool
    icc: bytes | None = None
    exif: bytes | None = None
    trns: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    photoshop: bytes | None = None  # resource blocks, IPTC possibly among them
    phys: bytes | None = None  # the pHYs body: pixels per unit, x and y, and the unit
    complete: bool = False  # the chunk list reached IEND inside the data


def _chunks(data: bytes | memoryview, start: int = 8) -> Iterator[tuple[int, bytes, int, bool]]:
    """(offset, type, data length, CRC ok) of each whole chunk; stops at IEND or the data's end.

    The CRC is only computed for small chunks we might read; pixel chunks are skipped.
    """
    pos = start
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            return
        ok = True
        if kind not in (b"IDAT", b"fdAT"):
            (crc,) = struct.unpack_from(">I", data, end - 4)
            ok = zlib.crc32(data[pos + 4: end - 4]) == crc
        yield pos, kind, length, ok
        if kind == b"IEND":
            return
        pos = end


def read_ihdr(data: bytes | memoryview) -> PngInfo:
    """The image header: size, bit depth, colour type. Raises InvalidInput when broken."""
    if len(data) < 33 or bytes(data[12:16]) != b"IHDR":
        raise InvalidInput("the PNG is truncated or has no IHDR header chunk")
    length, _, w, h, depth, ctype, comp, filt, interlace = struct.unpack_from(
        ">I4sIIBBBBB", data, 8)
    (crc,) = struct.unpack_from(">I", data, 29)
    if length != 13 or zlib.crc32(data[12:29]) != crc:
        raise InvalidInput("the PNG header chunk (IHDR) is corrupt (bad length or CRC)")
    allowed = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
    if depth not in allowed.get(ctype, ()) or comp or filt or interlace > 1:
        raise InvalidInput(f"the PNG header is invalid: colour type {ctype}, bit depth {depth}")
    return PngInfo(w, h, depth, ctype, interlace == 1)


def read_png_info(data: bytes | memoryview) -> PngInfo:
    """Header plus ICC profile, EXIF, XMP, IPTC, pHYs and transparency key, walking every chunk.

    An ancillary chunk with a bad CRC is ignored (as libpng does); a list of
    chunks that stops before IEND marks the file as incomplete.
    """
    info = read_ihdr(data)
    raw_xmp = None
    for pos, kind, length, ok in _chunks(data):
        if kind == b"IEND":
            info.complete = True
        if not ok or kind not in (b"iCCP", b"eXIf", b"tRNS", b"pHYs", *TEXT_KINDS):
            continue
        if kind in TEXT_KINDS:
            # Only the keywords we want are copied out; other text stays in the buffer.
            keyword = bytes(data[pos + 8: pos + 8 + min(length, 80)]).split(b"\0", 1)[0]
            if keyword not in _KEYWORDS:
                continue
            text = _text(kind, bytes(data[pos + 8 + len(keyword) + 1: pos + 8 + length]))
            if keyword == XMP_KEYWORD and info.xmp is None:
                info.xmp = text
            elif keyword == XMP_RAW_KEYWORD and raw_xmp is None and text:
                raw_xmp = decode_raw_profile(text)
            elif keyword == IPTC_KEYWORD and info.iptc is None and text:
                info.iptc = _iptc_of(decode_raw_profile(text))
            elif keyword == PHOTOSHOP_KEYWORD and info.photoshop is None and text:
                info.photoshop = _without_signature(decode_raw_profile(text))
            continue
        body = bytes(data[pos + 8: pos + 8 + length])
        if kind == b"iCCP" and info.icc is None:
            info.icc = _inflate_icc(body)
        elif kind == b"eXIf" and info.exif is None:
            info.exif = body
        elif kind == b"tRNS":
            info.trns = body
        elif kind == b"pHYs" and info.phys is None:
            info.phys = body
    info.xmp = info.xmp or raw_xmp
    return info


def _text(kind: bytes, rest: bytes) -> bytes | None:
    """The text of a tEXt, zTXt or iTXt chunk, given the bytes after its keyword's NUL."""
    if kind == b"tEXt":
        return rest
    if kind == b"zTXt":
        return _inflate_text(rest[1:]) if rest[:1] == b"\0" else None
    # iTXt: compression flag and method, then language tag and translated keyword.
    if len(rest) < 2:
        return None
    compressed, method = rest[0], rest[1]
    parts = rest[2:].split(b"\0", 2)
    if len(parts) != 3:
        return None
    if not compressed:
        return parts[2]
    return _inflate_text(parts[2]) if method == 0 else None


def _inflate_text(stream: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(stream, _MAX_TEXT)
    except zlib.error:
        return None
    if inflater.unconsumed_tail:
        log.warning("a PNG text chunk expands past %d MB; its metadata is dropped", _MAX_TEXT >> 20)
        return None
    return text


def decode_raw_profile(text: bytes) -> bytes | None:
    """The bytes of an ImageMagick raw profile: name, decimal length, then hex digits."""
    parts = text.split(None, 2)
    try:
        length = int(parts[1])
        payload = bytes.fromhex(parts[2].decode("ascii")) if len(parts) == 3 else b""
    except (IndexError, ValueError):
        return None
    return payload[:length] if 0 < length <= len(payload) else None


def raw_profile(name: str, payload: bytes) -> bytes:
    """An ImageMagick raw profile text: 36 bytes (72 hex digits) a line, as it writes them."""
    digits = payload.hex()
    lines = "\n".join(digits[i: i + 72] for i in range(0, len(digits), 72))
    return f"\n{name}\n{len(payload):8d}\n{lines}\n".encode("ascii")


def _without_signature(payload: bytes | None) -> bytes | None:
    """Photoshop resources without the "Photoshop 3.0" header some writers keep."""
    if payload and payload.startswith(b"Photoshop 3.0\0"):
        return payload[14:]
    return payload


def _iptc_of(payload: bytes | None) -> bytes | None:
    """IPTC from a raw profile, which some writers wrap in Photoshop resources."""
    payload = _without_signature(payload)
    if payload and payload[:4] in irb.SIGNATURES:
        return irb.split(payload)[0]
    return payload


def _inflate_icc(body: bytes) -> bytes | None:
    sep = body.find(b"\0")
    if sep < 1 or sep > 79 or len(body) < sep + 2 or body[sep + 1] != 0:
        return None
    inflater = zlib.decompressobj()
    try:
        icc = inflater.decompress(body[sep + 2:], _MAX_ICC)
    except zlib.error:
        return None
    if inflater.unconsumed_tail:
        raise InvalidInput(f"the PNG colour profile is larger than {_MAX_ICC >> 20} MB")
    return icc or None


# -- writing ---------------------------------------------------------------------
def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def metadata_chunks(icc: bytes | None, exif: bytes | None, xmp: bytes | None = None,
                    iptc: bytes | None = None, photoshop: bytes | None = None,
                    phys: bytes | None = None) -> list[bytes]:
    """iCCP, pHYs, eXIf, XMP iTXt, IPTC and Photoshop zTXt chunks, all for before the
    pixel data (some Adobe readers ignore XMP that comes after it; pHYs must)."""
    out = []
    if icc:
        out.append(chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc, 9)))
    if phys:
        out.append(chunk(b"pHYs", phys))
    if exif:
        out.append(chunk(b"eXIf", exif))
    if xmp:  # no compression, empty language and translated keyword
        out.append(chunk(b"iTXt", XMP_KEYWORD + b"\0\0\0\0\0" + xmp))
    if iptc:
        text = zlib.compress(raw_profile("iptc", iptc), 9)
        out.append(chunk(b"zTXt", IPTC_KEYWORD + b"\0\0" + text))
    if photoshop:
        text = zlib.compress(raw_profile("8bim", photoshop), 9)
        out.append(chunk(b"zTXt", PHOTOSHOP_KEYWORD + b"\0\0" + text))
    return out


def with_chunks(png: bytes | memoryview, extra: list[bytes]) -> list[bytes | memoryview]:
    """The PNG as pieces with `extra` chunks right after IHDR, minus any it already had
    of the same kinds (so a profile is never declared twice). Text chunks are only added:
    there may be many, each under its own keyword."""
    view = memoryview(png)
    kinds = {bytes(c[4:8]) for c in extra} - set(TEXT_KINDS)
    replaced = kinds | ({b"sRGB", b"gAMA", b"cHRM", b"iCCP"} if b"iCCP" in kinds else set())
    pieces: list[bytes | memoryview] = [view[:33], *extra]
    start = 33
    for pos, kind, length, _ in _chunks(view, 33):
        if kind in replaced:
            pieces.append(view[start:pos])
            start = pos + 12 + length
    pieces.append(view[start:])
    return pieces


def encode_plain(pixels: np.ndarray, color_type: int, level: int = 6) -> list[bytes]:
    """A PNG (no metadata) for layouts OpenCV cannot write, e.g. grey+alpha.

    Rows use the Sub filter, which suits photos well enough and is one numpy line.
    """
    h, w, c = pixels.shape
    bits = pixels.dtype.itemsize * 8
    rows = pixels.astype(">u2" if bits == 16 else np.uint8, copy=False).view(np.uint8)
    rows = rows.reshape(h, w * c * pixels.dtype.itemsize)
    bpp = c * pixels.dtype.itemsize
    out = [SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, 0))]
    deflate = zlib.compressobj(level)
    pending = bytearray()
    step = max(1, (4 << 20) // max(1, rows.shape[1]))
    for y in range(0, h, step):
        block = rows[y: y + step]
        filtered = np.empty((block.shape[0], block.shape[1] + 1), np.uint8)
        filtered[:, 0] = 1  # filter type Sub
        filtered[:, 1:] = block
        filtered[:, 1 + bpp:] -= block[:, :-bpp]
        pending += deflate.compress(filtered.tobytes())
        while len(pending) >= _IDAT_PIECE:
            out.append(chunk(b"IDAT", bytes(pending[:_IDAT_PIECE])))
            del pending[:_IDAT_PIECE]
    pending += deflate.flush()
    out.append(chunk(b"IDAT", bytes(pending)))
    out.append(chunk(b"IEND", b""))
    return out
