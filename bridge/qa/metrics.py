"""Per-image QA measurements, cheap enough to take on every file of a batch.

Sharpness is measured on a copy downscaled to at most 512 px on the long side (the
same scale for every image, so it compares across sizes), colour and the subject on
a 256 px copy, and clipping on every pixel, strip by strip. When a subject stands out (alpha, or a
backdrop), colour, lightness and clipping are measured on the subject only.
- mean_lab, lightness: mean CIELAB colour and median L*, for the colour distance to
  the reference or to the batch's typical colour, and exposure;
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

from bridge.imaging.depth import to_uint8
from bridge.imaging.image import Image
from bridge.imaging.mask import content_bounds
from bridge.ops.color_match import linear_to_lab, to_linear

SIDE = 512
STATS_SIDE = 256
STRIP_PIXELS = 1 << 22


def small_copy(image: Image, side: int = SIDE) -> np.ndarray:
    h, w = image.height, image.width
    f = min(1.0, side / max(h, w))
    if f >= 1.0:
        return image.pixels
    size = (max(1, round(w * f)), max(1, round(h * f)))
    out = cv2.resize(image.pixels, size, interpolation=cv2.INTER_AREA)
    return out if out.ndim == 3 else out[:, :, None]


def clipping(image: Image, subject: np.ndarray | None = None) -> tuple[float, float]:
    """Shares of visible pixels with any colour channel at 0, and at full scale.

    Visible: alpha above 0, and inside `subject` (a mask at any smaller scale, mapped
    by nearest neighbour) when one is given, so a white e-commerce backdrop does not
    count as blown-out highlights.
    """
    px = image.pixels
    n = image.color_channels
    h, w = image.height, image.width
    rows = max(1, STRIP_PIXELS // max(1, w * n))
    cols_idx = None
    if subject is not None:
        cols_idx = (np.arange(w) * subject.shape[1]) // max(w, 1)
    low = high = total = 0
    for y in range(0, h, rows):
        strip = px[y:y + rows, :, :n]
        visible = px[y:y + rows, :, -1] > 0 if image.has_alpha else np.ones(strip.shape[:2], bool)
        if subject is not None and cols_idx is not None:
            rows_idx = (np.arange(y, y + strip.shape[0]) * subject.shape[0]) // max(h, 1)
            visible &= subject[rows_idx[:, None], cols_idx[None, :]]
        is_low, is_high = _ends(strip)
        low += int(np.count_nonzero(is_low & visible))
        high += int(np.count_nonzero(is_high & visible))
        total += int(np.count_nonzero(visible))
    total = max(1, total)
    return low / total, high / total


def _ends(strip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of pixels with any channel at 0, and at full scale."""
    if strip.dtype.kind == "f":
        return (strip <= 0).any(axis=-1), (strip >= 1.0).any(axis=-1)
    top = int(np.iinfo(strip.dtype).max)
    n = strip.shape[2]
    strip = np.ascontiguousarray(strip)
    # cv2.inRange tests every channel in one pass (the numpy way takes three).
    not_low = cv2.inRange(strip, (1,) * n, (top,) * n)
    not_high = cv2.inRange(strip, (0,) * n, (top - 1,) * n)
    return not_low == 0, not_high == 0


def subject_mask(small: np.ndarray, has_alpha: bool) -> np.ndarray | None:
    """Where the subject is, on the small copy; None when nothing stands out."""
    if has_alpha:
        inside = to_uint8(small[:, :, -1]) > 8
    else:
        from bridge.ops.standardize import border_color_matte

        colour = small if small.shape[2] in (1, 3) else small[:, :, :-1]
        matte, _ = border_color_matte(Image(np.ascontiguousarray(colour)), 15.0)
        inside = matte > 128
    if not inside.any() or inside.mean() > 0.97:
        return None
    return inside


def margins(inside: np.ndarray) -> dict[str, float]:
    h, w = inside.shape
    box = content_bounds(inside)
    out = {k: round(100 * v, 2) for k, v in {
        "left": box.x / w, "top": box.y / h, "right": (w - box.x1) / w,
        "bottom": (h - box.y1) / h}.items()}
    out["min"] = min(out.values())
    return out


def measure(image: Image) -> dict[str, Any]:
    """Metrics of one output; colour, lightness and clipping are taken over the subject
    when one stands out from the backdrop, else over the whole image."""
    sharp_copy = small_copy(image)
    small = small_copy(Image(sharp_copy), STATS_SIDE)  # colour statistics need fewer pixels
    inside = subject_mask(small, image.has_alpha)
    colour = small[:, :, : image.color_channels]
    lin = to_linear(colour)
    if lin.shape[2] == 1:
        lin = np.repeat(lin, 3, axis=2)
    lab = linear_to_lab(lin).reshape(-1, 3)
    keep = inside.reshape(-1) if inside is not None else None
    if keep is None and image.has_alpha:
        keep = to_uint8(small[:, :, -1]).reshape(-1) >= 128
    if keep is not None and keep.any():
        lab = lab[keep]
    grey = to_uint8(sharp_copy[:, :, : image.color_channels])
    grey = grey[:, :, 0] if grey.shape[2] == 1 else cv2.cvtColor(
        np.ascontiguousarray(grey), cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    low, high = clipping(image, inside)
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
        "measured_on": "subject" if inside is not None else "image",
        "margins": margins(inside) if inside is not None else None,
    }


def colour_distance(lab_a: list[float], lab_b: list[float]) -> float:
    """CIE76 ΔE between two mean colours."""
    return round(float(np.linalg.norm(np.subtract(lab_a, lab_b))), 3)
