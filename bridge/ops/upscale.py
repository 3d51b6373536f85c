"""Upscale: a resampling engine (Lanczos) here; super-resolution models plug in as engines."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema


def resample(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """High-quality resize of HxWxC uint8/uint16/float32, any channel count, type kept."""
    interp = cv2.INTER_LANCZOS4 if width >= pixels.shape[1] else cv2.INTER_AREA
    out = cv2.resize(pixels, (width, height), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    # Lanczos rings below 0 and above 1; keep SDR float images in range.
    if pixels.dtype == np.float32 and pixels.max(initial=0.0) <= 1.0 and pixels.min(initial=0.0) >= 0.0:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    scale = params["scale"]
    target = image.extent.scaled(scale)
    ctx.check_output_size(target.width, target.height)
    ctx.progress(0.1, f"resampling to {target}")
    pixels = resample(image.pixels, target.width, target.height)
    ctx.progress(1.0, "done")
    out = image.with_pixels(pixels)
    return OpResult([full_layer("image", out)], target, {"scale": scale, "model": "lanczos"})


OPERATION = Operation(
    name="upscale",
    title="Upscale",
    description="Enlarge the image.",
    params=ParamSchema((
        Param("scale", float, 2.0, "output size as a multiple of the input", minimum=0.1, maximum=16),
        Param("model", str, "lanczos", "engine: lanczos", choices=("lanczos",)),
    )),
    run=run,
    resizes=True,
)
