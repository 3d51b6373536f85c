"""Per-image QA measurements, cheap enough to take on every file of a batch.

All measured on a copy downscaled to at most 512 px on the long side (the same
scale for every image, so sharpness compares across sizes), except clipping,
which counts every pixel strip by strip.
- mean_lab: mean CIELAB colour (opaque pixels), for the colour distance to the
  reference or to the batch's typical colour;
- clipped_share: pixels with a colour channel at 0 or at full scale (shadow
  and highlight shares given apart);
- sharpness: variance of the Laplacian of the grey image (8-bit scale);
- subject margins: free space from the subject's box to each edge, percent of the
  side; the subject comes from alpha when the image has it, else from what differs
  from the border colour (standardize's backdrop model). None when nothing stands
  out (a full-bleed photo).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from bridge.imaging.depth import to_8bit
from bridge.imaging.image import Image
from bridge.imaging.mask import content_bounds
from bridge.ops.color_match import linear_to_lab, to_linear

SIDE = 512
STRIP_PIXELS = 1 << 22


def small_copy(image: Image, side: int = SIDE) -> np.ndarray:
    h, w = image.height, image.width
    f = min(1.0, side / max(h, w))
    if f >= 1.0:
        return image.pixels
    size = (max(1, round(w * f)), max(1, round(h * f)))
    out = cv2.resize(image.pixels, size, interpolation=cv2.INTER_AREA)
    return out if out.ndim == 3 else out[:, :, None]


def clipping(image: Image) -> tuple[float, float]:
    """Shares of visible pixels (alpha above 0) with any colour channel at 0, and at full scale."""
    px = image.pixels
    top = 1.0 if px.dtype.kind == "f" else np.iinfo(px.dtype).max
    n = image.color_channels
    rows = max(1, STRIP_PIXELS // max(1, image.width * n))
    low = high = total = 0
    for y in range(0, image.height, rows):
        strip = px[y:y + rows, :, :n]
        visible = px[y:y + rows, :, -1] > 0 if image.has_alpha else np.ones(strip.shape[:2], bool)
        low += int(((strip <= 0).any(axis=-1) & visible).sum())
        high += int(((strip >= top).any(axis=-1) & visible).sum())
        total += int(visible.sum())
    total = max(1, total)
    return low / total, high / total


def subject_margins(small: np.ndarray, has_alpha: bool) -> dict[str, float] | None:
    h, w = small.shape[:2]
    if has_alpha:
        alpha = to_8bit(small[:, :, -1])
        inside = alpha > 8
    else:
        from bridge.ops.standardize import border_color_matte

        colour = small if small.shape[2] in (1, 3) else small[:, :, :-1]
        matte, _ = border_color_matte(Image(np.ascontiguousarray(colour)), 15.0)
        inside = matte > 128
    box = content_bounds(inside)
    if box.is_empty or inside.mean() > 0.97:
        return None
    margins = {"left": box.x / w, "top": box.y / h, "right": (w - box.x1) / w,
               "bottom": (h - box.y1) / h}
    out = {k: round(100 * v, 2) for k, v in margins.items()}
    out["min"] = min(out.values())
    return out


def measure(image: Image) -> dict[str, Any]:
    small = small_copy(image)
    colour = small[:, :, : image.color_channels]
    lin = to_linear(colour)
    if lin.shape[2] == 1:
        lin = np.repeat(lin, 3, axis=2)
    lab = linear_to_lab(lin).reshape(-1, 3)
    if image.has_alpha:
        weight = (to_8bit(small[:, :, -1]).reshape(-1) >= 128)
        if weight.any():
            lab = lab[weight]
    grey = to_8bit(colour)
    grey = grey[:, :, 0] if grey.shape[2] == 1 else cv2.cvtColor(
        np.ascontiguousarray(grey), cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    low, high = clipping(image)
    return {
        "width": image.width,
        "height": image.height,
        "channels": image.channels,
        "depth": image.depth,
        "mean_lab": [round(float(v), 3) for v in lab.mean(axis=0)],
        "lightness": round(float(np.median(lab[:, 0])), 3),
        "clipped_share": round(low + high, 6),
        "clipped_shadows": round(low, 6),
        "clipped_highlights": round(high, 6),
        "sharpness": round(sharpness, 3),
        "margins": subject_margins(small, image.has_alpha),
    }


def colour_distance(lab_a: list[float], lab_b: list[float]) -> float:
    """CIE76 ΔE between two mean colours."""
    return round(float(np.linalg.norm(np.subtract(lab_a, lab_b))), 3)
