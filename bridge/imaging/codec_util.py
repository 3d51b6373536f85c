"""Small helpers the format codecs share: channel order and buffers as files."""

from __future__ import annotations

import io

import cv2
import numpy as np

from bridge.imaging import exif as exif_tags
from bridge.imaging import xmp as xmp_tags
from bridge.imaging.image import Image, SourceFormat
from bridge.imaging.orientation import apply_orientation
from bridge.imaging.resolution import Resolution, transposed


def oriented_image(pixels: np.ndarray, icc: bytes | None, exif: bytes | None,
                   source_format: SourceFormat, *, xmp: bytes | None = None,
                   iptc: bytes | None = None, photoshop_resources: bytes | None = None,
                   resolution: Resolution | None = None) -> Image:
    """The decoded Image with EXIF orientation applied once and reset to 1 in the EXIF
    (and in the XMP's tiff:Orientation, so no viewer turns the pixels again).

    `resolution` is as stored; a quarter turn swaps its x and y with the pixels.
    """
    orientation = exif_tags.orientation(exif)
    if orientation != 1:
        pixels = apply_orientation(pixels, orientation)
        exif = exif_tags.reset_orientation(exif)  # type: ignore[arg-type]
        xmp = xmp_tags.reset_orientation(xmp) if xmp else xmp
        resolution = upright_resolution(resolution, orientation)
    return Image(pixels, icc=icc, exif=exif, source_format=source_format,
                 metadata={"orientation": orientation} if orientation != 1 else {},
                 xmp=xmp, iptc=iptc, photoshop_resources=photoshop_resources,
                 resolution=resolution)


def upright_resolution(resolution: Resolution | None, orientation: int) -> Resolution | None:
    """Orientations 5-8 turn the pixels a quarter: x and y change places."""
    return transposed(resolution) if orientation in (5, 6, 7, 8) else resolution


def swap_red_blue(pixels: np.ndarray) -> np.ndarray:
    """RGB(A) <-> BGR(A) as a new array (grey passes through): what OpenCV encoders want."""
    c = pixels.shape[2] if pixels.ndim == 3 else 1
    if c == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if c == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    return pixels


def swap_red_blue_in_place(pixels: np.ndarray) -> np.ndarray:
    """BGR(A) -> RGB(A) in the decoder's own fresh array (no copy)."""
    c = pixels.shape[2] if pixels.ndim == 3 else 1
    if c == 3:
        cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)
    elif c == 4:
        cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA, dst=pixels)
    return pixels


def as_hwc(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


class BufferFile(io.RawIOBase):
    """A read-only, seekable file over a buffer, so readers that want files need no copy."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        super().__init__()
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        target = memoryview(buffer).cast("B")  # len() of a typed view counts items, not bytes
        chunk = self._view[self._pos: self._pos + len(target)]
        n = len(chunk)
        target[:n] = chunk
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._view[self._pos: end])
        self._pos += len(chunk)
        return chunk
