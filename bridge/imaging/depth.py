"""Conversions between bit depths, with correct rounding and no surprises in range.

Narrowing works row strip by row strip so no full-size float (or uint32) copy
of a large image is ever made.
"""

from __future__ import annotations

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



def to_float(pixels: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] (float input passes through). Use on tiles, not whole large images."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) * np.float32(1.0 / 255.0)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) * np.float32(1.0 / 65535.0)
    return pixels.astype(np.float32, copy=False)


def from_float(values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """float in [0, 1] back to dtype, rounded and clipped (float32 passes through)."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return values.astype(np.float32, copy=False)
    top = 255.0 if dtype == np.uint8 else 65535.0
    return np.clip(np.rint(values * top), 0, top).astype(dtype)
