"""Upscale: a super-resolution model (tiled, seamless, memory-bounded) or Lanczos.

`model`: "auto" (the best installed super-resolution model for the requested scale,
else Lanczos with a warning), "lanczos", or a registry id (`retouch-bridge models
list`), including models the user imported. The model runs at its own scale; any other
`scale` is reached with a high-quality resample of the model's output (Lanczos up,
area down), as Real-ESRGAN's `outscale` does.

Fidelity: 16-bit input is fed to the model as float from the 16-bit values and written
back as 16-bit; ICC and EXIF are carried (Image.with_pixels). Alpha is not run through
the model: photo SR models are trained on RGB photographs and invent texture on a smooth
matte, while a Lanczos resample keeps soft edges soft and hard edges clean at a tenth of
the cost; it is resampled in strips straight into the output's alpha channel.

Memory: the output is allocated once (uint8/uint16) and written tile by tile by
bridge.imaging.tiling; no float copy of the whole image exists. On CUDA out-of-memory
the tile is redone in halves (see tiling). `tile` 0 sizes tiles from the free memory.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from bridge.errors import InvalidParams, NotFound
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.runtime import run_tiles, working_budget
from bridge.ops.base import OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema

SR_TASK = "upscale"
# Input rows per strip when resampling a plane into the output (with context rows).
_STRIP_ROWS = 256
_STRIP_CONTEXT = 8  # Lanczos4 reads 4 source rows each side


def resample(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """High-quality resize of HxWxC uint8/uint16/float32, any channel count, type kept."""
    interp = cv2.INTER_LANCZOS4 if width >= pixels.shape[1] else cv2.INTER_AREA
    out = cv2.resize(pixels, (width, height), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    # Lanczos rings below 0 and above 1; keep SDR float images in range.
    if (pixels.dtype == np.float32 and pixels.max(initial=0.0) <= 1.0
            and pixels.min(initial=0.0) >= 0.0):
        np.clip(out, 0.0, 1.0, out=out)
    return out


def resample_plane_into(plane: np.ndarray, dst: np.ndarray, factor: int) -> None:
    """Lanczos-upscale one HxW plane by an integer factor into dst (a possibly strided
    (H*f)x(W*f) view), strip by strip: within 1 LSB of one cv2.resize of the whole plane
    (each strip's positions are computed from its own origin), without the plane-sized
    temporary."""
    h, w = plane.shape
    for a in range(0, h, _STRIP_ROWS):
        b = min(h, a + _STRIP_ROWS)
        a0, b0 = max(0, a - _STRIP_CONTEXT), min(h, b + _STRIP_CONTEXT)
        part = np.ascontiguousarray(plane[a0:b0])
        big = cv2.resize(part, (w * factor, (b0 - a0) * factor),
                         interpolation=cv2.INTER_LANCZOS4)
        dst[a * factor:b * factor] = big[(a - a0) * factor:(b - a0) * factor]
    if plane.dtype == np.float32:
        np.clip(dst, 0.0, 1.0, out=dst)


def choose_model(manager: Any, scale: float) -> Any:
    """The installed SR model for `scale`: the smallest native scale that reaches it
    (least wasted work, least resampling), best registry priority first; else the
    largest scale available. None when no SR model is installed."""
    installed = manager.installed(SR_TASK)
    if not installed:
        return None
    reaching = [e for e in installed if e.scale >= scale - 1e-6]
    if reaching:
        return min(reaching, key=lambda e: (e.scale, -e.priority))
    return max(installed, key=lambda e: (e.scale, e.priority))


def _lanczos(image: Image, target: Extent, ctx: OpContext, meta: dict[str, Any]) -> OpResult:
    ctx.progress(0.1, f"resampling to {target}")
    pixels = resample(image.pixels, target.width, target.height)
    ctx.progress(1.0, "done")
    out = image.with_pixels(pixels)
    meta.update({"model": "lanczos", "width": target.width, "height": target.height})
    return OpResult([full_layer("image", out)], target, meta)


def _tile_fn(loaded: Any, channels: int, clip: bool):
    """Adapt the image's colour channels to the model's (grey <-> RGB)."""
    model_in, model_out = loaded.input_channels, loaded.output_channels
    if model_in != model_out:
        raise InvalidParams(f"model '{loaded.model_id}' maps {model_in} channels to "
                            f"{model_out}; upscale needs a model that keeps channels")

    def prepare(tile: np.ndarray) -> np.ndarray:
        return np.clip(tile, 0.0, 1.0, out=tile) if clip else tile

    if model_in == channels:
        return lambda tile: loaded(prepare(tile))
    if channels == 1 and model_in == 3:
        # Grey through an RGB model: replicate, then average the (near-equal) outputs.
        return lambda tile: loaded(np.repeat(prepare(tile), 3, axis=2)).mean(
            axis=2, keepdims=True, dtype=np.float32)
    if channels == 3 and model_in == 1:
        return lambda tile: np.concatenate(
            [loaded(np.ascontiguousarray(prepare(tile)[:, :, i:i + 1])) for i in range(3)],
            axis=2)
    raise InvalidParams(f"model '{loaded.model_id}' takes {model_in} channels; "
                        f"the image has {channels}")


def _run_model(image: Image, target: Extent, entry: Any, params: dict[str, Any],
               ctx: OpContext, meta: dict[str, Any]) -> OpResult:

    ctx.progress(0.02, f"loading {entry.id}")
    loaded = ctx.models.load(entry.id, denoise=params["denoise"])
    s = loaded.scale
    h, w = image.height, image.width
    model_extent = Extent(w * s, h * s)
    direct = target == model_extent
    cc = image.color_channels
    clip = image.depth == 32
    if clip and float(image.color.max(initial=0.0)) > 1.0:
        ctx.warn("values above 1.0 (HDR) were clipped: the model works on 0..1")
    fn = _tile_fn(loaded, cc, clip)
    pad, blend = loaded.context
    tile = params["tile"] or loaded.auto_tile(working_budget(loaded, ctx.models))
    out = np.empty((model_extent.height, model_extent.width, image.channels), image.pixels.dtype)
    end = 0.92 if direct else 0.8

    def on_tile(done: int, total: int) -> None:
        ctx.progress(0.05 + (end - 0.05) * done / total, f"tile {done} of {total}")

    ctx.progress(0.05, f"upscaling x{s} with {entry.id}")
    stats = run_tiles(loaded, ctx, image.color, fn, s, out=out[:, :, :cc], tile=tile, pad=pad,
                      blend=blend, progress=on_tile)
    if image.has_alpha:
        ctx.progress(end, "resampling alpha")
        resample_plane_into(image.alpha, out[:, :, -1], s)
    if not direct:
        ctx.progress(0.93, f"resampling to {target}")
        out = resample(out, target.width, target.height)
    ctx.progress(1.0, "done")
    meta.update({
        "model": entry.id, "model_scale": s, "width": target.width, "height": target.height,
        "tile": tile, "tiles": stats.tiles, "oom_retries": stats.retries,
        "device": str(loaded.device), "precision": loaded.precision,
        "denoise": params["denoise"],
    })
    if entry.non_commercial:
        ctx.warn(f"{entry.id} is licensed for non-commercial use only ({entry.license})")
    return OpResult([full_layer("image", image.with_pixels(out))], target, meta)


def resolve_model(params: dict[str, Any], manager: Any) -> Any:
    """The registry entry `model` names (None: Lanczos), or InvalidParams saying why not."""
    name = params["model"]
    if name == "lanczos":
        entry = None
    elif name == "auto":
        entry = choose_model(manager, params["scale"])
    else:
        try:
            entry = manager.entry(name)
        except NotFound:
            entry = None
        if entry is None or entry.task != SR_TASK:
            known = ", ".join(["auto", "lanczos", *(e.id for e in manager.entries()
                                                    if e.task == SR_TASK)])
            raise InvalidParams(f"'{name}' is not a super-resolution model; use one of: {known}",
                                param="model") from None
    if params["denoise"] is not None and (entry is None or entry.denoise_twin is None):
        what = f"model '{entry.id}'" if entry else "Lanczos"
        raise InvalidParams(f"{what} has no denoise strength; it exists for models with a "
                            "denoise twin such as realesr-general-x4v3", param="denoise")
    return entry


def check(params: dict[str, Any], manager: Any) -> None:
    resolve_model(params, manager)


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    scale = params["scale"]
    target = image.extent.scaled(scale)
    if target.is_empty:
        raise InvalidParams(f"scale {scale} leaves no pixels of a {image.extent} image",
                            param="scale")
    ctx.check_output_size(target.width, target.height)
    name = params["model"]
    meta: dict[str, Any] = {"scale": scale, "requested_model": name}
    entry = None if name == "lanczos" else resolve_model(params, ctx.models)
    if entry is None:
        if name == "auto":
            ctx.warn("no super-resolution model is installed, so Lanczos was used; get one "
                     "with `retouch-bridge models pull RealESRGAN_x4plus`")
        return _lanczos(image, target, ctx, meta)
    return _run_model(image, target, entry, params, ctx, meta)


OPERATION = Operation(
    name="upscale",
    title="Upscale",
    description="Enlarge the image with a super-resolution model (tiled, seamless) or Lanczos.",
    params=ParamSchema((
        Param("scale", float, 2.0, "output size as a multiple of the input",
              minimum=0.1, maximum=16),
        Param("model", str, "auto",
              "'auto' (best installed super-resolution model, else Lanczos), 'lanczos', or a "
              "model id such as RealESRGAN_x4plus", pattern=r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"),
        Param("tile", int, 0, "tile size in input pixels; 0 sizes tiles from free memory",
              minimum=0, maximum=4096),
        Param("denoise", float, None, "denoise strength 0..1 for models with a denoise twin "
              "(realesr-general-x4v3): 0 keeps grain, 1 removes it", minimum=0, maximum=1,
              nullable=True),
    )),
    run=run,
    check=check,
    resizes=True,
    models=("RealESRGAN_x4plus", "RealESRGAN_x2plus", "realesr-general-x4v3",
            "realesr-animevideov3"),
)
