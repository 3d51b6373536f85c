"""Standardize product shots: cut out, crop to the subject, place on a fixed canvas.

Steps:
1. a matte (`matte`):
   - `auto`: the image's own transparency when it has some, else the
     `remove-background` operation when it is installed (its model present), else
     `border-color` (with a warning saying so);
   - `rembg`: the `remove-background` operation (model: `matte_model`), or an error
     when it or its model is missing;
   - `border-color`: for product shots on a seamless background. The background
     is modelled as a smooth quadratic surface in CIELAB fitted (robustly) to the
     image's border, so a lit sweep that is brighter in the middle than at the
     edges is still "background"; pixels within `tolerance` (ΔE76) of it and
     connected to the border become transparent, with a soft edge; enclosed areas
     of background colour (a white label on a white backdrop) stay subject.
     Edge pixels are decontaminated (the backdrop's colour taken out of blended
     pixels) so no halo of the old background shows on the new one;
2. the subject's box (alpha over 3 %) is scaled to fill the canvas less
   `margin` percent on each side (never enlarged when `upscale` is false), and
   centred (or stood on the bottom margin with `align="bottom"`);
3. a background colour (`#rrggbb`) or `transparent`; an optional soft drop shadow;
4. `to_srgb`: converts from the embedded ICC profile to sRGB with LittleCMS
   (Pillow's ImageCms, relative colorimetric) and embeds sRGB. 8-bit converts
   directly; Pillow's LittleCMS binding has no 16-bit RGB mode, so 16-bit goes
   through the 8-bit transform tabulated at all 256^3 inputs and interpolated
   trilinearly (within about 1/255 of an exact conversion; smooth, no banding).

`format` and `quality` are hints for whoever writes the file (the batch and recipe
outputs use them unless the recipe's [output] says otherwise).

The document changes size (resizes=True). Work is float32 on the output canvas
only; the source is read in its own depth.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any

import cv2
import numpy as np

from bridge.errors import InvalidInput, InvalidParams, ModelMissing
from bridge.imaging.depth import from_float, to_float
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask, content_bounds
from bridge.ops.base import OpContext, Operation, OpResult, full_layer
from bridge.ops.color_match import (
    downscaled,
    lab_to_linear,
    linear_to_lab,
    linear_to_srgb,
    to_linear,
)
from bridge.ops.params import Param, ParamSchema

STRIP_PIXELS = 1 << 20
SUBJECT_ALPHA = 8  # of 255: fainter than this is not subject (a stray shadow, noise)
REMOVE_BACKGROUND = "remove-background"


# -- background model ---------------------------------------------------------------
def _design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], -1)


class Backdrop:
    """A smooth backdrop colour over the image: a quadratic in Lab per channel."""

    def __init__(self, coeffs: np.ndarray, extent: Extent) -> None:
        self.coeffs = coeffs  # (6, 3)
        self.extent = extent

    @staticmethod
    def fit(colour: np.ndarray) -> Backdrop:
        """Fit to the border of an HxWx3 image (any depth), ignoring what sticks into it."""
        h, w = colour.shape[:2]
        small = downscaled(colour, 250_000)
        sh, sw = small.shape[:2]
        band = max(2, round(0.02 * min(sh, sw)))
        edge = np.zeros((sh, sw), bool)
        edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True
        ys, xs = np.nonzero(edge)
        if len(ys) > 6000:  # plenty for six coefficients; keeps the fit cheap
            step = len(ys) // 6000 + 1
            ys, xs = ys[::step], xs[::step]
        lab = linear_to_lab(to_linear(small[ys, xs]))
        a = _design(xs / max(sw - 1, 1), ys / max(sh - 1, 1)).astype(np.float64)
        keep = np.ones(len(lab), bool)
        coeffs = np.zeros((6, 3))
        for _ in range(3):  # trim what does not fit: a subject touching the frame, a logo
            # OpenCV's QR solve: numpy's lstsq would wake a threaded BLAS for a 6-term fit.
            _, coeffs = cv2.solve(a[keep], lab[keep].astype(np.float64), flags=cv2.DECOMP_QR)
            resid = np.linalg.norm(lab - np.einsum("nk,kj->nj", a, coeffs), axis=1)
            keep = resid <= max(np.quantile(resid, 0.8), 2.0)
        return Backdrop(coeffs.astype(np.float32), Extent(w, h))

    def lab(self, rows: slice, cols: slice) -> np.ndarray:
        h, w = self.extent.height, self.extent.width
        y = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] / max(h - 1, 1)
        x = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :] / max(w - 1, 1)
        c = self.coeffs
        # The quadratic split into a column part, a row part and the cross term: three
        # full-size operations instead of an (H, W, 6) design matrix.
        along_y = c[0] + y[:, :, None] * (c[2] + y[:, :, None] * c[4])  # (H, 1, 3)
        along_x = x[:, :, None] * (c[1] + x[:, :, None] * c[3])        # (1, W, 3)
        out = along_y + along_x
        out += (y * x)[:, :, None] * c[5]
        return out.astype(np.float32, copy=False)

    def encoded(self, rows: slice, cols: slice) -> np.ndarray:
        """The backdrop as sRGB-encoded float colours for a region."""
        return np.clip(linear_to_srgb(lab_to_linear(self.lab(rows, cols))), 0.0, 1.0)

    def mean_hex(self) -> str:
        c = self.encoded(slice(0, 1), slice(0, 1))[0, 0]
        mid = self.encoded(slice(self.extent.height // 2, self.extent.height // 2 + 1),
                           slice(self.extent.width // 2, self.extent.width // 2 + 1))[0, 0]
        avg = (c + mid) / 2
        return "#" + "".join(f"{round(float(v) * 255):02x}" for v in avg)


def border_color_matte(image: Image, tolerance: float) -> tuple[np.ndarray, Backdrop]:
    """Alpha (uint8 HxW) of what is not backdrop, and the backdrop model."""
    colour = image.color
    if image.color_channels == 1:
        colour = np.repeat(colour, 3, axis=2)
    backdrop = Backdrop.fit(colour)
    h, w = image.height, image.width
    soft = np.empty((h, w), np.uint8)
    near = np.empty((h, w), np.uint8)
    rows = max(1, STRIP_PIXELS // max(w, 1))
    for y in range(0, h, rows):
        ys = slice(y, min(h, y + rows))
        lab = linear_to_lab(to_linear(colour[ys]))
        dist = np.linalg.norm(lab - backdrop.lab(ys, slice(0, w)), axis=-1)
        near[ys] = dist < tolerance
        soft[ys] = np.clip(np.rint((dist - 0.5 * tolerance) / tolerance * 255), 0, 255)
    # Backdrop = near-colour pixels connected to the frame; enclosed ones stay subject.
    _, labels = cv2.connectedComponents(near, connectivity=4)
    frame = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    frame = frame[frame > 0]
    backdrop_px = np.isin(labels, frame)
    del labels
    zone = cv2.dilate(backdrop_px.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    alpha = np.where(zone, soft, np.uint8(255))
    return alpha, backdrop


def decontaminate(colour: np.ndarray, alpha: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Foreground colour of blended edge pixels: F = B + (I - B) / a (float, encoded)."""
    a = alpha[:, :, None]
    f = backdrop + (colour - backdrop) / np.maximum(a, 1e-3)
    return np.where((a > 0.02) & (a < 0.98), np.clip(f, 0.0, 1.0), colour).astype(np.float32)


# -- mattes -----------------------------------------------------------------------
def _has_transparency(image: Image) -> bool:
    alpha = image.alpha
    if alpha is None:
        return False
    top = 1.0 if alpha.dtype.kind == "f" else np.iinfo(alpha.dtype).max
    return bool(alpha.min() < top)


def _alpha_u8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)


def remove_background_available() -> bool:
    from bridge.ops.registry import operations

    return REMOVE_BACKGROUND in operations()


def _rembg_params(params: dict[str, Any]) -> dict[str, Any]:
    return {"model": params["matte_model"]} if params["matte_model"] else {}


def rembg_matte(image: Image, params: dict[str, Any], ctx: OpContext) -> np.ndarray:
    from bridge.ops.registry import run_operation

    result = run_operation(REMOVE_BACKGROUND, image, None, _rembg_params(params), ctx)
    layer = result.primary
    alpha = np.zeros((image.height, image.width), np.uint8)
    if layer.mask is not None:
        part = layer.mask
    elif layer.image.has_alpha:
        part = _alpha_u8(layer.image.alpha)
    else:
        raise InvalidInput("remove-background returned neither a mask nor transparency")
    target = layer.bounds.clamp(image.extent)
    rows, cols = target.slices
    prow, pcol = target.relative_to(layer.bounds).slices
    alpha[rows, cols] = part[prow, pcol]
    return alpha


def make_matte(image: Image, params: dict[str, Any], ctx: OpContext
               ) -> tuple[np.ndarray, Backdrop | None, str]:
    engine = params["matte"]
    if engine == "auto" and _has_transparency(image):
        return _alpha_u8(image.alpha), None, "alpha"
    if engine in ("auto", "rembg"):
        if remove_background_available():
            try:
                return rembg_matte(image, params, ctx.sub(0.0, 0.6)), None, "rembg"
            except ModelMissing:
                if engine == "rembg":
                    raise
                ctx.warn("the background-removal model is not installed; used the "
                         "border-colour matte")
        elif engine == "rembg":
            raise ModelMissing("the remove-background operation is not available in this "
                               "build", model=REMOVE_BACKGROUND,
                               hint="use matte='border-color' for seamless backgrounds")
        else:
            ctx.warn("background removal is not available; used the border-colour matte")
    alpha, backdrop = border_color_matte(image, params["tolerance"])
    return alpha, backdrop, "border-color"


# -- layout -------------------------------------------------------------------------
def placement(subject: Bounds, params: dict[str, Any]) -> tuple[Extent, Bounds, float]:
    """Canvas size, where the scaled subject goes on it, and the scale."""
    m = params["margin"] / 100.0
    cw, ch = params["canvas_width"], params["canvas_height"]
    if cw == 0:  # no fixed canvas: the subject plus its margin
        cw = max(1, round(subject.width / (1 - 2 * m)))
        ch = max(1, round(subject.height / (1 - 2 * m)))
        scale = 1.0
    else:
        avail_w, avail_h = cw * (1 - 2 * m), ch * (1 - 2 * m)
        scale = min(avail_w / subject.width, avail_h / subject.height)
        if not params["upscale"]:
            scale = min(scale, 1.0)
    tw = max(1, min(cw, round(subject.width * scale)))
    th = max(1, min(ch, round(subject.height * scale)))
    x = (cw - tw) // 2
    y = max(0, ch - round(ch * m) - th) if params["align"] == "bottom" else (ch - th) // 2
    return Extent(cw, ch), Bounds(x, y, tw, th), scale


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    up = size[0] > a.shape[1] or size[1] > a.shape[0]
    out = cv2.resize(a, size, interpolation=cv2.INTER_LANCZOS4 if up else cv2.INTER_AREA)
    out = out if out.ndim == a.ndim else out[:, :, None]
    return np.clip(out, 0.0, 1.0) if up else out


def parse_colour(text: str) -> np.ndarray:
    return np.array([int(text[i:i + 2], 16) / 255.0 for i in (1, 3, 5)], np.float32)


def soft_shadow(alpha: np.ndarray, canvas: Extent, opacity: float) -> np.ndarray:
    """A drop shadow from the subject's own shape: shifted down, blurred, faded.

    The blur is wide (2 % of the canvas), so it is done at a quarter of the size and
    scaled back: the same soft shadow for a sixteenth of the work.
    """
    h, w = alpha.shape
    shift = max(1, round(0.012 * canvas.height))
    sigma = max(1.0, 0.02 * canvas.height)
    shadow = np.zeros_like(alpha)
    shadow[shift:] = alpha[:-shift] if shift < h else 0
    f = 4 if sigma >= 8 and min(h, w) >= 64 else 1
    if f > 1:
        small = cv2.resize(shadow, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / f)
        shadow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        shadow = cv2.GaussianBlur(shadow, (0, 0), sigma)
    return shadow * np.float32(opacity)


# -- ICC -------------------------------------------------------------------------
def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def is_srgb(icc: bytes) -> bool:
    from PIL import ImageCms

    try:
        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError):
        return False
    return "srgb" in desc.lower().replace(" ", "")


def _transform(icc: bytes) -> Any:
    from PIL import ImageCms

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError) as e:
        raise InvalidInput(f"the embedded ICC profile cannot be read: {e}") from None
    return ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                   ImageCms.Intent.RELATIVE_COLORIMETRIC)


@functools.lru_cache(maxsize=2)
def _srgb_lut(icc: bytes) -> np.ndarray:
    """The 8-bit transform at every one of the 256^3 inputs (50 MB, about a second once per
    profile): 16-bit values then interpolate between neighbours one 8-bit step apart, so
    even the kink where out-of-gamut colours clip costs at most about 1/255."""
    from PIL import Image as PILImage
    from PIL import ImageCms

    v = np.arange(256, dtype=np.uint8)
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(4096, 4096, 3)
    lut = np.asarray(ImageCms.applyTransform(PILImage.fromarray(grid), _transform(icc)))
    return lut.reshape(256, 256, 256, 3)


def to_srgb(colour: np.ndarray, icc: bytes) -> np.ndarray:
    """Colour (HxWx3, any depth) from the given profile to sRGB, same depth."""
    from PIL import Image as PILImage
    from PIL import ImageCms

    if colour.dtype == np.uint8:
        out = ImageCms.applyTransform(PILImage.fromarray(np.ascontiguousarray(colour)),
                                      _transform(icc))
        return np.asarray(out)
    lut = _srgb_lut(icc)
    out = np.empty_like(colour)
    rows = max(1, STRIP_PIXELS // max(colour.shape[1], 1))
    for y in range(0, colour.shape[0], rows):
        out[y:y + rows] = from_float(_trilinear(lut, to_float(colour[y:y + rows])), colour.dtype)
    return out


def _trilinear(lut: np.ndarray, v: np.ndarray) -> np.ndarray:
    n = lut.shape[0]
    p = np.clip(v, 0.0, 1.0) * (n - 1)
    i = np.minimum(p.astype(np.int32), n - 2)
    f = p - i
    r, g, b = i[..., 0], i[..., 1], i[..., 2]
    fr, fg, fb = f[..., 0:1], f[..., 1:2], f[..., 2:3]
    out = np.zeros(v.shape, np.float32)
    for dr in (0, 1):
        wr = fr if dr else 1 - fr
        for dg in (0, 1):
            wg = fg if dg else 1 - fg
            for db in (0, 1):
                wb = fb if db else 1 - fb
                out += lut[r + dr, g + dg, b + db] * (wr * wg * wb)
    return out * np.float32(1 / 255)


# -- the operation ----------------------------------------------------------------
def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    check_params(params)
    ctx.progress(0.0, "finding the subject")
    alpha, backdrop, engine = make_matte(image, params, ctx)
    subject = content_bounds(alpha > SUBJECT_ALPHA)
    if subject.is_empty:
        raise InvalidInput("no subject found: the whole image looks like background "
                           "(lower 'tolerance' or use another matte)")
    canvas, place, scale = placement(subject, params)
    ctx.check_output_size(canvas.width, canvas.height)
    ctx.progress(0.6, f"placing on a {canvas} canvas")

    # Work on the subject's box only, in float, then resample to its place.
    rows, cols = subject.slices
    colour = to_float(image.color[rows, cols])
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    a = alpha[rows, cols].astype(np.float32) / 255.0
    if backdrop is not None:
        colour = decontaminate(colour, a, backdrop.encoded(rows, cols))
    size = (place.width, place.height)
    # Premultiplied while resampling: unpremultiplied edges would pull in dark fringes.
    pre = _resize(colour * a[:, :, None], size)
    a_small = np.clip(_resize(a[:, :, None], size)[:, :, 0], 0.0, 1.0)
    fg = np.where(a_small[:, :, None] > 1e-4, pre / np.maximum(a_small[:, :, None], 1e-4), 0.0)
    fg = np.clip(fg, 0.0, 1.0).astype(np.float32)

    full_alpha = np.zeros((canvas.height, canvas.width), np.float32)
    prow, pcol = place.slices
    full_alpha[prow, pcol] = a_small
    shadow = soft_shadow(full_alpha, canvas, params["shadow_opacity"]) if params["shadow"] \
        else None
    transparent = params["background"] == "transparent"
    out = np.empty((canvas.height, canvas.width, 4 if transparent else 3), np.float32)
    if transparent:
        sh = shadow if shadow is not None else np.zeros_like(full_alpha)
        out[:, :, :3] = 0.0
        out[:, :, 3] = sh
        region = out[prow, pcol]
        ra = a_small[:, :, None]
        total = ra + region[:, :, 3:] * (1 - ra)
        region[:, :, :3] = fg * ra / np.maximum(total, 1e-6)
        region[:, :, 3:] = total
    else:
        out[:] = parse_colour(params["background"])
        if shadow is not None:
            out *= 1.0 - shadow[:, :, None]
        region = out[prow, pcol]
        ra = a_small[:, :, None]
        region[:] = region * (1 - ra) + fg * ra

    dtype = image.pixels.dtype
    pixels = from_float(out, dtype)
    icc = image.icc
    icc_note = "kept"
    if params["to_srgb"]:
        if icc and not is_srgb(icc):
            ctx.progress(0.9, "converting to sRGB")
            pixels[:, :, :3] = to_srgb(np.ascontiguousarray(pixels[:, :, :3]), icc)
            icc_note = "converted to sRGB"
        else:
            icc_note = "already sRGB" if icc else "untagged, assumed sRGB"
        icc = srgb_profile()
    result_image = image.with_pixels(pixels, icc=icc)
    meta: dict[str, Any] = {
        "matte": engine,
        "subject": subject.as_list(),
        "placement": place.as_list(),
        "scale": round(scale, 5),
        "canvas": [canvas.width, canvas.height],
        "background": params["background"],
        "icc": icc_note,
    }
    if backdrop is not None:
        meta["backdrop"] = backdrop.mean_hex()
    if params["format"]:
        meta["output"] = {"format": params["format"], "quality": params["quality"] or None}
    ctx.progress(1.0, "done")
    return OpResult([full_layer("image", result_image)], canvas, meta)


def check_params(params: dict[str, Any]) -> None:
    if (params["canvas_width"] == 0) != (params["canvas_height"] == 0):
        raise InvalidParams("give both canvas_width and canvas_height, or neither (0)",
                            param="canvas_width")
    if params["background"] == "transparent" and params["format"] == "jpeg":
        raise InvalidParams("JPEG has no transparency: pick a background colour or another "
                            "format", param="format")


def check(params: dict[str, Any], manager: Any) -> None:
    """At submission: consistent parameters, and the matte engine asked for exists."""
    check_params(params)
    if params["matte"] == "rembg":
        if not remove_background_available():
            raise ModelMissing("the remove-background operation is not available in this build",
                               model=REMOVE_BACKGROUND,
                               hint="use matte='border-color' for seamless backgrounds")
        from bridge.ops.registry import get_operation

        op = get_operation(REMOVE_BACKGROUND)
        if op.check is not None:
            op.check(op.params.validate(_rembg_params(params)), manager)


# A custom .onnx for the matte is a file on the bridge's machine (recipes resolve it).
PATH_PARAMS = ("matte_model",)

_HEX = re.compile(r"#[0-9a-fA-F]{6}|transparent")

OPERATION = Operation(
    name="standardize",
    title="Standardize (e-commerce)",
    description="Cut the subject out, crop to it with a margin, centre it on a fixed canvas "
                "with a background colour or transparency, optional shadow and sRGB.",
    params=ParamSchema((
        Param("matte", str, "auto", "how to separate subject and background",
              choices=("auto", "rembg", "border-color")),
        Param("matte_model", str, "", "rembg/auto: the remove-background model (u2net, "
              "isnet-general-use, birefnet-general, ... or an .onnx file; '': its default)"),
        Param("tolerance", float, 15.0, "border-color: colour distance (ΔE) still counted as "
              "backdrop", minimum=1.0, maximum=100.0),
        Param("background", str, "#ffffff", "#rrggbb or transparent", pattern=_HEX.pattern),
        Param("margin", float, 5.0, "space around the subject, percent of the canvas per side",
              minimum=0.0, maximum=45.0),
        Param("canvas_width", int, 2000, "canvas width in pixels (0: fit the subject)",
              minimum=0, maximum=30000),
        Param("canvas_height", int, 2000, "canvas height in pixels (0: fit the subject)",
              minimum=0, maximum=30000),
        Param("upscale", bool, True, "enlarge small subjects to fill the canvas"),
        Param("align", str, "center", "center, or stand the subject on the bottom margin",
              choices=("center", "bottom")),
        Param("shadow", bool, False, "add a soft drop shadow"),
        Param("shadow_opacity", float, 0.35, "darkness of the shadow", minimum=0.0, maximum=1.0),
        Param("to_srgb", bool, False, "convert to sRGB and embed the sRGB profile (for the web)"),
        Param("format", str, "", "output format hint for batch and recipes",
              choices=("", "png", "jpeg", "webp", "tiff")),
        Param("quality", int, 0, "output quality hint for JPEG/WebP (0: the default)",
              minimum=0, maximum=100),
    )),
    run=run,
    resizes=True,
    check=check,
)
