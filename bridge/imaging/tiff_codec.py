"""TIFF: 8/16-bit and 32-bit float; grey, grey+alpha, RGB, RGBA; palettes and bilevel too.

tifffile reads the tags and, for uncompressed, Deflate/ZIP and LZMA files, the
pixels. LZW, JPEG, PackBits and 2/4-bit samples need the imagecodecs package,
which we do not ship: those pixels come from libtiff instead, through Pillow up
to 8 bits and through OpenCV for 16/32 bits (compressed 16-bit grey+alpha is
refused: OpenCV drops that alpha and Pillow has no such mode).

Alpha is the first extra sample marked associated or unassociated (or a lone
extra sample with no ExtraSamples tag, as OpenCV writes RGBA); associated
(premultiplied) alpha is divided out, since Image alpha is never premultiplied.
Unspecified extra samples (Photoshop's saved selections) are dropped.

Writing is uncompressed (fast, and every reader takes it), with the ICC profile
in tag 34675, alpha as an unassociated extra sample, EXIF as Photoshop and
Lightroom write it (descriptive ASCII tags in IFD0 plus EXIF and GPS sub-IFDs),
and the resolution as XResolution/YResolution in inches (read in inches or cm;
see resolution.py).

XMP (tag 700), IPTC (tag 33723) and Photoshop's image resources (tag 34377) are
read as the bytes the file holds. IPTC comes from the resources' 0x0404 block
when tag 33723 is absent or cut short (ImageMagick 6 writes its length in LONGs
but its type as bytes). They are written as Photoshop writes them: XMP and the
resources as BYTE, IPTC as LONG (zero-padded to whole LONGs; the padding is
dropped again on reading, so the record comes back byte for byte) and also as
the resources' 0x0404 block, where ImageMagick looks for it.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import TiffImagePlugin

from bridge.errors import BridgeError, InvalidInput, UnsupportedFormat
from bridge.imaging import exif as exif_tags
from bridge.imaging import irb, resolution, tiff_inflate
from bridge.imaging import xmp as xmp_tags
from bridge.imaging.codec_util import (
    BufferFile,
    as_hwc,
    swap_red_blue_in_place,
    upright_resolution,
)
from bridge.imaging.formats import Header
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from bridge.imaging.orientation import apply_orientation

log = logging.getLogger(__name__)

if not tiff_inflate.install(tifffile):
    log.warning("tifffile %s keeps its decompressors elsewhere: Deflate and LZMA TIFF strips "
                "are inflated without a size bound", tifffile.__version__)

MINISWHITE, MINISBLACK, RGB, PALETTE, SEPARATED, YCBCR = 0, 1, 2, 3, 5, 6
ASSOCIATED, UNASSOCIATED = 1, 2
# Compressions tifffile decodes without imagecodecs: none, Deflate (two codes), LZMA.
NATIVE_COMPRESSIONS = {1, 8, 32946, 34925}
# EXIF IFD0 text tags that a TIFF's own IFD0 can carry (tifffile writes the others itself).
IFD0_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_STRIP_BYTES = 16 << 20
# Extra samples beyond colour and alpha (Photoshop's saved selections, spot channels)
# that a TIFF may have; they are dropped, but only after being decoded.
MAX_EXTRA_SAMPLES = 8
XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG = 700, 33723, 34377
_BYTE = 1


@dataclass
class TiffLayout:
    width: int
    height: int
    samples: int
    bits: int
    sample_format: int  # 1 unsigned, 2 signed, 3 float
    photometric: int
    planar: int
    compression: int
    extrasamples: tuple[int, ...]
    orientation: int
    depth: int
    data_end: int
    icc: bytes | None
    colormap: np.ndarray | None
    xmp: bytes | None = None
    iptc: bytes | None = None
    photoshop_resources: bytes | None = None
    resolution: tuple[float, float] | None = None  # pixels per inch, as stored
    tile: tuple[int, int, int] | None = None  # length, width, depth of a tile; None: strips

    @property
    def color_samples(self) -> int:
        return 3 if self.photometric in (RGB, YCBCR) else 1

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample as decoded (1-bit samples become one byte, 12-bit two, ...)."""
        return max(1, 1 << max(0, (self.bits - 1).bit_length() - 3))

    @property
    def bytes_per_pixel(self) -> int:
        """What decoding holds per pixel: every sample, or a palette's 16-bit RGB."""
        return max(self.samples * self.sample_bytes, 6 if self.photometric == PALETTE else 0)

    @property
    def segment_bytes(self) -> int:
        """The bytes of one decoded tile (strips never hold more than the image)."""
        if self.tile is None:
            return 0
        per_segment = 1 if self.planar == 2 else self.samples
        return self.tile[0] * self.tile[1] * self.tile[2] * per_segment * self.sample_bytes

    @property
    def layout(self) -> str:
        return f"{self.samples} samples of {self.bits} bits"

    @property
    def alpha(self) -> int | None:
        """ASSOCIATED or UNASSOCIATED when the first extra sample is alpha."""
        kind = self.extrasamples[0] if self.extrasamples else None
        return kind if kind in (ASSOCIATED, UNASSOCIATED) else None


def header(data: bytes | memoryview) -> Header:
    try:
        with tifffile.TiffFile(BufferFile(data)) as tif:
            page = tif.pages.first
            layout = _layout(page)
            _read_metadata(layout, page, data)
    except BridgeError:
        raise
    except Exception as e:  # tifffile raises many types on corrupt input; all mean bad data
        raise InvalidInput(f"the TIFF header could not be read: {e}") from None
    return Header("tiff", Extent(layout.width, layout.height), layout,
                  bytes_per_pixel=layout.bytes_per_pixel, segment_bytes=layout.segment_bytes)


def _layout(page: tifffile.TiffPage) -> TiffLayout:
    def tag(code: int, default: object = None) -> object:
        t = page.tags.get(code)
        return default if t is None else t.value

    ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False) if c]
    icc = tag(34675)
    colormap = page.colormap if page.photometric == PALETTE else None
    return TiffLayout(
        width=int(page.imagewidth), height=int(page.imagelength),
        samples=int(page.samplesperpixel), bits=int(page.bitspersample),
        sample_format=int(page.sampleformat), photometric=int(page.photometric),
        planar=int(page.planarconfig), compression=int(page.compression),
        extrasamples=_extrasamples(page),
        orientation=int(tag(274, 1)),  # type: ignore[call-overload]
        depth=int(page.imagedepth), data_end=max(ends, default=0),
        icc=bytes(icc) if isinstance(icc, bytes | bytearray | np.ndarray) else None,
        colormap=None if colormap is None else np.asarray(colormap),
        tile=(int(page.tilelength), int(page.tilewidth), max(1, int(page.tiledepth)))
        if page.is_tiled else None,
    )


def _read_metadata(lay: TiffLayout, page: tifffile.TiffPage, data: bytes | memoryview) -> None:
    lay.xmp = _raw_tag(page, data, XMP_TAG)
    iptc = _raw_tag(page, data, IPTC_TAG)
    iptc = irb.strip_iptc_padding(iptc) if iptc else None
    resources = _raw_tag(page, data, PHOTOSHOP_TAG)
    from_resources, lay.photoshop_resources = irb.split(resources) if resources else (None, None)
    lay.resolution = resolution.choose(_tag_resolution(page), resolution.from_resources(resources))
    # ImageMagick 6 cuts the tag to a quarter, sometimes at a dataset's end: a record
    # that ends mid-dataset, or one that only begins the resources' copy, is cut short.
    cut = iptc is not None and (irb.iptc_end(iptc) != len(iptc) or (
        from_resources is not None and len(from_resources) > len(iptc)
        and from_resources.startswith(iptc)))
    lay.iptc = from_resources if (iptc is None or cut) and from_resources else iptc


def _tag_resolution(page: tifffile.TiffPage) -> resolution.Reading | None:
    """XResolution/YResolution per ResolutionUnit (inch when absent; 1 means no unit)."""
    x, y = _rational(page, resolution.X_RESOLUTION), _rational(page, resolution.Y_RESOLUTION)
    unit = page.tags.get(resolution.RESOLUTION_UNIT)
    try:
        unit_value = resolution.UNIT_INCH if unit is None else int(unit.value)
    except (TypeError, ValueError):
        return None
    return resolution.from_units(x, y or x, unit_value) if x else None


def _rational(page: tifffile.TiffPage, code: int) -> tuple[int, int] | None:
    tag = page.tags.get(code)
    value = None if tag is None else tag.value
    if isinstance(value, int):  # a writer that used SHORT or LONG
        return value, 1
    if isinstance(value, tuple) and len(value) >= 2 and all(isinstance(v, int) for v in value[:2]):
        return value[0], value[1]
    return None


def _raw_tag(page: tifffile.TiffPage, data: bytes | memoryview, code: int) -> bytes | None:
    """A tag's value as the bytes in the file, whatever type it was written as."""
    tag = page.tags.get(code)
    if tag is None:
        return None
    try:
        size = tag.valuebytecount
    except (KeyError, ValueError, struct.error):  # a type tifffile does not know
        return None
    start = tag.valueoffset
    if size <= 0 or start < 0 or start + size > len(data):
        return None
    return bytes(data[start: start + size])


def _extrasamples(page: tifffile.TiffPage) -> tuple[int, ...]:
    kinds = tuple(int(x) for x in page.extrasamples)
    color = 3 if page.photometric in (RGB, YCBCR) else 1
    if not kinds and int(page.samplesperpixel) == color + 1:
        # One extra sample but no ExtraSamples tag (OpenCV writes RGBA this way):
        # every reader we know treats it as alpha, so do we.
        return (UNASSOCIATED,)
    return kinds


# -- decoding --------------------------------------------------------------------
def decode(data: bytes | memoryview, head: Header) -> Image:
    lay: TiffLayout = head.info
    if lay.photometric == SEPARATED:
        raise UnsupportedFormat("CMYK TIFFs are not supported; convert the file to RGB first")
    if lay.photometric not in (MINISWHITE, MINISBLACK, RGB, PALETTE, YCBCR):
        raise UnsupportedFormat(f"TIFF photometric interpretation {lay.photometric} "
                                "is not supported (grey, RGB and palette are)")
    if lay.depth != 1:
        raise UnsupportedFormat("volumetric TIFFs are not supported")
    most = lay.color_samples + 1 + MAX_EXTRA_SAMPLES
    if lay.samples > most:
        # Each sample is decoded before the extras are dropped: refuse them unread.
        raise UnsupportedFormat(
            f"the TIFF has {lay.samples} samples per pixel; at most {most} (colour, alpha and "
            f"{MAX_EXTRA_SAMPLES} extra channels) are supported", samples=lay.samples)
    if lay.data_end > len(data):
        raise InvalidInput(f"the TIFF is truncated: its pixel data runs to byte {lay.data_end:,} "
                           f"but only {len(data):,} bytes were received")
    if lay.compression in NATIVE_COMPRESSIONS and lay.photometric != YCBCR:
        try:
            pixels = _with_tifffile(data, lay)
        except _NeedsCodec:
            pixels = _with_libtiff(data, lay)
    else:
        pixels = _with_libtiff(data, lay)
    if lay.orientation in range(2, 9):
        pixels = apply_orientation(pixels, lay.orientation)
    turned = lay.orientation in range(2, 9)
    xmp = xmp_tags.reset_orientation(lay.xmp) if lay.xmp and turned else lay.xmp
    return Image(pixels, icc=lay.icc, exif=exif_tags.exif_from_tiff(data),
                 source_format="tiff", metadata={"orientation": lay.orientation} if turned else {},
                 xmp=xmp, iptc=lay.iptc, photoshop_resources=lay.photoshop_resources,
                 resolution=upright_resolution(lay.resolution, lay.orientation))


class _NeedsCodec(Exception):
    pass


def _with_tifffile(data: bytes | memoryview, lay: TiffLayout) -> np.ndarray:
    try:
        with tifffile.TiffFile(BufferFile(data)) as tif:
            raw = tif.pages.first.asarray()
    except Exception as e:
        if "imagecodecs" in str(e):
            raise _NeedsCodec from e
        raise InvalidInput(f"the TIFF's pixel data could not be read: {e}") from None
    if lay.planar == 2 and raw.ndim == 3:
        raw = np.moveaxis(raw, 0, -1)
    samples = _to_standard_depth(as_hwc(raw), lay)
    if lay.photometric == PALETTE:
        return _apply_palette(samples[:, :, 0], lay)
    return _straight_alpha(_pick_channels(samples, lay), lay)


def _to_standard_depth(raw: np.ndarray, lay: TiffLayout) -> np.ndarray:
    """uint8, uint16 or float32 samples at full range; grey-is-white inverted."""
    kind = raw.dtype.kind
    if raw.dtype == np.bool_:
        out = raw.view(np.uint8) * np.uint8(255)
    elif kind == "f":
        out = raw.astype(np.float32, copy=False)
    elif kind == "u" and lay.bits in (8, 16) and raw.dtype.itemsize * 8 == lay.bits:
        out = raw
    elif kind == "u" and lay.photometric == PALETTE:
        out = raw  # indices; the colour map gives the values
    else:
        raise UnsupportedFormat(f"TIFF samples of {lay.bits}-bit {raw.dtype} are not supported "
                                "(8/16-bit unsigned and 32-bit float are)")
    if lay.photometric == MINISWHITE:
        if out.dtype.kind == "f":
            raise UnsupportedFormat("white-is-zero float TIFFs are not supported")
        out = np.iinfo(out.dtype).max - out
    return out


def _apply_palette(indices: np.ndarray, lay: TiffLayout) -> np.ndarray:
    cmap = lay.colormap
    if cmap is None or cmap.ndim != 2 or cmap.shape[0] != 3:
        raise InvalidInput("the palette TIFF has no usable colour map")
    table = np.ascontiguousarray(cmap.T.astype(np.uint16))  # (entries, 3), 16-bit values
    # 8-bit palettes are stored as v * 257 (libtiff) or v << 8 (Pillow and others).
    if not (table % 257).any():
        table = (table // 257).astype(np.uint8)
    elif not (table % 256).any():
        table = (table >> 8).astype(np.uint8)
    return table[np.minimum(indices, table.shape[0] - 1)]


def _pick_channels(samples: np.ndarray, lay: TiffLayout) -> np.ndarray:
    color = lay.color_samples
    if samples.shape[2] < color:
        raise InvalidInput(f"the TIFF declares {lay.samples} samples but its photometric "
                           f"interpretation needs {color}")
    keep = color + (1 if lay.alpha and samples.shape[2] > color else 0)
    if keep == samples.shape[2]:
        return np.ascontiguousarray(samples)
    return np.ascontiguousarray(samples[:, :, :keep])


def _with_libtiff(data: bytes | memoryview, lay: TiffLayout) -> np.ndarray:
    """Pixels through libtiff, for what tifffile cannot do without imagecodecs (LZW, JPEG,
    PackBits, 2/4-bit samples): Pillow's up to 8 bits (OpenCV's premultiplies 8-bit alpha
    and drops grey alpha), OpenCV's for 16 and 32 bits (Pillow has no 16-bit colour)."""
    if lay.bits <= 8:
        return _with_pillow(data, lay)
    if lay.color_samples == 1 and lay.alpha is not None:
        raise UnsupportedFormat("compressed 16-bit grey+alpha TIFFs (LZW, JPEG, PackBits) are "
                                "not supported; save uncompressed or with ZIP compression")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InvalidInput(
            f"the TIFF's pixel data could not be decoded ({lay.bits}-bit, compression "
            f"{lay.compression}): it is corrupt or a variant that is not supported")
    pixels = as_hwc(pixels)
    c = pixels.shape[2]
    if lay.color_samples == 1:
        return np.ascontiguousarray(pixels[:, :, :1]) if c > 1 else pixels
    swap_red_blue_in_place(pixels)
    if c == 4 and lay.alpha is None:
        return np.ascontiguousarray(pixels[:, :, :3])
    return _straight_alpha(pixels, lay)


# Pillow modes we take as they are; it reads associated alpha straight already.
_PILLOW_MODES = ("L", "LA", "RGB", "RGBA")


def _with_pillow(data: bytes | memoryview, lay: TiffLayout) -> np.ndarray:
    try:
        # The plugin class directly: our own size check already ran, Pillow's would be
        # a second, different limit.
        with TiffImagePlugin.TiffImageFile(BufferFile(data)) as im:
            im.load()  # Pillow scales 1/2/4-bit grey to 0..255 and undoes white-is-zero
            if im.mode == "1":
                im = im.convert("L")
            elif im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode == "RGBX":  # RGB plus an extra sample that is not alpha
                im = im.convert("RGB")
            elif im.mode in ("RGBa", "La"):  # premultiplied: Pillow divides it out
                im = im.convert(im.mode.upper())
            if im.mode not in _PILLOW_MODES:
                raise UnsupportedFormat(
                    f"this {lay.bits}-bit TIFF (read as {im.mode}) is not supported")
            return as_hwc(np.array(im))
    except BridgeError:
        raise
    except Exception as e:
        raise InvalidInput(f"the TIFF's pixel data could not be read: {e}") from None


def _straight_alpha(pixels: np.ndarray, lay: TiffLayout) -> np.ndarray:
    if lay.alpha == ASSOCIATED and pixels.shape[2] in (2, 4):
        _unpremultiply(pixels)
    return pixels


def _unpremultiply(pixels: np.ndarray) -> None:
    """Divide colour by alpha in place, strip by strip (no full float copy)."""
    top = 1.0 if pixels.dtype.kind == "f" else float(np.iinfo(pixels.dtype).max)
    rows = max(1, _STRIP_BYTES // max(1, pixels[:1].nbytes * 4))
    for y in range(0, pixels.shape[0], rows):
        block = pixels[y: y + rows]
        alpha = block[:, :, -1:].astype(np.float32)
        color = block[:, :, :-1].astype(np.float32)
        np.divide(color * np.float32(top), alpha, out=color, where=alpha > 0)
        color[np.broadcast_to(alpha == 0, color.shape)] = 0
        if pixels.dtype.kind != "f":
            np.clip(np.rint(color, out=color), 0, top, out=color)
        block[:, :, :-1] = color


# -- encoding --------------------------------------------------------------------
def write(image: Image, fh: BinaryIO, quality: int) -> None:
    """Uncompressed, at the image's own depth (8, 16 or 32-bit float)."""
    order, text_tags, children = "<", [], {}
    parsed = exif_tags.parse(image.exif) if image.exif else None
    if parsed is not None:
        order, ifd0 = parsed
        text_tags = [(e.tag, 2, 0, exif_tags.ascii_value(e), True) for e in ifd0.entries
                     if e.tag in IFD0_TEXT_TAGS and e.type == exif_tags.ASCII]
        if ifd0.get(exif_tags.ORIENTATION):  # as the EXIF says (1 for any decoded image)
            value = exif_tags.orientation(image.exif)
            text_tags.append((exif_tags.ORIENTATION, exif_tags.SHORT, 1, value, True))
        children = {t: c for t, c in ifd0.children.items()
                    if t in (exif_tags.EXIF_IFD, exif_tags.GPS_IFD)}
    extra_tags = text_tags + _metadata_tags(image, order)
    c = image.channels
    ppi = image.resolution
    start = fh.tell()
    tifffile.imwrite(
        fh, image.pixels[:, :, 0] if c == 1 else image.pixels,
        photometric="rgb" if c >= 3 else "minisblack",
        planarconfig="contig" if c > 1 else None,
        extrasamples=("unassalpha",) if image.has_alpha else None,
        iccprofile=image.icc or None, metadata=None, software=False,
        byteorder=order, extratags=extra_tags,
        # Without one, tifffile writes 1/1 with no unit: readers then assume 72 ppi.
        resolution=(resolution.rational(ppi[0]), resolution.rational(ppi[1])) if ppi else None,
        resolutionunit="INCH" if ppi else None,
    )
    if children and not exif_tags.add_sub_ifds(fh, start, children, order):
        log.warning("EXIF not written: the TIFF is a BigTIFF")


def _metadata_tags(image: Image, order: str) -> list[tuple[int, int, int, object, bool]]:
    """XMP, IPTC and Photoshop resource tags for tifffile's extratags."""
    tags: list[tuple[int, int, int, object, bool]] = []
    if image.xmp:
        tags.append((XMP_TAG, _BYTE, len(image.xmp), image.xmp, True))
    if image.iptc:
        padded = image.iptc + b"\0" * (-len(image.iptc) % 4)
        longs = struct.unpack(f"{order}{len(padded) // 4}I", padded)  # the same bytes in the file
        tags.append((IPTC_TAG, exif_tags.LONG, len(longs), longs, True))
    others = resolution.synced_resources(image.photoshop_resources, image.resolution)
    resources = irb.join(others, image.iptc)
    if resources:
        tags.append((PHOTOSHOP_TAG, _BYTE, len(resources), resources, True))
    return tags
