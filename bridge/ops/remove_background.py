"""Remove background: an alpha matte of the subject from rembg models, losing nothing.

Default output is the ORIGINAL pixels with the matte as the layer mask, so the
panel adds a layer mask and the user can paint it back. "cutout" gives RGBA with
the matte in alpha; "composite" lays the subject on a flat colour (product shots).
With a selection, only the area around it is matted, and nothing outside it is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bridge.imaging.composite import blend_region
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image, max_value
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer, OpContext, Operation, OpResult
from bridge.ops.params import Param, ParamSchema

DEFAULT_MODEL = "u2net"
# Rows per band when combining a matte with full-size pixels: bounded float temporaries.
_BAND = 256


def _model_file(params: dict[str, Any], ctx: OpContext) -> tuple[Path, str]:
    """(the .onnx file, the rembg session kind that knows its pre/post-processing)."""
    from bridge.inpaint import matte, sources

    value = params["model"]
    if sources.looks_like_path(value):
        path = sources.local_path(value)
        if path.suffix.lower() != ".onnx":
            raise_params(f"{path.name}: background removal takes an .onnx model")
        return path, matte.session_kind_for_file(path, params["preprocess"])
    if value not in matte.SESSIONS:
        known = ", ".join(matte.SESSIONS)
        raise_params(f"unknown background model '{value}'; known: {known}, or a path to an .onnx file")
    return sources.require(ctx, value), matte.SESSIONS[value]


def check(params: dict[str, Any], manager: Any) -> None:
    """At submission: the model is known and installed (a path: exists and is .onnx)."""
    _model_file(params, OpContext(models=manager))


def _model(params: dict[str, Any], ctx: OpContext) -> tuple[Any, str]:
    from bridge.inpaint import matte, memory

    path, kind = _model_file(params, ctx)
    return matte.session_for(kind, path, memory.configured_device(ctx)), kind


def raise_params(message: str) -> None:
    from bridge.errors import InvalidParams

    raise InvalidParams(message, param="model")


def _hex_colour(text: str, dtype: np.dtype, channels: int) -> np.ndarray:
    rgb = [int(text[i:i + 2], 16) for i in (1, 3, 5)]
    if channels == 1:
        rgb = [round(0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2])]
    scale = {np.dtype(np.uint8): 1, np.dtype(np.uint16): 257}.get(np.dtype(dtype))
    if scale is None:
        return np.array([c / 255.0 for c in rgb], np.float32)
    return np.array([c * scale for c in rgb], dtype)


def _with_alpha(image: Image, coverage: np.ndarray) -> np.ndarray:
    """Colour channels plus alpha = original alpha (if any) x coverage, in the image's depth."""
    h, w = coverage.shape
    cc = image.color_channels
    out = np.empty((h, w, cc + 1), image.pixels.dtype)
    out[:, :, :cc] = image.color
    top = max_value(image.depth)
    for y in range(0, h, _BAND):
        rows = slice(y, min(h, y + _BAND))
        c = coverage[rows].astype(np.float32) / 255.0
        alpha = c * top if image.alpha is None else image.alpha[rows].astype(np.float32) * c
        out[rows, :, cc] = alpha if image.depth == 32 else np.rint(alpha)
    return out


def _on_colour(image: Image, coverage: np.ndarray, colour: str) -> np.ndarray:
    """The subject over a flat colour, opaque, band by band (no full-size float copy)."""
    h, w = coverage.shape
    cc = image.color_channels
    ground = _hex_colour(colour, image.pixels.dtype, cc)
    out = np.empty((h, w, cc), image.pixels.dtype)
    for y in range(0, h, _BAND):
        rows = slice(y, min(h, y + _BAND))
        cover = coverage[rows]
        if image.alpha is not None:  # transparent parts of the subject show the ground too
            a = image.alpha[rows].astype(np.float32) / max_value(image.depth)
            cover = np.rint(cover * a).astype(np.uint8)
        band = np.broadcast_to(ground, (rows.stop - rows.start, w, cc))
        out[rows] = blend_region(np.ascontiguousarray(band), image.color[rows], cover)
    return out


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    from bridge.inpaint import matte
    from bridge.inpaint.region import context_bounds

    ctx.progress(0.0, "loading the model")
    session, kind = _model(params, ctx)
    if mask is not None and not mask.is_empty:
        region = context_bounds(mask.bounds, image.extent, 0.1)
    else:
        region = Bounds.of(image.extent)
    area = image.crop(region)
    ctx.progress(0.2, f"matting with {kind}")
    coverage = matte.predict_matte(session, area.pixels, area.color_channels, region.extent)
    if mask is not None and not mask.is_empty:
        np.minimum(coverage, mask.region(region), out=coverage)
    ctx.progress(0.8, "building the result")
    output = params["output"]
    if output == "mask":
        layer = Layer("subject", area, region, coverage)
    elif output == "cutout":
        layer = Layer("cutout", area.with_pixels(_with_alpha(area, coverage)), region)
    else:
        layer = Layer("composite", area.with_pixels(_on_colour(area, coverage, params["background"])),
                      region)
    ctx.progress(1.0, "done")
    covered = float(np.count_nonzero(coverage)) / max(1, coverage.size)
    metadata = {"model": params["model"], "session": kind, "output": output,
                "region": region.as_list(), "subject_share": round(covered, 4)}
    return OpResult([layer], image.extent, metadata)


OPERATION = Operation(
    name="remove-background",
    title="Remove background",
    description="Find the subject and mask out the background (rembg models); the original "
                "pixels stay, the matte becomes the layer mask.",
    params=ParamSchema((
        Param("model", str, DEFAULT_MODEL,
              "u2net, u2netp, u2net_human_seg, silueta, isnet-general-use, birefnet-general, "
              "birefnet-general-lite, birefnet-portrait, birefnet-dis, birefnet-hrsod, birefnet-cod, "
              "birefnet-massive, or a path to an .onnx file"),
        Param("preprocess", str, "auto", "for a custom .onnx: which family's input size and "
              "normalisation it expects (auto: from the file name, else u2net)",
              choices=("auto", "u2net", "isnet", "birefnet")),
        Param("output", str, "mask", "mask: original pixels + the matte as layer mask; cutout: RGBA "
              "with the matte as alpha; composite: on the background colour",
              choices=("mask", "cutout", "composite")),
        Param("background", str, "#ffffff", "background colour for output=composite",
              pattern=r"#[0-9a-fA-F]{6}"),
    )),
    run=run,
    check=check,
    mask="optional",
    models=(DEFAULT_MODEL, "isnet-general-use", "birefnet-general"),
)
