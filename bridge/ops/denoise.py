"""Denoise: noise and JPEG artefact removal with SCUNet or FBCNN, tiled and memory-bounded.

`model`: "auto" picks the best installed denoising model, and for a JPEG source an
installed FBCNN first (it is trained on JPEG artefacts); or a registry id, including
restoration models the user imported (`retouch-bridge models import`). Without one the
job is refused at submission (409 model_missing) with the commands that get one.

`strength` (0..1, optional):
* FBCNN takes the amount of JPEG damage to remove as its quality-factor input
  (`qf_input` = 1 - quality / 100, the release's "flexible" control): strength 0 treats
  the image as quality 100 (little to remove), 1 as quality 0. Left empty, the model
  estimates the quality itself; the estimate is made once for the whole image (the
  mean over up to five crops) and used for every tile, so tiles cannot disagree. It is
  reported as `jpeg_quality`.
* SCUNet and other models have no such input: the result is blended with the original
  by strength (1, the default, is the model's output), per tile in float.

Tiling: through bridge.imaging.tiling like upscale (scale 1): context around every
tile, feathered seams, the output written tile by tile into one preallocated array of
the image's type (uint8/uint16/float32), out-of-memory halving, progress per tile and
cancellation between tiles. Tiles start on the models' own lattice (8 px: JPEG blocks
and FBCNN's three stride-2 levels; 64 px for SCUNet's windows at its lowest level), so
every tile is seen in the same phase as the whole image.

16-bit images are denoised from their 16-bit values and stay 16-bit; alpha is copied
unchanged; ICC and metadata are kept. With a selection (optional mask) only the
selection's bounds (plus context) are computed and the result is a layer over them with
the selection as its mask: pixels outside it are untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bridge.errors import InvalidParams
from bridge.imaging.depth import to_float
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.runtime import run_tiles, working_budget
from bridge.ops.base import Layer, OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema

TASK = "denoise"
LAYER_NAME = "denoised"
QUALITY_ARCHS = frozenset({"FBCNN"})
# The lattice tiles start on, per architecture (see the module docstring).
ALIGN = {"FBCNN": 8, "SCUNet": 64}
DEFAULT_ALIGN = 8
# Crops the JPEG quality is estimated on: at most this many, this large.
QF_CROPS, QF_CROP = 5, 256


# -- models -------------------------------------------------------------------------
def resolve_model(params: dict[str, Any], manager: Any, source_format: str | None = None) -> Any:
    name = params["model"]
    if name != "auto":
        return manager.task_entry(name, TASK, "denoising model", extra=("auto",))
    installed = manager.installed_for(TASK, "denoising model")
    if source_format == "jpeg":
        jpeg = [e for e in installed if e.architecture in QUALITY_ARCHS]
        if jpeg:
            return jpeg[0]
    return installed[0]


def check(params: dict[str, Any], manager: Any) -> None:
    resolve_model(params, manager)


# -- model calls --------------------------------------------------------------------
def _quality_call(qf: float):
    """FBCNN with a fixed quality-factor input (1 - quality / 100)."""
    def call(descriptor: Any, x: Any) -> Any:
        import torch

        q = torch.full((1, 1), float(qf), device=x.device, dtype=x.dtype)
        return descriptor.model(x, q)[0].clamp_(0, 1)
    return call


def _predicted_quality(descriptor: Any, x: Any) -> Any:
    """FBCNN's own estimate of 1 - quality / 100 for a crop, as a 1x1x1x1 tensor."""
    return descriptor.model(x)[1].reshape(1, 1, 1, 1)


def _rgb(tile: np.ndarray, model_channels: int) -> np.ndarray:
    if tile.shape[2] == model_channels:
        return tile
    if tile.shape[2] == 1 and model_channels == 3:
        return np.repeat(tile, 3, axis=2)
    raise InvalidParams(f"the model takes {model_channels} channels; the image has {tile.shape[2]}")


def estimate_quality(loaded: Any, colour: np.ndarray) -> float:
    """FBCNN's qf (1 - quality / 100) for an image: the mean over up to five crops (the
    centre and the corners) that start on the 8 px JPEG lattice."""
    h, w = colour.shape[:2]
    sy, sx = min(QF_CROP, h), min(QF_CROP, w)
    ys, xs = ((h - sy) // 2, 0, h - sy), ((w - sx) // 2, 0, w - sx)
    spots: list[tuple[int, int]] = []
    for y, x in ((ys[0], xs[0]), (0, 0), (0, xs[2]), (ys[2], 0), (ys[2], xs[2])):
        spot = (y - y % 8, x - x % 8)
        if spot not in spots:
            spots.append(spot)
    values = []
    for y, x in spots[:QF_CROPS]:
        crop = to_float(colour[y:y + sy, x:x + sx])
        if colour.dtype == np.float32:
            crop = np.clip(crop, 0.0, 1.0)
        out = loaded(_rgb(np.ascontiguousarray(crop), loaded.input_channels),
                     call=_predicted_quality)
        values.append(float(out.reshape(-1)[0]))
    return float(np.mean(values))


def tile_function(loaded: Any, channels: int, call: Any, strength: float, clip: bool):
    """tile (h, w, channels) float32 -> denoised tile, channels adapted to the model's."""
    model_in, model_out = loaded.input_channels, loaded.output_channels
    if model_in != model_out:
        raise InvalidParams(f"model '{loaded.model_id}' maps {model_in} channels to {model_out}; "
                            "denoise needs a model that keeps channels")

    def forward(tile: np.ndarray) -> np.ndarray:
        if model_in == channels:
            return loaded(tile, call=call)
        if channels == 1 and model_in == 3:
            # Grey through an RGB model: three equal channels in, their mean out.
            return loaded(np.repeat(tile, 3, axis=2), call=call).mean(
                axis=2, keepdims=True, dtype=np.float32)
        if channels == 3 and model_in == 1:
            return np.concatenate([loaded(np.ascontiguousarray(tile[:, :, i:i + 1]), call=call)
                                   for i in range(3)], axis=2)
        raise InvalidParams(f"model '{loaded.model_id}' takes {model_in} channels; "
                            f"the image has {channels}")

    def fn(tile: np.ndarray) -> np.ndarray:
        if clip:
            np.clip(tile, 0.0, 1.0, out=tile)
        out = forward(tile)
        if strength < 1.0:
            out -= tile
            out *= np.float32(strength)
            out += tile
        return out

    return fn


# -- the operation ------------------------------------------------------------------
def _area(image: Image, mask: Mask | None, pad: int, align: int) -> Bounds:
    """What to compute: the whole image, or the selection plus context, on the lattice."""
    full = Bounds.of(image.extent)
    if mask is None:
        return full
    area = mask.bounds.pad(pad).clamp(image.extent)
    return Bounds.from_corners(area.x - area.x % align, area.y - area.y % align, area.x1, area.y1)


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:

    if mask is not None:
        inside = mask.bounds.intersect(Bounds.of(image.extent))
        mask = Mask(inside, mask.region(inside)).trimmed()
    entry = resolve_model(params, ctx.models, image.source_format)
    meta: dict[str, Any] = {"requested_model": params["model"], "model": entry.id}
    if mask is not None and mask.is_empty:
        ctx.warn("the selection is empty: nothing was denoised")
        return OpResult([full_layer(LAYER_NAME, image)], image.extent, {**meta, "region": None})
    ctx.progress(0.02, f"loading {entry.id}")
    loaded = ctx.models.load(entry.id)
    cc = image.color_channels
    clip = image.depth == 32
    if clip and float(image.color.max(initial=0.0)) > 1.0:
        ctx.warn("values above 1.0 (HDR) were clipped: the model works on 0..1")
    pad, blend = loaded.context
    align = ALIGN.get(loaded.architecture, DEFAULT_ALIGN)
    area = _area(image, mask, pad, align)
    rows, cols = area.slices
    src = image.color[rows, cols]
    strength = params["strength"]
    call = None
    if loaded.architecture in QUALITY_ARCHS:
        if strength is None:
            ctx.progress(0.05, "estimating the JPEG quality")
            qf = estimate_quality(loaded, src)
            meta["quality_estimated"] = True
        else:
            qf = float(strength)
            meta["quality_estimated"] = False
        meta["jpeg_quality"] = round(100 * (1 - qf), 1)
        call = _quality_call(qf)
        blend_by = 1.0
    else:
        blend_by = 1.0 if strength is None else float(strength)
    meta["strength"] = strength
    fn = tile_function(loaded, cc, call, blend_by, clip)
    tile = params["tile"] or loaded.auto_tile(working_budget(loaded, ctx.models))
    out = np.empty((area.height, area.width, image.channels), image.pixels.dtype)

    def on_tile(done: int, total: int) -> None:
        ctx.progress(0.1 + 0.85 * done / total, f"tile {done} of {total}")

    ctx.progress(0.1, f"denoising with {entry.id}")
    stats = run_tiles(loaded, ctx, src, fn, 1, out=out[:, :, :cc], tile=tile, pad=pad,
                      blend=blend, progress=on_tile, align=align)
    if image.has_alpha:
        out[:, :, -1] = image.alpha[rows, cols]
    meta.update({"architecture": loaded.architecture, "tile": tile, "tiles": stats.tiles,
                 "oom_retries": stats.retries, "device": str(loaded.device),
                 "precision": loaded.precision})
    if entry.non_commercial:
        ctx.warn(f"{entry.id} is licensed for non-commercial use only ({entry.license})")
    ctx.progress(1.0, "done")
    if mask is None:
        meta["region"] = None
        return OpResult([full_layer(LAYER_NAME, image.with_pixels(out))], image.extent, meta)
    inner_rows, inner_cols = mask.bounds.relative_to(area).slices
    pixels = np.ascontiguousarray(out[inner_rows, inner_cols])
    meta["region"] = mask.bounds.as_list()
    return OpResult([Layer(LAYER_NAME, image.with_pixels(pixels), mask.bounds, mask.data)],
                    image.extent, meta)


OPERATION = Operation(
    name="denoise",
    title="Denoise",
    description="Remove noise and JPEG artefacts with SCUNet or FBCNN (tiled, 16-bit safe).",
    params=ParamSchema((
        Param("model", str, "auto", "'auto' (FBCNN for JPEG sources when installed, else the "
              "best installed denoising model) or a model id such as scunet-real-psnr or "
              "fbcnn-color", pattern=r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"),
        Param("strength", float, None, "0..1. FBCNN: how much JPEG damage to remove (empty: "
              "estimated from the image); others: blend of the original (0) and the "
              "model's result (1, the default)", minimum=0, maximum=1, nullable=True),
        Param("tile", int, 0, "tile size in pixels; 0 sizes tiles from free memory",
              minimum=0, maximum=4096),
    )),
    run=run,
    mask="optional",
    check=check,
    models=("scunet-real-psnr", "scunet-real-gan", "fbcnn-color"),
)
