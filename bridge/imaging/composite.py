"""Paste a result back through a soft mask, touching only covered pixels."""

from __future__ import annotations

import numpy as np

from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.mask import Mask


def blend_region(base: np.ndarray, patch: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """base*(1-c) + patch*c for arrays of one region; exact where c is 0 or 255.

    Works in the arrays' own integer type with rounding, so 0 gives base's bits and
    255 gives patch's bits exactly.
    """
    if base.shape != patch.shape:
        raise ValueError(f"patch {patch.shape} does not match region {base.shape}")
    if base.dtype != patch.dtype:
        raise ValueError(f"patch type {patch.dtype} differs from image type {base.dtype}")
    c = coverage.astype(np.float32)[..., None] / 255.0
    if np.issubdtype(base.dtype, np.integer):
        mixed = base.astype(np.float32) + (patch.astype(np.float32) - base) * c
        out = np.rint(mixed).astype(base.dtype)
    else:
        out = (base + (patch - base) * c).astype(base.dtype)
    # Bit-exact at the ends, whatever float rounding did in between.
    out = np.where(coverage[..., None] == 0, base, out)
    return np.where(coverage[..., None] == 255, patch, out)


def paste_masked(target: np.ndarray, patch: np.ndarray, patch_bounds: Bounds, mask: Mask) -> None:
    """Blend `patch` (placed at patch_bounds) into `target` in place, through `mask`.

    Only pixels where the mask covers something are written: everything else in
    `target` keeps its exact bits, whatever the document size.
    """
    # Clamped to the target too: a patch or mask hanging over its edge must not index
    # with negative (wrapping) slices.
    area = patch_bounds.intersect(mask.bounds).clamp(Extent(target.shape[1], target.shape[0]))
    if area.is_empty:
        return
    rows, cols = area.slices
    prow, pcol = area.relative_to(patch_bounds).slices
    coverage = mask.region(area)
    target[rows, cols] = blend_region(target[rows, cols], patch[prow, pcol], coverage)
