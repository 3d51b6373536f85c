"""Small helpers the format codecs share: channel order, depth narrowing, buffers as files.

Depth narrowing works row strip by row strip so no full-size float (or uint32)
copy of a large image is ever made.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

_STRIP_BYTES = 16 << 20
# round(v * 255 / 65535) == round(v / 257) for every 16-bit v; a table is exact and fast.
_U16_TO_U8 = ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels: the array itself if 8-bit, else a rounded copy (float clipped to 0..1)."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return _U16_TO_U8[pixels]
    return _float_to(pixels, np.uint8, 255.0)


def to_uint16(pixels: np.ndarray) -> np.ndarray:
    """16-bit pixels from 8-bit (v * 257, exact), 16-bit (as is) or float (clipped, rounded)."""
    if pixels.dtype == np.uint16:
        return pixels
    if pixels.dtype == np.uint8:
        out = pixels.astype(np.uint16)
        out *= np.uint16(257)  # in place: one copy, not two
        return out
    return _float_to(pixels, np.uint16, 65535.0)


def _float_to(pixels: np.ndarray, dtype: type, top: float) -> np.ndarray:
    out = np.empty(pixels.shape, dtype)
    rows = max(1, _STRIP_BYTES // max(1, pixels[:1].nbytes))
    for y in range(0, pixels.shape[0], rows):
        scaled = pixels[y: y + rows] * np.float32(top)
        np.nan_to_num(scaled, copy=False, nan=0.0)
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0, top, out=scaled)
        out[y: y + rows] = scaled
    return out


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
