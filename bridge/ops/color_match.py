"""Colour match: white balance, exposure normalisation and a transfer to a reference look.

Three per-pixel steps, applied in this order in one pass:
1. white balance (`grey-world`: the average becomes neutral; `white-patch`: the
   brightest 1 % becomes neutral), as channel gains in linear light;
2. exposure (`auto`): one linear-light gain that brings the median lightness to the
   reference's, or to `target_lightness` (L*) without a reference;
3. transfer to the reference in CIELAB: `mean-std` moves each channel's mean and
   spread onto the reference's (Reinhard et al. 2001), `histogram` maps each
   channel's distribution onto the reference's; `channels="color"` keeps lightness.

How it stays cheap and 16-bit safe: the statistics come from a copy downscaled to
about a megapixel (a mean, a spread or a 1024-quantile curve barely changes with
resolution), and the transform is then applied strip by strip in float32 to the
full-resolution pixels, written back in the image's own depth. No float copy of
the whole image exists at any time.

Values pushed out of range are clipped for 8/16-bit output (float stays as it is),
and the share of pixels concerned is reported in `metadata["clipped_share"]`,
with a warning above 0.5 %.

The reference is a file path on the bridge's machine (`reference`). Over HTTP,
POST /v1/recipes/run takes the reference image as a `reference` part.
The pixels are assumed to be sRGB-encoded (the usual case for 8-bit files and for
any RGB working space with a gamma near 2.2; a warning is given when the image and
the reference carry different ICC profiles).
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

from bridge.errors import InvalidParams
from bridge.imaging.depth import from_float, to_float
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer, OpContext, Operation, OpResult
from bridge.ops.params import Param, ParamSchema
from bridge.paths import user_path

STATS_PIXELS = 1_000_000
STRIP_VALUES = 1 << 22  # float32 values per strip (16 MB per temporary)
QUANTILES = 1024
CLIP_WARN_SHARE = 0.005

# -- colour science (sRGB, D65) ------------------------------------------------------
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]], np.float32)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ).astype(np.float32)
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)
_LUMA = _RGB2XYZ[1]
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    a = np.abs(v)
    out = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return np.copysign(out, v).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Inverse of srgb_to_linear, extended oddly below 0 and beyond 1 so nothing clips here."""
    v = np.asarray(v, np.float32)
    a = np.abs(v)
    out = np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1 / 2.4) - 0.055)
    return np.copysign(out, v).astype(np.float32)


@functools.cache
def _linear_lut(dtype: str) -> np.ndarray:
    top = 255 if dtype == "uint8" else 65535
    return srgb_to_linear(np.arange(top + 1, dtype=np.float32) / top)


def to_linear(pixels: np.ndarray) -> np.ndarray:
    """sRGB-encoded samples (uint8/uint16 via a lookup table, float directly) to linear float32."""
    if pixels.dtype in (np.uint8, np.uint16):
        return _linear_lut(pixels.dtype.name)[pixels]
    return srgb_to_linear(pixels)


def mix(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-pixel channel mixing: (..., k) times m (j x k) gives (..., j), float32.

    Through cv2.transform, not `@`: numpy hands small matrix products to a threaded
    BLAS whose start-up and spinning cost more than the arithmetic (40 % of a recipe's
    time in the bench), and whose threads fight the batch's worker processes.
    """
    x = np.ascontiguousarray(x, np.float32)
    k = x.shape[-1]
    flat = x.reshape(-1, 1, k)
    out = cv2.transform(flat, np.asarray(m, np.float32).reshape(-1, k))
    return out.reshape(*x.shape[:-1], -1)


def luma_of(lin: np.ndarray) -> np.ndarray:
    """Relative luminance Y of linear RGB (..., 3)."""
    return mix(lin, _LUMA[None, :])[..., 0]


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16) / 116)


def _f_inv(f: np.ndarray) -> np.ndarray:
    cube = f ** 3
    return np.where(cube > _EPS, cube, (116 * f - 16) / _KAPPA)


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """Linear RGB (..., 3) or grey (..., 1) to CIELAB; grey gives (..., 1) lightness."""
    if lin.shape[-1] == 1:
        return (116 * _f(lin) - 16).astype(np.float32)
    xyz = mix(lin, _RGB2XYZ / _WHITE[:, None])
    fx, fy, fz = (_f(xyz[..., i]) for i in range(3))
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1).astype(np.float32)


def lab_to_linear(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    if lab.shape[-1] == 1:
        return _f_inv(fy)[..., None].astype(np.float32)
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], -1) * _WHITE
    return mix(xyz.astype(np.float32), _XYZ2RGB)


def lightness_to_luminance(lightness: float) -> float:
    return float(_f_inv(np.float32((lightness + 16) / 116)))


def downscaled(pixels: np.ndarray, max_pixels: int = STATS_PIXELS) -> np.ndarray:
    """A copy with at most max_pixels pixels, same type and channels (area-averaged)."""
    h, w = pixels.shape[:2]
    if h * w <= max_pixels:
        return pixels
    f = (max_pixels / (h * w)) ** 0.5
    small = cv2.resize(pixels, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    return small if small.ndim == 3 else small[:, :, None]


def sample_pixels(image: Image, coverage: np.ndarray | None = None) -> np.ndarray:
    """Linear-light colour samples (N x C) from a downscaled copy; transparent or unselected
    pixels (alpha or coverage under half) are left out."""
    small = downscaled(image.pixels)
    keep = np.ones(small.shape[:2], bool)
    if image.has_alpha:
        alpha = to_float(small[:, :, -1])
        keep &= alpha >= 0.5
    if coverage is not None:
        cov = cv2.resize(coverage, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        keep &= cov >= 128
    colour = small[:, :, : image.color_channels]
    lin = to_linear(colour)
    samples = lin[keep]
    if samples.shape[0] == 0:  # everything transparent: use all pixels rather than nothing
        samples = lin.reshape(-1, lin.shape[-1])
    return samples


# -- statistics ---------------------------------------------------------------------
def white_balance_gains(lin: np.ndarray, method: str) -> np.ndarray:
    """Channel gains (3,) that make the grey-world average or the white patch neutral at
    its own luminance."""
    if lin.shape[-1] != 3 or method == "none":
        return np.ones(lin.shape[-1], np.float32)
    unclipped = (lin.max(axis=1) < 0.98) & (luma_of(lin) > 0.002)
    pool = lin[unclipped] if unclipped.sum() >= 16 else lin
    if method == "grey-world":
        ref = pool.mean(axis=0)
    else:  # white-patch: the brightest 1 % that is not already blown out
        luma = luma_of(pool)
        top = pool[luma >= np.quantile(luma, 0.99)]
        ref = top.mean(axis=0)
    ref = np.maximum(ref, 1e-6)
    gains = float(np.dot(ref, _LUMA)) / ref
    return np.clip(gains, 0.25, 4.0).astype(np.float32)


def median_lightness(lin: np.ndarray) -> float:
    luma = lin[:, 0] if lin.shape[-1] == 1 else luma_of(lin)
    return float(116 * _f(np.float32(np.median(luma))) - 16)


class Transfer:
    """Per-channel maps from this image's Lab distribution onto the reference's."""

    def __init__(self, source_lab: np.ndarray, reference_lab: np.ndarray, method: str,
                 channels: tuple[int, ...]) -> None:
        self.method = method
        self.channels = channels
        self.affine: dict[int, tuple[float, float]] = {}
        self.curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        q = np.linspace(0.0, 1.0, QUANTILES + 1)
        for c in channels:
            s, r = source_lab[:, c], reference_lab[:, c]
            if method == "mean-std":
                ratio = float(np.clip(r.std() / max(float(s.std()), 1e-3), 0.25, 4.0))
                self.affine[c] = (ratio, float(r.mean()) - ratio * float(s.mean()))
            else:
                sq = np.quantile(s, q).astype(np.float64)
                rq = np.quantile(r, q).astype(np.float64)
                # A value shared by many pixels (pure black, blown white) spans several
                # quantiles: it maps to the average of the reference over that span.
                sq, inverse = np.unique(sq, return_inverse=True)
                rq = np.bincount(inverse, weights=rq) / np.bincount(inverse)
                if sq.size == 1:  # a flat channel: move it to the reference's median
                    sq, rq = np.array([sq[0] - 1, sq[0] + 1]), np.array([rq[0] - 1, rq[0] + 1])
                self.curves[c] = (sq, rq)

    def describe(self) -> dict[str, Any]:
        if self.method == "mean-std":
            return {str(c): {"scale": round(a, 4), "offset": round(b, 4)}
                    for c, (a, b) in self.affine.items()}
        return {"quantiles": QUANTILES + 1}

    def apply(self, lab: np.ndarray) -> None:
        before = lab[..., 1:].copy() if 1 in self.channels else None
        for c in self.channels:
            if self.method == "mean-std":
                a, b = self.affine[c]
                lab[..., c] = lab[..., c] * a + b
            else:
                sq, rq = self.curves[c]
                # Beyond the sampled range, continue with slope 1 instead of flattening.
                x = lab[..., c]
                mapped = np.interp(x, sq, rq).astype(np.float32)
                mapped += np.where(x < sq[0], x - sq[0], 0) + np.where(x > sq[-1], x - sq[-1], 0)
                lab[..., c] = mapped
        if before is not None:
            # Near black and white there is no room for colour: a shift in a*/b* there would
            # leave the gamut and clip (crushing the shadows), so it fades out at the ends.
            lightness = lab[..., 0]
            fade = np.clip(lightness / 12.0, 0.0, 1.0) * np.clip((100.0 - lightness) / 8.0, 0.0, 1.0)
            lab[..., 1:] = before + (lab[..., 1:] - before) * fade[..., None]


@functools.lru_cache(maxsize=4)
def _reference_samples(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, bytes | None]:
    """Linear samples of a reference file; cached so a batch decodes its reference once."""
    from bridge.imaging.codecs import read_image

    ref = read_image(path)
    return sample_pixels(ref), ref.icc


def reference_samples(path: str) -> tuple[np.ndarray, bytes | None]:
    p = user_path(path, "reference")
    try:
        st = p.stat()
    except OSError:
        raise InvalidParams(f"the reference image '{path}' does not exist",
                            param="reference") from None
    if not p.is_file():
        raise InvalidParams(f"the reference '{path}' is not a file", param="reference")
    return _reference_samples(str(p.resolve()), st.st_mtime_ns, st.st_size)


# -- the pass over the pixels ---------------------------------------------------------
class Plan:
    def __init__(self, gains: np.ndarray, transfer: Transfer | None, strength: float) -> None:
        self.gains = gains
        self.transfer = transfer
        self.strength = strength

    def apply(self, strip: np.ndarray) -> np.ndarray:
        """Float32 result of one strip of colour samples, unclipped."""
        lin = to_linear(strip) * self.gains
        if self.transfer is not None:
            lab = linear_to_lab(lin)
            self.transfer.apply(lab)
            lin = lab_to_linear(lab)
        out = linear_to_srgb(lin)
        if self.strength < 1.0:
            orig = to_float(strip)
            out = orig + (out - orig) * np.float32(self.strength)
        return out


def apply_in_strips(plan: Plan, src: Image, ctx: OpContext) -> tuple[np.ndarray, int]:
    """New pixels (alpha copied) and the number of pixels that left the 0..1 range."""
    colour_n = src.color_channels
    out = np.empty_like(src.pixels)
    rows = max(1, STRIP_VALUES // max(1, src.width * colour_n))
    clipped = 0
    for y in range(0, src.height, rows):
        ctx.progress(0.2 + 0.8 * y / max(1, src.height), "matching colour")
        strip = src.pixels[y:y + rows, :, :colour_n]
        res = plan.apply(strip)
        clipped += int(((res < 0.0) | (res > 1.0)).any(axis=-1).sum())
        out[y:y + rows, :, :colour_n] = from_float(res, src.pixels.dtype)
        if src.has_alpha:
            out[y:y + rows, :, -1] = src.pixels[y:y + rows, :, -1]
    return out, clipped


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    bounds = mask.bounds if mask is not None else Bounds.of(image.extent)
    if bounds.is_empty:
        raise InvalidParams("the selection is empty")
    region = image.crop(bounds)
    coverage = mask.data if mask is not None else None
    grey = image.color_channels == 1
    ctx.progress(0.0, "measuring colour")
    samples = sample_pixels(region, coverage)
    meta: dict[str, Any] = {}

    wb = params["white_balance"]
    if wb != "none" and grey:
        ctx.warn("white balance needs colour: skipped on a grey image")
        wb = "none"
    gains = white_balance_gains(samples, wb)
    meta["white_balance"] = {"method": wb, "gains": [round(float(g), 4) for g in gains]}
    samples = samples * gains

    ref_samples = None
    if params["reference"]:
        ref_samples, ref_icc = reference_samples(params["reference"])
        if ref_samples.shape[-1] != samples.shape[-1]:
            # A grey reference for a colour image (or the reverse): compare lightness only.
            ref_samples = luma_of(ref_samples)[:, None] if ref_samples.shape[-1] == 3 \
                else np.repeat(ref_samples, 3, axis=1)
        if ref_icc != image.icc:
            ctx.warn("the reference and the image carry different ICC profiles; "
                     "colours are compared as sRGB numbers")

    if params["exposure"] == "auto":
        target = median_lightness(ref_samples) if ref_samples is not None \
            else params["target_lightness"]
        current = median_lightness(samples)
        gain = float(np.clip(lightness_to_luminance(target) / max(lightness_to_luminance(current),
                                                                  1e-6), 1 / 16, 16))
        gains = gains * gain
        samples = samples * gain
        meta["exposure"] = {"from_lightness": round(current, 2), "to_lightness": round(target, 2),
                            "gain": round(gain, 4), "stops": round(float(np.log2(gain)), 3)}

    transfer = None
    if ref_samples is not None and params["method"] != "none":
        channels = (0,) if grey else ((1, 2) if params["channels"] == "color" else (0, 1, 2))
        ref_lab = linear_to_lab(ref_samples)
        transfer = Transfer(linear_to_lab(samples), ref_lab, params["method"], channels)
        meta["transfer"] = {"method": params["method"], "channels": params["channels"],
                            "reference": str(params["reference"]), **transfer.describe()}
    if wb == "none" and params["exposure"] == "none" and transfer is None:
        ctx.warn("nothing to do: give a reference, a white balance or exposure='auto'")

    pixels, clipped = apply_in_strips(Plan(gains.astype(np.float32), transfer,
                                           params["strength"]), region, ctx)
    share = clipped / max(1, region.width * region.height)
    meta["clipped_share"] = round(share, 6)
    meta["clipped_pixels"] = clipped
    if share > CLIP_WARN_SHARE:
        ctx.warn(f"{share:.1%} of the pixels were pushed out of range and clipped")
    ctx.progress(1.0, "done")
    layer = Layer("image", region.with_pixels(pixels), bounds,
                  mask.data if mask is not None else None)
    return OpResult([layer], image.extent, meta)


def check(params: dict[str, Any], manager: Any) -> None:
    """At submission: the reference exists and is an image we can read."""
    if params["reference"]:
        from bridge.imaging.codecs import probe

        path = user_path(params["reference"], "reference")
        if not path.is_file():
            raise InvalidParams(f"the reference image '{params['reference']}' does not exist",
                                param="reference")
        with open(path, "rb") as fh:
            probe(fh.read(1 << 16))


OPERATION = Operation(
    name="color-match",
    title="Colour match",
    description="White balance, exposure normalisation and a colour transfer to a reference "
                "image; reports clipping.",
    params=ParamSchema((
        Param("reference", str, "", "reference image file on the bridge's machine ('' for none)"),
        Param("method", str, "mean-std", "how to transfer the reference's colour",
              choices=("mean-std", "histogram", "none")),
        Param("channels", str, "all", "all: lightness and colour; color: keep lightness",
              choices=("all", "color")),
        Param("white_balance", str, "none", "automatic white balance",
              choices=("none", "grey-world", "white-patch")),
        Param("exposure", str, "none", "auto: bring the median lightness to the reference's "
              "(or target_lightness)", choices=("none", "auto")),
        Param("target_lightness", float, 50.0, "median L* to aim for without a reference",
              minimum=5.0, maximum=95.0),
        Param("strength", float, 1.0, "how much of the change to apply", minimum=0.0,
              maximum=1.0),
    )),
    run=run,
    mask="optional",
    check=check,
)

# Parameters naming files on the bridge's machine: recipes resolve them against
# the recipe's folder.
PATH_PARAMS = ("reference",)
