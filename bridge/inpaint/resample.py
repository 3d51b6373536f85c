"""Between the document's crop (its own depth) and the model's working size (float RGB).

Shrinking happens in the document's integer type before any float conversion, so
even a crop as large as the document never exists as floats: only the working
size does.
"""

from __future__ import annotations

import cv2
import numpy as np

from bridge.imaging.depth import from_float, to_float
from bridge.imaging.geometry import Extent


def _resize(pixels: np.ndarray, size: Extent) -> np.ndarray:
    h, w = pixels.shape[:2]
    if (w, h) == (size.width, size.height):
        return pixels
    shrinking = size.width * size.height < w * h
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(pixels, (size.width, size.height), interpolation=interp)
    return out[:, :, None] if out.ndim == 2 else out


def to_working(pixels: np.ndarray, colour_channels: int, size: Extent) -> np.ndarray:
    """A crop's pixels (HxWxC, any depth, alpha last) -> float32 RGB at `size`, in [0, 1].

    Shrinking resizes the crop view with all its channels and drops alpha after:
    slicing the colour channels off first would make OpenCV copy the whole crop.
    """
    h, w = pixels.shape[:2]
    if size.width * size.height < w * h:
        out = to_float(_resize(pixels, size)[:, :, :colour_channels])
    else:
        out = _resize(to_float(pixels[:, :, :colour_channels]), size)
    out = np.clip(out, 0.0, 1.0)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out, dtype=np.float32)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of float RGB, HxWx1."""
    return (rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32))[:, :, None]


def to_crop(fill: np.ndarray, size: Extent, dtype: np.dtype, channels: int) -> np.ndarray:
    """A float32 RGB fill at working size -> `channels` colour channels of `dtype` at `size`.

    Integer documents are quantised at the working size and resized in their own
    type, so the crop-sized result is the only crop-sized array made here. The
    result is always a new array the caller may write into.
    """
    if channels == 1:
        fill = to_grey(fill)
    if np.dtype(dtype) == np.float32:
        out = _resize(np.array(fill, dtype=np.float32, copy=True), size)
        return np.clip(out, 0.0, 1.0, out=out)
    return _resize(from_float(fill, dtype), size)


def mask_to_working(coverage: np.ndarray, size: Extent) -> np.ndarray:
    """Soft coverage at crop size -> the model's hard hole at `size` (255 wherever any coverage)."""
    h, w = coverage.shape
    if (w, h) == (size.width, size.height):
        small = coverage
    else:
        interp = cv2.INTER_AREA if size.width * size.height < w * h else cv2.INTER_LINEAR
        small = cv2.resize(coverage, (size.width, size.height), interpolation=interp)
    return np.where(small > 0, 255, 0).astype(np.uint8)
