"""Match a model's fill to the colours around the hole.

Diffusion models shift colour a little (the VAE round trip, the sampler's drift).
Around the hole the fill should equal the original, so a per-channel gain and
offset fitted on that ring of known pixels corrects the whole fill. Where the
model already reproduces the ring (LaMa keeps known pixels), the fit is identity.
"""

from __future__ import annotations

import cv2
import numpy as np

# Gains outside this range mean the ring is not a fair sample (a hard edge, a
# tiny ring); a correction that large would do more harm than good.
_MIN_GAIN, _MAX_GAIN = 0.8, 1.25
_MIN_RING_PIXELS = 16


def surrounding_ring(hole: np.ndarray, width: int) -> np.ndarray:
    """Known pixels (hole == 0) within `width` pixels of the hole, as a bool array."""
    width = max(1, width)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    near = cv2.dilate((hole > 0).astype(np.uint8), kernel) > 0
    return near & (hole == 0)


def match_colours(fill: np.ndarray, original: np.ndarray, hole: np.ndarray,
                  ring_width: int | None = None) -> np.ndarray:
    """`fill` with a per-channel gain/offset that makes its ring match `original`'s.

    fill, original: float32 HxWxC in [0, 1] at the same size; hole: uint8 HxW,
    non-zero where the model painted. Returns a new array (or `fill` when there
    is no ring to learn from, as with a selection covering the whole image).
    """
    if ring_width is None:
        ys, xs = np.nonzero(hole)
        span = 0 if ys.size == 0 else max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        ring_width = max(4, round(0.08 * span))
    ring = surrounding_ring(hole, ring_width)
    if int(ring.sum()) < _MIN_RING_PIXELS:
        return fill
    f = fill[ring].astype(np.float64)
    o = original[ring].astype(np.float64)
    f_mean, o_mean = f.mean(axis=0), o.mean(axis=0)
    f_std, o_std = f.std(axis=0), o.std(axis=0)
    gain = np.where(f_std > 1e-4, o_std / np.maximum(f_std, 1e-4), 1.0)
    gain = np.clip(gain, _MIN_GAIN, _MAX_GAIN)
    offset = o_mean - gain * f_mean
    out = fill * gain.astype(np.float32) + offset.astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out)
