"""Soft selection masks that know where they are.

A Mask stores 8-bit coverage (0 = untouched, 255 = fully replaced) only inside
its bounds; everything outside is 0. Work on a selection therefore costs what
the selection costs, not what the document costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from bridge.imaging.geometry import Bounds, Extent


@dataclass(frozen=True, eq=False)
class Mask:
    bounds: Bounds
    data: np.ndarray  # uint8, shape (bounds.height, bounds.width)

    def __post_init__(self) -> None:
        if self.data.dtype != np.uint8 or self.data.ndim != 2:
            raise ValueError(
                f"mask data must be 2-D uint8, got {self.data.dtype} {self.data.shape}")
        if self.data.shape != (self.bounds.height, self.bounds.width):
            raise ValueError(f"mask data {self.data.shape} does not match bounds {self.bounds}")

    @staticmethod
    def from_array(coverage: np.ndarray) -> Mask:
        """From a full-image coverage array (uint8/uint16/float/bool), trimmed to its content."""
        data = to_uint8_coverage(coverage)
        bounds = content_bounds(data)
        rows, cols = bounds.slices
        return Mask(bounds, np.ascontiguousarray(data[rows, cols]))

    @staticmethod
    def rectangle(bounds: Bounds) -> Mask:
        return Mask(bounds, np.full((bounds.height, bounds.width), 255, np.uint8))

    @property
    def is_empty(self) -> bool:
        return self.bounds.is_empty or not self.data.any()

    def region(self, bounds: Bounds) -> np.ndarray:
        """Coverage inside any rectangle, zeros where the mask has none (a new array)."""
        out = np.zeros((bounds.height, bounds.width), np.uint8)
        inner = self.bounds.intersect(bounds)
        if not inner.is_empty:
            src_rows, src_cols = inner.relative_to(self.bounds).slices
            dst_rows, dst_cols = inner.relative_to(bounds).slices
            out[dst_rows, dst_cols] = self.data[src_rows, src_cols]
        return out

    def to_full(self, extent: Extent) -> np.ndarray:
        return self.region(Bounds.of(extent))

    def grown(self, radius: int, extent: Extent) -> Mask:
        """Dilate by radius pixels (a disc), staying inside the image."""
        if radius <= 0:
            return self
        area = self.bounds.pad(radius).clamp(extent)
        data = self.region(area)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return Mask(area, cv2.dilate(data, k))

    def feathered(self, radius: float, extent: Extent) -> Mask:
        """Soften edges with a Gaussian of about `radius` pixels, growing outward only.

        The fully covered core keeps 255 so the fill replaces it; the feather is
        laid outside the original edge.
        """
        if radius <= 0:
            return self
        r = math.ceil(radius)
        sigma = max(radius / 2.0, 0.5)
        reach = math.ceil(3 * sigma)  # the blur kernel's radius, set explicitly below
        # Room for the dilation and the whole blur tail: a smaller area would cut the
        # feather off with a visible step where the area ends.
        area = self.bounds.pad(r + reach + 1).clamp(extent)
        data = self.region(area)
        grown = cv2.dilate(data, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
        # Replicate: at the image edge the selection continues; inside, the area's rim is 0 anyway.
        blurred = cv2.GaussianBlur(grown, (2 * reach + 1,) * 2, sigma,
                                   borderType=cv2.BORDER_REPLICATE)
        return Mask(area, np.maximum(blurred, data)).trimmed()

    def trimmed(self) -> Mask:
        inner = content_bounds(self.data)
        if inner == Bounds.of(self.bounds.extent):
            return self
        rows, cols = inner.slices
        return Mask(inner.offset(self.bounds.x, self.bounds.y), self.data[rows, cols].copy())


def to_uint8_coverage(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3:
        if a.shape[2] != 1:
            raise ValueError(f"a mask must have one channel, got {a.shape[2]}")
        a = a[:, :, 0]
    if a.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported mask type {a.dtype}")


def content_bounds(data: np.ndarray) -> Bounds:
    """Smallest rectangle holding every non-zero value (empty at 0,0 if none)."""
    rows = np.flatnonzero(data.any(axis=1))
    if rows.size == 0:
        return Bounds(0, 0, 0, 0)
    cols = np.flatnonzero(data.any(axis=0))
    return Bounds.from_corners(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
