"""Pixels in and out: the one place the server, CLI, PSD and batch code decode and encode.

- `probe(data)`: format and stored size from the header, no pixels decoded.
- `decode(data, max_pixels=)`: PNG, TIFF, JPEG or WebP (detected from the bytes)
  to an `Image`; the size is checked against `max_pixels` before any pixel is
  decoded; EXIF orientation is applied once and the stored EXIF (and an XMP
  tiff:Orientation) reset to 1; ICC profile, EXIF, XMP and IPTC bytes are kept
  exactly, with Photoshop's other image resources as opaque bytes; the print
  resolution (ppi) is read from the format's own place (see resolution.py).
- `decode_raw(...)` / `encode_raw(image)`: interleaved little-endian buffers, zero-copy.
- `decode_mask(data, extent, raw=)`: a selection as a `Mask`.
- `encode(image, fmt)`: PNG/TIFF keep 8/16-bit (TIFF also float); JPEG/WebP are 8-bit.
- `read_image(path)` / `write_image(image, path)`: files, written atomically.

`Image.exif` is the TIFF-structured EXIF blob without JPEG's "Exif\\0\\0" prefix.
Metadata each format holds: PNG, TIFF and JPEG all of ICC, EXIF, XMP, IPTC and
Photoshop's resources (PNG the last two as ImageMagick's raw profiles); WebP ICC,
EXIF and XMP. All four keep the resolution: PNG in pHYs, TIFF in its resolution
tags, JPEG in JFIF, WebP in the EXIF, with the EXIF's own resolution tags and
Photoshop's ResolutionInfo set to match. JPEG's segments cap EXIF at 64 KB (a
larger EXIF is left out with a warning); XMP over 64 KB is read and written as
Extended XMP (jpeg_xmp.py: the decoded Image holds one merged packet, which the
JPEG writer splits again, so every format gets the whole packet).
Every failure on bad input is a BridgeError (InvalidInput 400, TooLarge 413,
UnsupportedFormat 415), never a crash or a hang.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import struct
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import cv2
import numpy as np

from bridge.errors import (
    BridgeError,
    DiskFull,
    InvalidInput,
    InvalidParams,
    TooLarge,
    UnsupportedFormat,
    is_disk_full,
)
from bridge.imaging import jpeg_codec, png_codec, tiff_codec, webp_codec
from bridge.imaging.formats import (
    DEFAULT_MAX_PIXELS,
    FORMATS,
    FormatInfo,
    Header,
    check_decoded_size,
    check_size,
    format_for_suffix,
    sniff,
)
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.imaging.orientation import oriented_extent
from bridge.imaging.raw import decode_raw, encode_raw

__all__ = [
    "DEFAULT_MAX_PIXELS", "FORMATS", "FormatInfo", "decode", "decode_mask", "decode_raw",
    "encode", "encode_raw", "format_for_suffix", "probe", "read_image", "write_image",
]

log = logging.getLogger(__name__)

_CODECS: dict[str, ModuleType] = {
    "png": png_codec, "tiff": tiff_codec, "jpeg": jpeg_codec, "webp": webp_codec,
}
_LABELS = {"png": "PNG", "tiff": "TIFF", "jpeg": "JPEG", "webp": "WebP", "raw": "raw"}
_JPEG_MAX_SIDE = 65535


def _view(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    """Bytes as they are; anything else as a flat byte view (never a copy)."""
    return data if isinstance(data, bytes) else memoryview(data).cast("B")


def _header(fmt: str, data: bytes | memoryview) -> Header:
    try:
        return _CODECS[fmt].header(data)
    except BridgeError:
        raise
    except (struct.error, IndexError, ValueError) as e:
        raise InvalidInput(f"the {_LABELS[fmt]} header is corrupt: {e}") from None


def probe(data: bytes | bytearray | memoryview) -> tuple[str, Extent]:
    """Format name and stored size (before EXIF orientation) from the header alone.

    Raises UnsupportedFormat for bytes of no known format, InvalidInput for a broken header.
    """
    view = _view(data)
    fmt = sniff(view)
    return fmt, _header(fmt, view).extent


def decode(data: bytes | bytearray | memoryview, *, max_pixels: int | None = None) -> Image:
    """An Image from PNG, TIFF, JPEG or WebP bytes.

    `max_pixels` (default DEFAULT_MAX_PIXELS) is checked against the header
    first: a 100000x100000 header fails at once with TooLarge, before any
    allocation; so is what the header says decoding needs (pixels x samples x
    bytes, and a TIFF's tiles) against DECODED_BYTES_PER_PIXEL per allowed pixel.
    Palette PNG/TIFF become 8-bit RGB(A) (16-bit when a TIFF palette
    needs it); 1-bit becomes 8-bit grey (0/255). WebP always decodes as RGB(A).
    """
    view = _view(data)
    fmt = sniff(view)
    head = _header(fmt, view)
    check_size(head.extent, max_pixels)
    check_decoded_size(head.extent, head.bytes_per_pixel, max_pixels, _LABELS[fmt],
                       segment_bytes=head.segment_bytes, layout=getattr(head.info, "layout", ""))
    try:
        return _CODECS[fmt].decode(view, head)
    except BridgeError:
        raise
    except MemoryError:
        raise TooLarge(f"not enough memory to decode a {head.extent} {_LABELS[fmt]}") from None
    except Exception as e:  # a decoder library choking on hostile bytes is bad input, not a crash
        log.warning("decoding a %s failed", _LABELS[fmt], exc_info=True)
        raise InvalidInput(f"the {_LABELS[fmt]} could not be decoded: {e}") from None


# -- masks -----------------------------------------------------------------------
def decode_mask(data: bytes | bytearray | memoryview, extent: Extent, *,
                raw: dict[str, Any] | None = None) -> Mask:
    """A selection the size of the image, trimmed to its content.

    Encoded masks may be any decodable image, 8 or 16-bit (or float TIFF):
    - with alpha that is not fully opaque, the alpha is the coverage;
    - otherwise grey is the coverage, and colour is reduced to its luminance
      (Rec. 601 weights; exact when the channels are equal, as in a grey JPEG).
    With `raw` = {"width", "height", "depth": 8|16}, `data` is one channel of samples.
    An all-zero mask gives an empty Mask; whether that is an error is the caller's call.
    """
    view = _view(data)
    if raw is not None:
        width, height, depth = _mask_layout(raw)
        _check_mask_extent(Extent(width, height), extent)
        coverage = decode_raw(view, width, height, 1, depth,
                              max_pixels=max(extent.pixels, 1)).pixels
        return Mask.from_array(coverage)
    fmt = sniff(view)
    stored = _header(fmt, view).extent
    if extent not in (stored, oriented_extent(stored, 6)):
        _check_mask_extent(stored, extent)  # refuse before decoding a wrong-sized mask
    image = decode(view, max_pixels=max(extent.pixels, 1))
    _check_mask_extent(image.extent, extent)
    return Mask.from_array(_coverage(image))


def _mask_layout(raw: dict[str, Any]) -> tuple[int, int, int]:
    if not isinstance(raw, dict):
        raise InvalidInput("mask_raw must be a JSON object with width, height and depth")
    values = []
    for key in ("width", "height", "depth"):
        v = raw.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise InvalidInput(f"mask_raw needs an integer '{key}', got {v!r}")
        values.append(v)
    if values[0] < 0 or values[1] < 0:
        raise InvalidInput(f"mask_raw width and height cannot be negative, got "
                           f"{values[0]}x{values[1]}")
    if raw.get("channels", 1) != 1:
        raise InvalidInput("a raw mask has exactly one channel")
    if values[2] not in (8, 16):
        raise InvalidInput(f"a raw mask is 8 or 16-bit, not {values[2]}")
    return values[0], values[1], values[2]


def _check_mask_extent(mask: Extent, image: Extent) -> None:
    if mask != image:
        raise InvalidInput(f"the mask is {mask} but the image is {image}; they must match",
                           mask=[mask.width, mask.height], image=[image.width, image.height])


def _coverage(image: Image) -> np.ndarray:
    px = image.pixels
    alpha = image.alpha
    if alpha is not None:
        top = 1.0 if px.dtype.kind == "f" else np.iinfo(px.dtype).max
        if alpha.size and alpha.min() < top:
            return alpha
    if image.color_channels == 1:
        return px[:, :, 0]
    r, g, b = px[:, :, 0], px[:, :, 1], px[:, :, 2]
    if np.array_equal(r, g) and np.array_equal(r, b):
        return r
    return cv2.cvtColor(px, cv2.COLOR_RGBA2GRAY if image.has_alpha else cv2.COLOR_RGB2GRAY)


# -- encoding --------------------------------------------------------------------
def _write(image: Image, fmt: str, fh: BinaryIO, quality: int) -> None:
    if fmt not in FORMATS:
        raise UnsupportedFormat(f"cannot write '{fmt}'; use one of {', '.join(FORMATS)}",
                                format=fmt)
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise InvalidParams(f"quality must be an integer from 1 to 100, got {quality!r}",
                            param="quality")
    if image.width == 0 or image.height == 0:
        raise InvalidInput(f"cannot encode an empty {image.extent} image")
    if fmt == "raw":
        fh.write(encode_raw(image))
        return
    if fmt == "jpeg" and max(image.width, image.height) > _JPEG_MAX_SIDE:
        raise InvalidParams(f"JPEG images are at most {_JPEG_MAX_SIDE} pixels a side; this one "
                            f"is {image.extent}", format=fmt)
    _CODECS[fmt].write(image, fh, quality)


def encode(image: Image, fmt: str, *, quality: int = 95) -> bytes:
    """Encoded bytes; depth kept wherever the format allows.

    - png: 8 and 16-bit as they are (float becomes 16-bit); 1-4 channels; iCCP, eXIf,
      XMP in iTXt, IPTC and Photoshop's resources in zTXt raw profiles.
    - tiff: 8, 16 and 32-bit float, uncompressed; ICC; alpha unassociated; EXIF as
      IFD0 text tags plus EXIF/GPS sub-IFDs; XMP, IPTC and Photoshop's resources in tags
      700, 33723 and 34377.
    - jpeg: 8-bit; 16-bit is rounded (round(v*255/65535)), float clipped to 0..1 and
      rounded. Refuses alpha (InvalidParams): flatten first or pick another format.
      4:4:4 chroma at quality >= 90, 4:2:0 below.
    - webp: 8-bit as for JPEG, keeps alpha; lossless at quality 100; grey stored as RGB.
    - raw: the little-endian sample bytes (a copy; encode_raw gives a view instead).
    """
    if fmt == "raw":
        return bytes(encode_raw(image))
    buf = io.BytesIO()
    _write(image, fmt, buf, quality)
    return buf.getvalue()


# -- files -----------------------------------------------------------------------
def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Image:
    """Decode a file (format from its bytes, not its name)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read '{path}': {e.strerror or e}", path=str(path)) from None
    return decode(data, max_pixels=max_pixels)


def write_image(image: Image, path: str | os.PathLike[str], fmt: str | None = None, *,
                quality: int = 95) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename over `path`.

    The format comes from the suffix when `fmt` is None. On any failure the
    temporary file is removed and `path` is left as it was.
    """
    target = Path(path)
    fmt = fmt or format_for_suffix(target)
    if fmt not in FORMATS:
        raise UnsupportedFormat(f"cannot write '{fmt}'; use one of {', '.join(FORMATS)}")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    # "x": never write through a file that is already there; readable too, for TIFF's patching.
    try:
        fh = open(tmp, "x+b")  # noqa: SIM115 - closed below, before the rename
    except OSError as e:  # a missing folder or no permission: the caller's path is wrong
        raise InvalidParams(f"cannot write '{target}': {e.strerror or e}",
                            path=str(target)) from None
    try:
        with fh:
            _write(image, fmt, fh, quality)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        full = _out_of_space(e, target.parent)  # before the unlink frees the space again
        tmp.unlink(missing_ok=True)
        if full:
            raise DiskFull(f"the disk is full: cannot write '{target}'", path=str(target)) from None
        raise
    return target


def _out_of_space(error: BaseException, folder: Path) -> bool:
    if not isinstance(error, OSError):
        return False
    if is_disk_full(error):
        return True
    # tifffile reports a short write as a bare OSError ("N requested and M written").
    try:
        return error.errno is None and shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False
