"""Which file formats we read and write, how to recognise them, and the size guard.

Format detection looks only at magic bytes, never at file names: uploads carry
no trustworthy names, and a mislabelled file should still work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import InvalidInput, TooLarge, UnsupportedFormat
from bridge.imaging.geometry import Extent

# The decoder refuses anything larger unless the caller passes its own limit
# (the server passes Settings.max_pixels, which has the same default).
DEFAULT_MAX_PIXELS = 200_000_000
# What a decoder may allocate is bounded by the pixel limit times this: RGBA at 32-bit
# float, the largest pixel the bridge works with (raw uploads, float TIFFs). Pixels are
# not all a header declares: samples per pixel and their size are too, and a small
# file can declare hundreds of samples (3.2 GB at the default 200 MP).
DECODED_BYTES_PER_PIXEL = 16
# A TIFF tile may be larger than its image (a 100x100 image in 256x256 tiles), but not
# larger than the image's decoded bytes and than this too: the decoder holds whole tiles.
SEGMENT_BYTES_FLOOR = 16 << 20


@dataclass(frozen=True)
class FormatInfo:
    name: str
    mime: str
    suffixes: tuple[str, ...]
    depths: tuple[int, ...]  # depths written without conversion
    alpha: bool
    decodable: bool = True


FORMATS: dict[str, FormatInfo] = {
    "png": FormatInfo("png", "image/png", (".png",), (8, 16), True),
    "tiff": FormatInfo("tiff", "image/tiff", (".tif", ".tiff"), (8, 16, 32), True),
    "jpeg": FormatInfo("jpeg", "image/jpeg", (".jpg", ".jpeg", ".jpe"), (8,), False),
    "webp": FormatInfo("webp", "image/webp", (".webp",), (8,), True),
    # Raw pixels carry no header, so they cannot be detected; decode_raw reads them.
    "raw": FormatInfo("raw", "application/octet-stream", (".raw",), (8, 16, 32), True, False),
}


def format_for_suffix(path: str | Path) -> str:
    """'png', 'tiff', 'jpeg', 'webp' or 'raw' from a file name's suffix."""
    suffix = Path(path).suffix.lower()
    for info in FORMATS.values():
        if suffix in info.suffixes:
            return info.name
    known = ", ".join(s for info in FORMATS.values() for s in info.suffixes)
    raise UnsupportedFormat(f"cannot tell the format from '{suffix or Path(path).name}'; "
                            f"use one of {known}", suffix=suffix)


# Formats people send by mistake: named in the refusal so the message helps.
_KNOWN_OTHERS = {
    b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP", b"8BPS": "PSD",
    b"\x00\x00\x00\x0cjP  ": "JPEG 2000", b"%PDF": "PDF",
}


def sniff(data: bytes | bytearray | memoryview) -> str:
    """The format of encoded image bytes, from their first bytes only."""
    head = bytes(data[:16])
    if not head:
        raise InvalidInput("the image data is empty")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    name = next((n for magic, n in _KNOWN_OTHERS.items() if head.startswith(magic)), None)
    if name is None and head[4:8] == b"ftyp":
        name = "HEIF/AVIF"
    what = f"{name} files are" if name else f"data starting {head[:8].hex(' ')} is"
    raise UnsupportedFormat(f"{what} not supported; send PNG, TIFF, JPEG or WebP "
                            "(or raw pixels with their layout)")


@dataclass
class Header:
    """What a format's header says, read without touching pixel data.

    `info` holds what the format's decoder parsed on the way (chunks, markers,
    tags) so it is not parsed twice.
    """

    fmt: str
    extent: Extent
    info: Any = None
    # The most the decoder allocates per pixel (samples x bytes each, as decoded), and
    # the largest piece it holds besides the image (a TIFF tile), both from the header.
    bytes_per_pixel: int = 4
    segment_bytes: int = 0


def check_size(extent: Extent, max_pixels: int | None, what: str = "image") -> None:
    """Refuse empty images and images over the pixel limit, before any pixel is decoded."""
    if extent.width <= 0 or extent.height <= 0:
        raise InvalidInput(f"the {what} is {extent.width}x{extent.height}: it has no pixels",
                           width=extent.width, height=extent.height)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if extent.pixels > limit:
        raise TooLarge(
            f"the {what} is {extent.width}x{extent.height} = {extent.pixels:,} pixels; "
            f"the limit is {limit:,} pixels", width=extent.width, height=extent.height,
            pixels=extent.pixels, max_pixels=limit)


def decoded_bytes_limit(max_pixels: int | None) -> int:
    """The most bytes decoding may allocate for pixels, from the pixel limit."""
    return (DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels) * DECODED_BYTES_PER_PIXEL


def _mb(n: int) -> str:
    if n < 10**6:
        return f"{n:,} bytes"
    return f"{n / 1e6:,.0f} MB" if n >= 10**7 else f"{n / 1e6:,.1f} MB"


def check_decoded_size(extent: Extent, bytes_per_pixel: int, max_pixels: int | None,
                       what: str = "image", *, segment_bytes: int = 0,
                       layout: str = "") -> None:
    """Refuse, from the header, what would decode to more than the pixel limit allows.

    `bytes_per_pixel`: samples per pixel times their bytes, as decoded; `segment_bytes`:
    the largest tile the decoder holds whole. TooLarge (413) names both sizes."""
    limit = decoded_bytes_limit(max_pixels)
    needed = extent.pixels * bytes_per_pixel
    detail = f" ({layout})" if layout else ""
    if needed > limit:
        raise TooLarge(
            f"the {what} is {extent.width}x{extent.height} at {bytes_per_pixel} bytes per "
            f"pixel{detail}: {_mb(needed)} decoded, over the limit of {_mb(limit)} "
            f"({DECODED_BYTES_PER_PIXEL} bytes per pixel of --max-pixels)",
            decoded_bytes=needed, limit_bytes=limit)
    if segment_bytes > max(needed, SEGMENT_BYTES_FLOOR):
        raise TooLarge(
            f"the {what} is stored in tiles of {_mb(segment_bytes)} each, larger than the "
            f"whole {extent.width}x{extent.height} image decoded ({_mb(needed)})",
            segment_bytes=segment_bytes)
