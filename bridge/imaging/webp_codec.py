"""WebP: 8-bit RGB and RGBA (WebP has no grey and no 16-bit). Lossless at quality 100.

The RIFF chunks are read here (size, ICCP, EXIF, "XMP "); pixels are decoded by
OpenCV (libwebp) and written by Pillow, which also writes those chunks. WebP has
no place for IPTC or Photoshop's resources: those are not written. The resolution
lives in the EXIF's XResolution/YResolution tags (there is nowhere else).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image as PILImage

from bridge.errors import InvalidInput, UnsupportedFormat
from bridge.imaging import exif as exif_tags
from bridge.imaging import resolution
from bridge.imaging.codec_util import as_hwc, oriented_image, swap_red_blue_in_place
from bridge.imaging.depth import to_uint8
from bridge.imaging.formats import Header
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image


@dataclass
class WebpInfo:
    width: int = 0
    height: int = 0
    animated: bool = False
    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    complete: bool = True


def read_chunks(data: bytes | memoryview) -> WebpInfo:
    if len(data) < 30:
        raise InvalidInput("the WebP is truncated: too short to hold a header")
    info = WebpInfo()
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = min(len(data), 8 + riff_size)
    info.complete = 8 + riff_size <= len(data)
    pos, first = 12, True
    while pos + 8 <= end:
        kind = bytes(data[pos: pos + 4])
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = data[pos + 8: pos + 8 + size]
        if first:
            _read_size(info, kind, body)
            first = False
        if kind == b"ICCP" and len(body) == size:
            info.icc = bytes(body)
        elif kind == b"EXIF" and len(body) == size:
            info.exif = exif_tags.strip_prefix(bytes(body))
        elif kind == b"XMP " and len(body) == size:
            info.xmp = bytes(body)
        elif kind in (b"ANIM", b"ANMF"):
            info.animated = True
        pos += 8 + size + (size & 1)
    if first:
        raise InvalidInput("the WebP has no image chunk")
    return info


def _read_size(info: WebpInfo, kind: bytes, body: bytes | memoryview) -> None:
    """Canvas size from the first chunk (VP8X, lossless VP8L or lossy VP8)."""
    body = bytes(body[:10])
    if kind == b"VP8X" and len(body) >= 10:
        info.width = 1 + int.from_bytes(body[4:7], "little")
        info.height = 1 + int.from_bytes(body[7:10], "little")
    elif kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        (bits,) = struct.unpack_from("<I", body, 1)
        info.width = 1 + (bits & 0x3FFF)
        info.height = 1 + ((bits >> 14) & 0x3FFF)
    elif kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", body, 6)
        info.width, info.height = w & 0x3FFF, h & 0x3FFF
    else:
        raise InvalidInput(f"the WebP header is corrupt (first chunk {kind!r})")


def header(data: bytes | memoryview) -> Header:
    info = read_chunks(data)
    return Header("webp", Extent(info.width, info.height), info, bytes_per_pixel=4)  # BGR(A)


def decode(data: bytes | memoryview, head: Header) -> Image:
    info: WebpInfo = head.info
    if info.animated:
        raise UnsupportedFormat("animated WebP is not supported; send a single frame")
    if not info.complete:
        raise InvalidInput("the WebP is truncated: it is shorter than its RIFF header says")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InvalidInput("the WebP's image data is corrupt and could not be decoded")
    pixels = swap_red_blue_in_place(as_hwc(pixels))
    return oriented_image(pixels, info.icc, info.exif, "webp", xmp=info.xmp,
                          resolution=resolution.choose(resolution.from_exif(info.exif)))


def write(image: Image, fh: BinaryIO, quality: int) -> None:
    """Lossless when quality is 100 (colour under fully transparent pixels kept too).

    16-bit and float are rounded to 8 bits; grey is stored as RGB, as WebP requires.
    """
    pixels = to_uint8(image.pixels)
    if pixels.shape[2] <= 2:  # grey (+alpha) -> RGB(A)
        pixels = pixels[:, :, [0, 0, 0, 1][: pixels.shape[2] + 2]]
    if max(pixels.shape[:2]) > 16383:
        raise InvalidInput(f"WebP images are at most 16383 pixels a side; this one is "
                           f"{image.width}x{image.height}")
    pil = PILImage.fromarray(pixels)
    lossless = quality >= 100
    # Speed over the last percent of size: libwebp's slower methods cost 2-3x the time
    # for under 1% smaller files (for lossless, "quality" is the effort).
    options: dict = {"lossless": lossless, "quality": 50 if lossless else quality,
                     "method": 2 if not lossless else 4, "exact": True}
    if image.icc:
        options["icc_profile"] = image.icc
    # The EXIF is WebP's only place for the resolution: its tags are added if missing.
    exif = resolution.synced_exif(image.exif, image.resolution, add=True)
    if exif:
        options["exif"] = exif
    if image.xmp:
        options["xmp"] = image.xmp
    pil.save(fh, "WEBP", **options)
