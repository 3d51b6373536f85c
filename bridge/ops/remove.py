"""Remove: erase what is selected (wires, people, blemishes) with LaMa; no prompt.

Follows the selection like fill. Without LaMa weights installed it falls back to
OpenCV inpainting, and says so in the result (metadata "engine" and a warning).
"""

from __future__ import annotations

from typing import Any

from bridge.errors import ModelMissing
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import OpContext, Operation, OpResult
from bridge.ops.params import Param, ParamSchema

DEFAULT_MODEL = "big-lama"


def check(params: dict[str, Any], manager: Any) -> None:
    """At submission: a named file exists, a registry id is known and of the right kind, and,
    without the OpenCV fallback, installed."""
    from bridge.errors import InvalidParams
    from bridge.inpaint import sources

    model = params["model"]
    if model == "opencv":
        return
    if sources.looks_like_path(model):
        lama_file(model)
        return
    entry = manager.entry(model)
    if entry.task != "inpaint":
        raise InvalidParams(f"model '{model}' is a {entry.task} model; remove needs an inpainting "
                            "model such as big-lama", param="model")
    if not params["fallback"]:
        manager.require(model)


LAMA_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


def lama_file(model: str) -> Any:
    """The LaMa weights file a path names (it exists, and is a weights file)."""
    from bridge.errors import InvalidParams
    from bridge.inpaint import sources

    path = sources.local_path(model)
    if path.suffix.lower() not in LAMA_SUFFIXES:
        raise InvalidParams(f"{path.name}: a LaMa model is a {', '.join(LAMA_SUFFIXES)} file",
                            param="model")
    return path


def _lama(model: str, ctx: OpContext) -> tuple[Any, str]:
    """(spandrel descriptor, device) for a LaMa file path or a registry id."""
    from bridge.errors import InvalidParams
    from bridge.inpaint import engines, memory, sources

    if sources.looks_like_path(model):
        device = memory.configured_device(ctx)
        return engines.cached_lama(lama_file(model), model, device), device
    manager = sources.manager_of(ctx, model)
    entry = manager.entry(model)
    if entry.task != "inpaint":
        raise InvalidParams(f"model '{model}' is a {entry.task} model; remove needs an inpainting "
                            "model such as big-lama", param="model")
    loaded = manager.load(model)  # ModelMissing when not installed
    engines.check_inpainting_model(loaded.descriptor, model)
    return loaded.descriptor, str(loaded.device)


def _engine(params: dict[str, Any], ctx: OpContext) -> tuple[Any, dict[str, Any]]:
    from bridge.inpaint import engines, memory, sources
    from bridge.inpaint.region import WorkingSize

    side = params["working_size"] or 1024
    model = params["model"]
    if model == "opencv":
        return engines.OpenCVInpainter(params["opencv_method"], WorkingSize(side, upscale=False)), {}
    try:
        descriptor, device = _lama(model, ctx)
    except ModelMissing as missing:
        if not params["fallback"] or sources.looks_like_path(model):
            raise
        hint = missing.details.get("hint", "")
        ctx.warn(f"model '{model}' is not installed, so OpenCV inpainting was used instead "
                 f"(lower quality on large areas). To get LaMa: {hint}")
        engine = engines.OpenCVInpainter(params["opencv_method"], WorkingSize(side, upscale=False))
        return engine, {"fallback_reason": missing.message}
    cap = memory.pixel_cap(device, engines.LAMA_BYTES_PER_PIXEL, memory.configured_budget_mb(ctx))
    working = WorkingSize(side, upscale=False, max_pixels=cap)
    return engines.LamaInpainter(descriptor, device, working), {"model": model, "device": device}


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    from dataclasses import replace

    from bridge.errors import is_out_of_memory
    from bridge.inpaint import memory
    from bridge.inpaint.engines import LamaInpainter
    from bridge.inpaint.pipeline import (
        SelectionSettings,
        describe_plan,
        follow_selection,
        require_selection,
    )
    from bridge.inpaint.region import auto_grow

    selection = require_selection(mask, "remove")
    ctx.progress(0.0, "loading the model")
    engine, info = _engine(params, ctx.sub(0.0, 0.1))
    grow = params["grow"] if params["grow"] is not None else auto_grow(selection.bounds, 0.02)
    settings = SelectionSettings(context=params["context"], grow=grow, feather=params["feather"],
                                 color_match=params["color_match"])
    try:
        layers, plan = follow_selection(image, selection, engine, settings, ctx.sub(0.1, 1.0),
                                        names=["removed"], op="remove")
    except Exception as e:
        if not (isinstance(engine, LamaInpainter) and is_out_of_memory(e)):
            raise
        del e
        smaller = memory.after_out_of_memory(ctx, engine.device, engine.working.budget)
        engine = replace(engine, working=replace(engine.working, max_pixels=smaller))
        layers, plan = follow_selection(image, selection, engine, settings, ctx.sub(0.1, 1.0),
                                        names=["removed"], op="remove")
    metadata = {"engine": engine.name, **info, **describe_plan(plan), "grow": grow}
    return OpResult(layers, image.extent, metadata)


OPERATION = Operation(
    name="remove",
    title="Remove object",
    description="Erase the selection and fill it from its surroundings (LaMa; OpenCV without it).",
    params=ParamSchema((
        Param("model", str, DEFAULT_MODEL,
              "LaMa model id (big-lama), a path to a LaMa weights file (.pth, .ckpt, .safetensors), "
              "or 'opencv' for classical inpainting"),
        Param("fallback", bool, True,
              "use OpenCV when the LaMa model is not installed (the result says so)"),
        Param("opencv_method", str, "telea", "OpenCV algorithm: telea or ns (Navier-Stokes)",
              choices=("telea", "ns")),
        Param("context", float, 0.5, "context around the selection, as a share of its size",
              minimum=0.0, maximum=4.0),
        Param("grow", int, None, "grow the selection by this many pixels first (default: "
              "2% of its size, so edges of the object go too)", minimum=0, maximum=512,
              nullable=True),
        Param("feather", float, None, "feather radius in pixels (default: in proportion "
              "to the selection)", minimum=0, maximum=512, nullable=True),
        Param("working_size", int, None, "largest side the model works at, as a pixel budget "
              "of size squared (default 1024); less memory means less", minimum=64, maximum=4096,
              nullable=True),
        Param("color_match", bool, True, "match the fill's colours to its surroundings"),
    )),
    run=run,
    check=check,
    mask="required",
    models=(DEFAULT_MODEL,),
)
