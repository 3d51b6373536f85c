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
