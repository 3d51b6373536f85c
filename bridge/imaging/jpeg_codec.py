"""JPEG: 8-bit grey and colour. Decoded with OpenCV (libjpeg-turbo), written with Pillow.

Markers are read here: the frame header for the size, APP0 for the JFIF density
(the resolution; resolution.py has the EXIF and Photoshop fallbacks), APP1 for
EXIF and XMP, APP2 for the ICC profile (which may be split over several segments), APP13 for
Photoshop's resources with the IPTC record among them (also possibly split).
XMP over one segment's 64 KB is Extended XMP, read and written by jpeg_xmp.py:
the decoded Image carries the standard and extended parts merged into one packet,
and the writer splits a packet that does not fit, moving Camera Raw settings and then the
largest properties to the extension. CMYK and YCCK JPEGs are refused: turning them into
RGB needs a colour conversion this lossless core does not do silently.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image as PILImage

from bridge.errors import InvalidInput, InvalidParams, UnsupportedFormat
from bridge.imaging import exif as exif_tags
from bridge.imaging import irb, jpeg_xmp, resolution
from bridge.imaging import xmp as xmp_tags
from bridge.imaging.codec_util import as_hwc, oriented_image, swap_red_blue_in_place
from bridge.imaging.depth import to_uint8
from bridge.imaging.formats import Header
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image

log = logging.getLogger(__name__)

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_ICC_TAG = b"ICC_PROFILE\0"
_ICC_CHUNK = 65519  # 65535 - 2 (length) - 12 (tag) - 2 (sequence numbers)
_EXIF_MAX = 65533 - len(exif_tags.EXIF_PREFIX)
_XMP_TAG = b"http://ns.adobe.com/xap/1.0/\0"
_XMP_MAX = 65533 - len(_XMP_TAG)
_PHOTOSHOP_TAG = b"Photoshop 3.0\0"
_PHOTOSHOP_CHUNK = 65533 - len(_PHOTOSHOP_TAG)


@dataclass
class JpegInfo:
    width: int = 0
    height: int = 0
    precision: int = 8
    components: int = 0
    exif: bytes | None = None
    icc_parts: dict[int, bytes] = field(default_factory=dict)
    icc_count: int = 0
    xmp: bytes | None = None
    xmp_chunks: list[jpeg_xmp.Chunk] = field(default_factory=list)  # Extended XMP
    photoshop_parts: list[bytes] = field(default_factory=list)
    jfif_density: tuple[int, int, int] | None = None  # units (0 aspect, 1 inch, 2 cm), x, y

    @property
    def icc(self) -> bytes | None:
        """The profile when every part arrived; a partial profile is worse than none."""
        if not self.icc_parts or sorted(self.icc_parts) != list(range(1, self.icc_count + 1)):
            return None
        return b"".join(self.icc_parts[i] for i in range(1, self.icc_count + 1))

    @property
    def photoshop(self) -> bytes:
        """Photoshop's resources: the APP13 segments' contents joined (one may span several)."""
        return b"".join(self.photoshop_parts)


def read_markers(data: bytes | memoryview) -> JpegInfo:
    """Walk the segments up to the first scan. Raises InvalidInput if there is no frame header."""
    info = JpegInfo()
    pos, n = 2, len(data)
    found_frame = False
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise InvalidInput(f"the JPEG is corrupt: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4: pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            break
        if marker in _SOF and len(body) >= 6 and not found_frame:
            info.precision, info.height, info.width, info.components = struct.unpack_from(
                ">BHHB", body)
            found_frame = True
        elif marker == 0xE0 and bytes(body[:5]) == b"JFIF\0" and len(body) >= 12:
            units, x, y = struct.unpack_from(">BHH", body, 7)
            info.jfif_density = info.jfif_density or (units, x, y)
        elif marker == 0xE1 and info.exif is None and bytes(body[:6]) == exif_tags.EXIF_PREFIX:
            info.exif = bytes(body[6:])
        elif marker == 0xE2 and bytes(body[:12]) == _ICC_TAG and len(body) >= 14:
            seq, count = body[12], body[13]
            info.icc_parts.setdefault(seq, bytes(body[14:]))
            info.icc_count = count
        elif marker == 0xE1 and info.xmp is None and bytes(body[:29]) == _XMP_TAG:
            info.xmp = bytes(body[29:])
        elif marker == 0xE1 and bytes(body[:35]) == jpeg_xmp.EXTENSION_TAG:
            chunk = jpeg_xmp.parse_chunk(body, pos + 4)
            if chunk:
                info.xmp_chunks.append(chunk)
        elif marker == 0xED and bytes(body[:14]) == _PHOTOSHOP_TAG:
            info.photoshop_parts.append(bytes(body[14:]))
        pos += 2 + length
    if not found_frame:
        raise InvalidInput("the JPEG is truncated or corrupt: no frame header (SOF) was found")
    return info


def header(data: bytes | memoryview) -> Header:
    info = read_markers(data)
    # 8-bit samples only (others are refused before decoding); grey stays one channel.
    return Header("jpeg", Extent(info.width, info.height), info,
                  bytes_per_pixel=max(1, min(info.components, 4)))


def decode(data: bytes | memoryview, head: Header) -> Image:
    info: JpegInfo = head.info
    if info.components == 4:
        raise UnsupportedFormat("CMYK JPEGs are not supported; convert the file to RGB first")
    if info.precision != 8 or info.components not in (1, 3):
        raise UnsupportedFormat(
            f"{info.precision}-bit JPEGs with {info.components} components are not supported")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InvalidInput("the JPEG is truncated or its image data is corrupt")
    pixels = swap_red_blue_in_place(as_hwc(pixels))
    iptc, resources = irb.split(info.photoshop)
    jfif = resolution.from_jfif(*info.jfif_density) if info.jfif_density else None
    ppi = resolution.choose(jfif, resolution.from_exif(info.exif),
                            resolution.from_resources(info.photoshop))
    xmp = jpeg_xmp.read(info.xmp, info.xmp_chunks, data)
    return oriented_image(pixels, info.icc, info.exif, "jpeg", xmp=xmp, iptc=iptc,
                          photoshop_resources=resources, resolution=ppi)


def write(image: Image, fh: BinaryIO, quality: int) -> None:
    """8-bit only: 16-bit and float are rounded to 8 bits (v*255/65535, float clipped to 0..1).

    JPEG has no alpha; an image with alpha is refused rather than silently flattened.
    Quality 90 and up keeps full colour resolution (4:4:4), below it 4:2:0.
    """
    if image.has_alpha:
        raise InvalidParams("JPEG cannot hold transparency; flatten the image first or ask for "
                            "png, tiff or webp", format="jpeg")
    pil = PILImage.fromarray(_pil_array(to_uint8(image.pixels)))
    options: dict = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if image.icc:
        options["icc_profile"] = image.icc
    exif, ppi = image.exif, image.resolution
    if ppi:
        options["dpi"] = density = resolution.jfif_density(ppi)
        # JFIF holds whole dots per inch; the EXIF carries a fraction of one.
        exact = resolution.held_exactly(resolution.from_jfif(1, *density), ppi)
        exif = resolution.synced_exif(exif, ppi, add=not exact)
    if exif:
        if len(exif) <= _EXIF_MAX:
            options["exif"] = exif_tags.EXIF_PREFIX + exif
        else:
            log.warning("EXIF of %d bytes does not fit in a JPEG segment; not written", len(exif))
    options["extra"] = _metadata_segments(image)
    pil.save(fh, "JPEG", **options)


def _metadata_segments(image: Image) -> bytes:
    """The XMP APP1 and Photoshop APP13 segments, as raw marker bytes for Pillow to write."""
    out = b""
    if image.xmp:
        out += _xmp_segments(image.xmp)
    others = resolution.synced_resources(image.photoshop_resources, image.resolution)
    resources = irb.join(others, image.iptc)
    if resources:
        for piece in _split_at_resources(resources, _PHOTOSHOP_CHUNK):
            out += _segment(0xED, _PHOTOSHOP_TAG + piece)
    return out


def _xmp_segments(packet: bytes) -> bytes:
    """The XMP as one APP1 segment, losing its padding if it must; a packet still too
    large as a standard packet plus Extended XMP segments (see jpeg_xmp)."""
    if len(packet) > _XMP_MAX:
        packet = xmp_tags.without_padding(packet)
    if len(packet) <= _XMP_MAX:
        return _segment(0xE1, _XMP_TAG + packet)
    parts = jpeg_xmp.split(packet)
    if parts is None:
        log.warning("XMP of %d bytes does not fit in a JPEG segment and cannot be split into "
                    "Extended XMP; not written", len(packet))
        return b""
    standard, extension, guid = parts
    out = _segment(0xE1, _XMP_TAG + standard)
    for offset in range(0, len(extension), jpeg_xmp.CHUNK_MAX):
        chunk = extension[offset: offset + jpeg_xmp.CHUNK_MAX]
        out += _segment(0xE1, jpeg_xmp.EXTENSION_TAG + guid.encode("ascii")
                        + struct.pack(">II", len(extension), offset) + chunk)
    return out


def _segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def _split_at_resources(blob: bytes, limit: int) -> list[bytes]:
    """Pieces of at most `limit` bytes, cut between resources where one fits (readers that
    parse each APP13 segment on its own, as Pillow does, then still see whole resources)."""
    bounds, at = [], 0
    for r in irb.resources(blob):
        at += len(r.block)
        bounds.append(at)
    pieces, start = [], 0
    while start < len(blob):
        end = min(len(blob), start + limit)
        if end < len(blob):
            end = max((b for b in bounds if start < b <= end), default=end)
        pieces.append(blob[start:end])
        start = end
    return pieces


def _pil_array(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels

