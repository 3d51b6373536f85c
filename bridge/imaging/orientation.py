"""Apply an EXIF/TIFF orientation (1-8) to pixels, so the stored value can become 1.

The value says how the stored rows and columns map to what a viewer shows:
2 mirror left-right, 3 turn 180°, 4 mirror top-bottom, 5 transpose,
6 turn 90° clockwise, 7 transverse, 8 turn 90° counter-clockwise.
"""

from __future__ import annotations

import numpy as np

from bridge.imaging.geometry import Extent


def oriented_view(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """A strided view of HxW(xC) pixels as a viewer shows them (no copy)."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.swapaxes(0, 1)
    if orientation == 6:
        return pixels[::-1].swapaxes(0, 1)
    if orientation == 7:
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return pixels[:, ::-1].swapaxes(0, 1)
    return pixels


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels turned upright: the same array for 1 (or an unknown value), else one copy."""
    if orientation not in range(2, 9):
        return pixels
    return np.ascontiguousarray(oriented_view(pixels, orientation))


def oriented_extent(extent: Extent, orientation: int) -> Extent:
    """The size a viewer shows: width and height swap for orientations 5 to 8."""
    return Extent(extent.height, extent.width) if orientation in (5, 6, 7, 8) else extent
