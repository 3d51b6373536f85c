"""Restored faces back into the image: a soft mask drawn in face space, warped back.

The mask is drawn once in the 512x512 face space, a rounded square whose edge fades
out smoothly (`face_mask`), so its feather scales with each face: a face a fifth of
the template's size gets a feather a fifth as wide. Warped back with the same inverse
similarity as the restored pixels, it gives each face a `PastedFace`: the restored
colour in the image's own depth over the face's footprint, and 8-bit coverage.

Several faces become one layer (`merge`): the original pixels over the union of the
footprints, with each face's restored pixels where its coverage is the largest, and
the per-pixel maximum coverage as the layer mask. That layer composited through its
mask (`composite`, bridge.imaging.composite.paste_masked) is exactly what Photoshop
shows for it, and leaves every pixel outside the masks bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from bridge.faces.align import FACE_SIZE, compose, translation, warp
from bridge.imaging.composite import paste_masked
from bridge.imaging.depth import from_float
from bridge.imaging.geometry import Bounds
from bridge.imaging.mask import Mask, content_bounds

# Shares of the face size: how far in the mask's edge sits, how wide it fades, and how
# round its corners are (the template's corners hold background, not face).
MASK_INSET = 0.02
MASK_FEATHER = 0.10
MASK_CORNER = 0.18


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@cache
def face_mask(size: int = FACE_SIZE) -> np.ndarray:
    """Coverage in [0, 1] over the face square: 1 inside, fading to 0 at the rim."""
    c = (np.arange(size, dtype=np.float64) + 0.5)
    edge = np.minimum(c, size - c) - MASK_INSET * size  # distance inside the inset square
    dx, dy = edge[None, :], edge[:, None]
    r = MASK_CORNER * size
    # Signed distance into a rounded square: near a corner, distance to the corner arc.
    corner = r - np.hypot(np.maximum(r - dx, 0.0), np.maximum(r - dy, 0.0))
    inside = np.where((dx < r) & (dy < r), corner, np.minimum(dx, dy))
    out = _smoothstep(inside / (MASK_FEATHER * size)).astype(np.float32)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class PastedFace:
    """One restored face in image coordinates (colour channels only)."""

    bounds: Bounds
    patch: np.ndarray  # (h, w, colour channels), the image's dtype
    coverage: np.ndarray  # (h, w) uint8, 0 = untouched


def warp_back(restored: np.ndarray, face_to_region: np.ndarray, region: Bounds, dtype: np.dtype,
              blend: float = 1.0) -> PastedFace | None:
    """A restored face (float32 512x512xC in [0, 1]) warped onto `region` of the image.

    `face_to_region` maps face-space pixels to pixels of the region (its corner is 0, 0).
    None when the face leaves no coverage there (blend 0, or the square misses it).
    """
    if region.is_empty or blend <= 0:
        return None
    size = restored.shape[0]
    cov = warp(face_mask(size), face_to_region, region.width, region.height, cv2.BORDER_CONSTANT)
    # Quantised before the blend: float noise (0.9999999 after a warp of ones) must not
    # turn full coverage into 254, or half coverage into 127 on one face and 128 on another.
    coverage = np.rint(cov[:, :, 0] * 255.0)
    if blend < 1.0:
        coverage = np.rint(coverage * blend)
    coverage = coverage.astype(np.uint8)
    inner = content_bounds(coverage)
    if inner.is_empty:
        return None
    # Only the covered part is warped in colour: a face's footprint is mostly its square.
    to_inner = compose(translation(-inner.x, -inner.y), face_to_region)
    colour = warp(restored, to_inner, inner.width, inner.height, cv2.BORDER_REPLICATE)
    rows, cols = inner.slices
    return PastedFace(inner.offset(region.x, region.y), from_float(colour, dtype),
                      np.ascontiguousarray(coverage[rows, cols]))


def merge(base: np.ndarray, faces: list[PastedFace]) -> tuple[Bounds, np.ndarray, np.ndarray]:
    """One layer for all faces: (bounds, pixels, coverage) over the union of footprints.

    `base` is the whole image (HxWxC, alpha last if any); the layer keeps its alpha and
    its pixels wherever no face wins. Where faces overlap, the one with more coverage
    gives the pixel, and the layer mask is the larger coverage.
    """
    bounds = Bounds.enclosing(f.bounds for f in faces)
    rows, cols = bounds.slices
    pixels = np.array(base[rows, cols], copy=True)
    coverage = np.zeros((bounds.height, bounds.width), np.uint8)
    for face in faces:
        r, c = face.bounds.relative_to(bounds).slices
        wins = face.coverage > coverage[r, c]
        channels = face.patch.shape[2]
        target = pixels[r, c, :channels]
        target[wins] = face.patch[wins]
        coverage[r, c] = np.maximum(coverage[r, c], face.coverage)
    return bounds, pixels, coverage


def composite(target: np.ndarray, bounds: Bounds, pixels: np.ndarray, coverage: np.ndarray) -> None:
    """The merged layer through its mask into `target`, in place; exact outside the mask."""
    paste_masked(target, pixels, bounds, Mask(bounds, coverage))
