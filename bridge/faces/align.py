"""Five-landmark similarity alignment to the FFHQ 512 face template, and the way back.

Face restoration models (GFPGAN, RestoreFormer, CodeFormer) are trained on 512x512
crops aligned like FFHQ: eyes, nose tip and mouth corners at fixed places. A face is
brought there by the similarity (rotation, uniform scale, translation) that best maps
its five landmarks onto TEMPLATE_512, and the restored crop is brought back by the
inverse.

The transform is the closed-form least-squares similarity of Umeyama (1991), computed
here rather than with cv2.estimateAffinePartial2D: that one is robust estimation
(RANSAC by default, or LMedS), which with only five points may discard a landmark as an
"outlier" and, for RANSAC, depends on random sampling. Least squares weighs all five
points, is deterministic, never reflects (the sign of the rotation is fixed), and
inverts exactly.

Coordinates: pixel centres at integers, as OpenCV's warpAffine and YuNet's landmarks
use them. Matrices are 2x3, `M @ [x, y, 1]`, mapping source to destination.

Resampling: warpAffine's bilinear filter aliases when it shrinks. `warp` therefore
blurs first whenever the transform scales below 0.8 (a Gaussian of 0.3 destination
pixels) and samples once; enlargements use bicubic, clipped to [0, 1].
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from bridge.imaging.geometry import Bounds, Extent

FACE_SIZE = 512
# Where the five landmarks sit in a 512x512 FFHQ-aligned face, in YuNet's order: the
# subject's right eye (on the image's left), left eye, nose tip, right mouth corner,
# left mouth corner. The standard template of the GFPGAN/CodeFormer face helpers.
TEMPLATE_512 = np.array([
    [192.98138, 239.94708],
    [318.90277, 240.19360],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
], np.float64)
# Below this scale a warp blurs first (bilinear alone would alias), with a Gaussian of
# this many destination pixels: about the bandwidth of an area filter, but the image is
# resampled once, not twice (an area resize followed by a sub-pixel warp blurs more).
_SHRINK_FIRST = 0.8
_PREFILTER_SIGMA = 0.3


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity M minimising sum |M @ [src_i, 1] - dst_i|^2 (Umeyama)."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("need at least two matching points")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = float((xs**2).sum()) / len(src)
    if var_s < 1e-12:
        raise ValueError("the source points coincide")
    cov = xd.T @ xs / len(src)
    u, sv, vt = np.linalg.svd(cov)
    # A reflection would fit mirrored faces better; a similarity must not mirror.
    d = np.diag([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sv) @ d)) / var_s
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def invert(m: np.ndarray) -> np.ndarray:
    a_inv = np.linalg.inv(m[:, :2])
    return np.hstack([a_inv, (-a_inv @ m[:, 2])[:, None]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """outer after inner, as one 2x3 matrix."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def resize_map(fx: float, fy: float) -> np.ndarray:
    """Where a resize by (fx, fy) sends a pixel centre: x' = (x + 0.5) fx - 0.5."""
    return np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5]])


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]


def scale_of(m: np.ndarray) -> float:
    return math.sqrt(abs(float(np.linalg.det(m[:, :2]))))


def alignment(landmarks: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Image -> face-space similarity for five landmarks (YuNet order)."""
    return similarity(landmarks, TEMPLATE_512 * (size / FACE_SIZE))


def footprint(to_face: np.ndarray, extent: Extent, size: int = FACE_SIZE, margin: int = 2) -> Bounds:
    """The image pixels the face square covers (plus a filter margin), inside the image."""
    s = size - 1
    corners = apply(invert(to_face), [[0, 0], [s, 0], [0, s], [s, s]])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + margin + 1
    return Bounds.from_corners(int(x0), int(y0), int(x1), int(y1)).clamp(extent)


def warp(src: np.ndarray, m: np.ndarray, width: int, height: int,
         border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """dst(p) = src(m^-1 p) for a (height, width) dst; float32 HxWxC in, same out.

    `m` maps src pixel coordinates to dst pixel coordinates. `border` says what lies
    outside src (reflection for image content, BORDER_CONSTANT zeros for masks).
    """
    if src.ndim == 2:
        src = src[:, :, None]
    channels = src.shape[2]
    s = scale_of(m)
    if s < _SHRINK_FIRST:
        # Anti-alias at the destination's pixel size, then sample once.
        src = cv2.GaussianBlur(src, (0, 0), _PREFILTER_SIGMA / s, borderType=cv2.BORDER_REFLECT_101)
        if src.ndim == 2:
            src = src[:, :, None]
    interp = cv2.INTER_CUBIC if s > 1.0 / _SHRINK_FIRST else cv2.INTER_LINEAR
    # warpAffine handles at most four channels at once.
    parts = [cv2.warpAffine(np.ascontiguousarray(src[:, :, i:i + 4]), m, (width, height),
                            flags=interp, borderMode=border, borderValue=0)
             for i in range(0, channels, 4)]
    out = np.concatenate([p if p.ndim == 3 else p[:, :, None] for p in parts], axis=2)
    if interp == cv2.INTER_CUBIC:
        np.clip(out, 0.0, 1.0, out=out)  # bicubic overshoots at edges
    return out
