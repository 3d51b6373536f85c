"""PNG: 8 and 16 bits, grey, grey+alpha, RGB, RGBA; palettes and 1-bit become 8-bit.

Pixels go through OpenCV (libpng), which unlike Pillow handles 16-bit colour;
the ICC profile, EXIF, XMP, IPTC, Photoshop's resources and the resolution
(pHYs) travel through png_chunks. OpenCV returns BGR(A) and turns grey+alpha into BGRA, so both are
mapped back here.
"""

from __future__ import annotations

from typing import BinaryIO

import cv2
import numpy as np

from bridge.errors import InvalidInput
from bridge.imaging import exif as exif_tags
from bridge.imaging import irb, resolution
from bridge.imaging.codec_util import as_hwc, oriented_image, swap_red_blue, swap_red_blue_in_place
from bridge.imaging.depth import to_uint16
from bridge.imaging.formats import Header
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from bridge.imaging.png_chunks import (
    encode_plain,
    metadata_chunks,
    read_ihdr,
    read_png_info,
    with_chunks,
)


def header(data: bytes | memoryview) -> Header:
    ihdr = read_ihdr(data)
    # As OpenCV decodes it: grey+alpha and palettes widen to 4 channels, 16-bit stays.
    channels = {0: 1, 2: 3}.get(ihdr.color_type, 4)
    return Header("png", Extent(ihdr.width, ihdr.height), ihdr,
                  bytes_per_pixel=channels * (2 if ihdr.bit_depth == 16 else 1))


def decode(data: bytes | memoryview, head: Header) -> Image:
    info = read_png_info(data)
    if not info.complete:
        raise InvalidInput("the PNG is truncated: its data ends before the closing IEND chunk")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InvalidInput("the PNG's pixel data is corrupt and could not be decoded")
    pixels = as_hwc(pixels)
    if info.color_type in (0, 4):
        pixels = _grey_layout(pixels, info.trns if info.color_type == 0 else None, info.bit_depth)
    else:
        swap_red_blue_in_place(pixels)
    exif = exif_tags.strip_prefix(info.exif) if info.exif else None
    iptc, resources = irb.split(info.photoshop) if info.photoshop else (None, None)
    ppi = resolution.choose(resolution.from_phys(info.phys), resolution.from_exif(exif),
                            resolution.from_resources(info.photoshop))
    return oriented_image(pixels, info.icc, exif, "png", xmp=info.xmp, iptc=info.iptc or iptc,
                          photoshop_resources=resources, resolution=ppi)


def _grey_layout(pixels: np.ndarray, trns: bytes | None, bit_depth: int) -> np.ndarray:
    """Grey sources back to 1 or 2 channels (OpenCV widens grey+alpha to BGRA)."""
    c = pixels.shape[2]
    if c == 4:
        return np.ascontiguousarray(pixels[:, :, [0, 3]])
    grey = pixels[:, :, :1] if c == 3 else pixels
    if trns and len(trns) >= 2:
        # A grey colour key: that one value is transparent. Scale it as libpng scaled the pixels.
        key = int.from_bytes(trns[:2], "big")
        if bit_depth < 8:
            key *= 255 // (2**bit_depth - 1)
        top = np.iinfo(pixels.dtype).max
        alpha = np.where(grey[:, :, 0] == key, 0, top).astype(pixels.dtype)
        return np.dstack([grey[:, :, 0], alpha])
    return np.ascontiguousarray(grey)


def write(image: Image, fh: BinaryIO, quality: int) -> None:
    """8- and 16-bit as they are; float becomes 16-bit (PNG has no float samples)."""
    pixels = image.pixels if image.depth in (8, 16) else to_uint16(image.pixels)
    ppi, exif, phys = image.resolution, image.exif, None
    if ppi:
        phys = resolution.phys(ppi)
        # pHYs holds whole pixels per metre; the EXIF carries a value finer than that.
        exact = resolution.held_exactly(resolution.from_phys(phys), ppi)
        exif = resolution.synced_exif(exif, ppi, add=not exact)
    # Photoshop's resources only when there are some besides IPTC (see png_chunks).
    others = resolution.synced_resources(image.photoshop_resources, ppi)
    resources = irb.join(others, image.iptc) if others else None
    extra = metadata_chunks(image.icc, exif, image.xmp, image.iptc, resources, phys)
    if pixels.shape[2] == 2:
        pieces: list = encode_plain(pixels, color_type=4)
        pieces[2:2] = extra
    else:
        # OpenCV's default (fast zlib setting) costs a few percent of size against level 6
        # and is 2-3x faster on large 16-bit images: interactive round trips win.
        ok, encoded = cv2.imencode(".png", swap_red_blue(pixels))
        if not ok:
            raise InvalidInput(f"OpenCV could not encode a {image.describe()} image as PNG")
        pieces = with_chunks(encoded.data, extra)
    for piece in pieces:
        fh.write(piece)
