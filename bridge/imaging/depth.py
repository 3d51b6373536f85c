"""Conversions between bit depths, with correct rounding and no surprises in range."""

from __future__ import annotations

import numpy as np


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint8 view or rounded copy: 16-bit v -> round(v * 255 / 65535), float clipped to [0, 1]."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


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
