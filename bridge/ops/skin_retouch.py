"""Skin retouch: frequency separation guided by face landmarks.

For each face YuNet finds (box + eyes, nose, mouth corners):
1. a soft skin mask: the face ellipse from the box and the eye line, times a
   skin-colour model (a Gaussian in YCrCb's Cr/Cb fitted to the cheeks and the
   nose bridge, plus a floor on luma that drops hair, nostrils and shadows), with
   the eyes, brows and lips cut out by landmark-placed ellipses; feathered;
2. a low/high split at a radius that follows the face size (`radius`, default
   0.8 % of the face width): high = texture (pores, fine hair) and is kept as is;
3. the low-frequency part is smoothed inside the skin only (a Gaussian of
   `smoothing` x face width, normalised by the mask so hair and background never
   bleed in), which evens blemishes, redness and blotchy tone while the face's
   larger shading survives; `strength` says how much of that to apply;
4. retouched = smoothed low + high.

Layers (all placed over the faces' region, not the whole document):
- "retouched": the result, with the skin mask as its layer mask; outside the mask
  the composite is bit-identical to the input;
- "low": the smoothed low-frequency layer, hidden;
- "high": the texture as a mid-grey-centred layer, hidden: high = 0.5 + (image -
  low) / 2. In Photoshop put "high" above "low", set it to Linear Light
  (result = low + 2 x (high - 0.5)) and the pair equals "retouched"; group them and
  give the group the retouched layer's mask to finish by hand. In 8-bit the halving
  drops the texture's least significant bit, as Photoshop's own recipe does; in
  16-bit nothing visible is lost.

Everything runs in float32 per face region, written back in the image's depth.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from bridge.faces.detect import Face, detect_faces, resolve_detector
from bridge.imaging.depth import from_float, to_8bit, to_float
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer, OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema


# -- geometry ---------------------------------------------------------------------
def face_region(face: Face, extent: Extent) -> Bounds:
    """The box grown to take in the forehead, the jaw and some margin, inside the image."""
    w, h = face.width, face.height
    return Bounds.from_corners(
        math.floor(face.x - 0.35 * w), math.floor(face.y - 0.45 * h),
        math.ceil(face.x + 1.35 * w), math.ceil(face.y + 1.25 * h),
    ).clamp(extent)


def ellipse(shape: tuple[int, int], centre: np.ndarray, axes: tuple[float, float], angle: float,
            soft: float) -> np.ndarray:
    """1 inside an ellipse, 0 outside, with a linear ramp over the outer `soft` share."""
    h, w = shape
    yy, xx = np.ogrid[:h, :w]
    dx, dy = xx - centre[0], yy - centre[1]
    c, s = math.cos(angle), math.sin(angle)
    u = (dx * c + dy * s) / max(axes[0], 1e-3)
    v = (-dx * s + dy * c) / max(axes[1], 1e-3)
    d = np.sqrt(u * u + v * v, dtype=np.float32)
    return np.clip((1.0 - d) / soft, 0.0, 1.0).astype(np.float32)


def landmark_mask(shape: tuple[int, int], face: Face) -> np.ndarray:
    """Face ellipse without eyes, brows and lips (face in region coordinates)."""
    re, le = face.point("right_eye"), face.point("left_eye")
    mr, ml = face.point("mouth_right"), face.point("mouth_left")
    iod = max(face.eye_distance, 1.0)
    ex = (le - re) / iod
    angle = math.atan2(ex[1], ex[0])
    up = np.array([ex[1], -ex[0]])  # perpendicular to the eye line, towards the forehead
    centre = np.array([face.x + face.width / 2, face.y + face.height / 2]) + up * 0.04 * face.height
    m = ellipse(shape, centre, (0.52 * face.width, 0.58 * face.height), angle, 0.18)
    for eye in (re, le):
        m *= 1.0 - ellipse(shape, eye, (0.32 * iod, 0.19 * iod), angle, 0.4)
        m *= 1.0 - ellipse(shape, eye + up * 0.32 * iod, (0.38 * iod, 0.14 * iod), angle, 0.4)
    mouth = (mr + ml) / 2 - up * 0.03 * iod
    half_width = float(np.linalg.norm(ml - mr)) / 2
    m *= 1.0 - ellipse(shape, mouth, (half_width + 0.14 * iod, 0.24 * iod), angle, 0.35)
    return m


def skin_colour_weight(rgb8: np.ndarray, face: Face) -> np.ndarray:
    """How skin-like each pixel's colour is (0..1), from a model fitted to this face's cheeks."""
    re, le = face.point("right_eye"), face.point("left_eye")
    mr, ml = face.point("mouth_right"), face.point("mouth_left")
    nose = face.point("nose")
    iod = max(face.eye_distance, 1.0)
    ex = (le - re) / iod
    grey = rgb8.shape[2] == 1
    ycc = rgb8[:, :, 0].astype(np.float32)[:, :, None] if grey else \
        cv2.cvtColor(rgb8, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    h, w = ycc.shape[:2]
    patches = ((re + mr) / 2 - ex * 0.15 * iod, (le + ml) / 2 + ex * 0.15 * iod,
               (re + le) / 4 + nose / 2)
    r = max(1.5, 0.13 * iod)
    yy, xx = np.ogrid[:h, :w]
    take = np.zeros((h, w), bool)
    for p in patches:
        take |= (xx - p[0]) ** 2 + (yy - p[1]) ** 2 <= r * r
    samples = ycc[take]
    if samples.shape[0] < 8:
        return np.ones((h, w), np.float32)
    luma_med = float(np.median(samples[:, 0]))
    # Dark hair, nostrils and deep shadow fall under a luma floor; highlights stay skin.
    weight = np.clip((ycc[:, :, 0] - 0.35 * luma_med) / max(0.15 * luma_med, 1.0), 0.0, 1.0)
    if grey:
        return weight.astype(np.float32)
    chroma = samples[:, 1:]
    mu, cov = _robust_gaussian(chroma)
    inv = np.linalg.inv(cov)
    d = ycc[:, :, 1:] - mu
    maha = np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", d, inv, d), 0.0))
    return (weight * np.clip((4.0 - maha) / 1.5, 0.0, 1.0)).astype(np.float32)


def _robust_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance after dropping the 20 % furthest samples (specks, stray hair)."""
    reg = np.eye(x.shape[1]) * 4.0  # a floor on the spread: 8-bit chroma steps and noise
    mu, cov = x.mean(axis=0), np.cov(x, rowvar=False) + reg
    d = np.einsum("ni,ij,nj->n", x - mu, np.linalg.inv(cov), x - mu)
    keep = x[d <= np.quantile(d, 0.8)]
    if keep.shape[0] >= 8:
        mu, cov = keep.mean(axis=0), np.cov(keep, rowvar=False) + reg
    return mu, cov


def texture_weight(rgb8: np.ndarray, face: Face) -> np.ndarray:
    """Low where the fine texture is much stronger than on the cheeks: hair strands, not pores.

    Blond or grey hair can share the skin's chroma; its strands still give a local
    contrast several times that of skin at the scale of a few pixels.
    """
    luma = (rgb8[:, :, 0] if rgb8.shape[2] == 1 else
            cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY)).astype(np.float32)
    scale = max(1.0, 0.01 * face.width)
    detail = luma - cv2.GaussianBlur(luma, (0, 0), scale)
    energy = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), 2.5 * scale))
    re, le = face.point("right_eye"), face.point("left_eye")
    mr, ml = face.point("mouth_right"), face.point("mouth_left")
    iod = max(face.eye_distance, 1.0)
    ex = (le - re) / iod
    ref = []
    for p in ((re + mr) / 2 - ex * 0.15 * iod, (le + ml) / 2 + ex * 0.15 * iod):
        x = int(np.clip(round(p[0]), 0, luma.shape[1] - 1))
        y = int(np.clip(round(p[1]), 0, luma.shape[0] - 1))
        ref.append(energy[y, x])
    skin = max(float(np.median(ref)), 1.0)
    return np.clip((4.0 * skin - energy) / (2.0 * skin), 0.0, 1.0).astype(np.float32)


def skin_mask(rgb8: np.ndarray, face: Face) -> np.ndarray:
    """Soft skin coverage in 0..1 for a region (face in the region's coordinates)."""
    m = landmark_mask(rgb8.shape[:2], face) * skin_colour_weight(rgb8, face)
    m *= texture_weight(rgb8, face)
    sigma = max(0.8, 0.015 * face.width)
    m = cv2.GaussianBlur(m, (0, 0), sigma)
    return np.clip(m, 0.0, 1.0)


# -- frequency separation --------------------------------------------------------
def separate(pixels: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Low (Gaussian blur at `radius`) and high (pixels - low), float32."""
    low = cv2.GaussianBlur(pixels, (0, 0), radius, borderType=cv2.BORDER_REFLECT)
    low = low.reshape(pixels.shape)
    return low, pixels - low


def smooth_within(low: np.ndarray, coverage: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing that only averages skin: blur(low*m) / blur(m)."""
    m = coverage[:, :, None]
    num = cv2.GaussianBlur(low * m, (0, 0), sigma).reshape(low.shape)
    den = cv2.GaussianBlur(coverage, (0, 0), sigma)[:, :, None]
    return np.where(den > 0.02, num / np.maximum(den, 1e-6), low).astype(np.float32)


def retouch_face(colour: np.ndarray, face: Face, params: dict[str, Any]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(retouched, low, high-for-linear-light, mask uint8, info) for one face region.

    `colour` is the region's colour channels in the image's depth; `face` in region coordinates.
    """
    dtype = colour.dtype
    coverage = skin_mask(to_8bit(colour), face)
    radius = params["radius"] or max(1.0, 0.008 * face.width)
    sigma = max(radius * 1.5, params["smoothing"] * face.width)
    f = to_float(colour)
    low, high = separate(f, radius)
    smooth = smooth_within(low, coverage, sigma)
    new_low = low + (smooth - low) * np.float32(params["strength"])
    retouched = from_float(new_low + high, dtype)
    mask = np.rint(coverage * 255.0).astype(np.uint8)
    high_layer = from_float(0.5 + high * 0.5, dtype)
    info = {"radius": round(radius, 2), "smoothing_sigma": round(sigma, 2),
            "skin_share": round(float((mask > 127).mean()), 4)}
    return retouched, from_float(new_low, dtype), high_layer, mask, info


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    model = resolve_detector(ctx, params["detector"] or None)
    ctx.progress(0.05, "finding faces")
    faces = detect_faces(image.pixels, model, min_score=params["min_face_score"])
    faces = faces[: params["max_faces"]]
    meta: dict[str, Any] = {"faces": [f.to_json() for f in faces], "strength": params["strength"],
                            "detector": model.name,
                            "blend": "high over low in Linear Light equals retouched"}
    if not faces:
        ctx.warn("no face found: the image is unchanged")
        return OpResult([full_layer("retouched", image)], image.extent, meta)

    regions = [face_region(f, image.extent) for f in faces]
    bounds = Bounds.enclosing(regions)
    source = image.crop(bounds).pixels
    n = image.color_channels
    out = np.array(source, copy=True)
    low_layer = np.array(source, copy=True)
    high_layer = np.array(source, copy=True)
    combined = np.zeros((bounds.height, bounds.width), np.uint8)
    written = np.zeros((bounds.height, bounds.width), bool)
    per_face = []
    for i, (face, region) in enumerate(zip(faces, regions, strict=True)):
        ctx.progress(0.1 + 0.85 * i / len(faces), f"retouching face {i + 1} of {len(faces)}")
        rows, cols = region.relative_to(bounds).slices
        local = face.shifted(-region.x, -region.y)
        ret, low, high, m, info = retouch_face(
            np.ascontiguousarray(source[rows, cols, :n]), local, params)
        per_face.append(info)
        # Where faces overlap, the one with more skin coverage wins; never outside any mask.
        wins = m > combined[rows, cols]
        out[rows, cols, :n][wins] = ret[wins]
        combined[rows, cols][wins] = m[wins]
        fresh = wins | ~written[rows, cols]
        low_layer[rows, cols, :n][fresh] = low[fresh]
        high_layer[rows, cols, :n][fresh] = high[fresh]
        written[rows, cols] |= True
    meta["per_face"] = per_face
    ctx.progress(1.0, "done")
    layers = [
        Layer("retouched", image.with_pixels(out), bounds, combined),
        Layer("low", image.with_pixels(low_layer), bounds, visible=False),
        Layer("high", image.with_pixels(high_layer), bounds, visible=False),
    ]
    return OpResult(layers, image.extent, meta)


def preflight(params: dict[str, Any], ctx: OpContext) -> None:
    """Before any work: the face detector model is there."""
    resolve_detector(ctx, params["detector"] or None)


PATH_PARAMS = ("detector",)

OPERATION = Operation(
    name="skin-retouch",
    title="Skin retouch",
    description="Frequency separation on the skin of each face: blemishes and uneven tone "
                "smoothed, texture kept. Returns retouched, low and high layers.",
    params=ParamSchema((
        Param("strength", float, 0.7, "how much of the smoothing to apply", minimum=0.0,
              maximum=1.0),
        Param("radius", float, 0.0, "frequency split radius in pixels (0: 0.8 % of the face "
              "width)", minimum=0.0, maximum=500.0),
        Param("smoothing", float, 0.025, "size of the tone smoothing as a share of the face "
              "width", minimum=0.002, maximum=0.2),
        Param("min_face_score", float, 0.8, "detection confidence needed", minimum=0.1,
              maximum=1.0),
        Param("max_faces", int, 20, "retouch at most this many faces (largest first)",
              minimum=1, maximum=200),
        Param("detector", str, "", "YuNet model file ('': the installed model)"),
    )),
    run=run,
    models=("yunet",),
)
