"""AI Fill: Stable Diffusion inpainting of the selection, with or without a prompt.

Follows the selection (bridge.inpaint.pipeline): the model only ever sees a crop
around it at its working size, and the result is one layer per variation, placed
at the crop's bounds with the feathered selection as its layer mask. Pixels
outside the mask are the document's own bits.
"""

from __future__ import annotations

import secrets
from typing import Any

from bridge.diffusion.schedulers import NAMES as SCHEDULER_NAMES
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import OpContext, Operation, OpResult
from bridge.ops.params import Param, ParamSchema

DEFAULT_MODEL = "sd15-inpainting"


def _lora_specs(refs: list[str], ctx: OpContext) -> list[Any]:
    from bridge.diffusion.lora import LoraSpec, parse_lora
    from bridge.inpaint import sources

    specs = []
    for text in refs:
        ref, weight = parse_lora(text)
        specs.append(LoraSpec(sources.resolve(ctx, ref), weight, ref))
    return specs


def check(params: dict[str, Any], manager: Any) -> None:
    """At submission: the model and LoRA files exist (cheap: no torch, no weights read)."""
    from bridge.diffusion import source

    ctx = OpContext(models=manager)
    source.resolve(ctx, params["model"])
    _lora_specs(params["loras"], ctx)


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    from bridge.diffusion import loader, source
    from bridge.diffusion.inpainter import DiffusionInpainter, FillRequest
    from bridge.diffusion.lora import apply_loras
    from bridge.errors import is_out_of_memory
    from bridge.inpaint import memory
    from bridge.inpaint.pipeline import (
        SelectionSettings,
        describe_plan,
        follow_selection,
        require_selection,
    )
    from bridge.inpaint.region import WorkingSize, auto_grow

    selection = require_selection(mask, "fill")
    src = source.resolve(ctx, params["model"])
    loras = _lora_specs(params["loras"], ctx)
    device = memory.configured_device(ctx)
    ctx.progress(0.0, "loading the model")
    loaded = loader.load_pipeline(src, device)

    # Memory-aware working size: the model's native budget, unless memory is short,
    # in which case the memory savers (VAE tiling) come on and the cap is re-planned.
    side = params["working_size"] or loader.NATIVE_SIDE[src.family]
    budget_mb = memory.configured_budget_mb(ctx)
    cap = memory.pixel_cap(device, loaded.bytes_per_pixel(saving=False), budget_mb)
    saving = cap is not None and side * side > cap
    if saving:
        cap = memory.pixel_cap(device, loaded.bytes_per_pixel(saving=True), budget_mb)
    working = WorkingSize(side, multiple=8, upscale=True, max_pixels=cap)

    seed = params["seed"] if params["seed"] is not None else secrets.randbelow(2**31)
    request = FillRequest(
        prompt=params["prompt"], negative_prompt=params["negative_prompt"], seed=seed,
        steps=params["steps"], guidance=params["guidance"], strength=params["strength"],
        variations=params["variations"], scheduler=params["scheduler"],
        preview_every=params["preview_every"],
    )
    grow = params["grow"] if params["grow"] is not None else auto_grow(selection.bounds, 0.01)
    settings = SelectionSettings(context=params["context"], grow=grow, feather=params["feather"],
                                 color_match=params["color_match"])

    def attempt(saving: bool, working: WorkingSize) -> tuple[Any, Any, Any]:
        with loaded.lock:
            loaded.use_memory_saving(saving)
            for warning in apply_loras(loaded.pipe, loras, loaded.lora):
                ctx.warn(warning)
            engine = DiffusionInpainter(loaded, request, working)
            return engine, *follow_selection(image, selection, engine, settings,
                                             ctx.sub(0.05, 1.0))

    try:
        engine, layers, plan = attempt(saving, working)
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        del e
        # With the memory savers on as well.
        smaller = memory.after_out_of_memory(ctx, device, working.budget, "VAE tiling and ")
        saving, working = True, WorkingSize(side, multiple=8, upscale=True, max_pixels=smaller)
        engine, layers, plan = attempt(saving, working)
    metadata = {
        "engine": engine.name, "model": params["model"], "family": src.family, "device": device,
        "seed": seed, "seeds": engine.seeds, "steps": request.steps, "guidance": request.guidance,
        "strength": request.strength, "scheduler": request.scheduler,
        "loras": [{"name": s.label, "weight": s.weight} for s in loras],
        "memory_saving": saving, "grow": grow, **describe_plan(plan),
    }
    return OpResult(layers, image.extent, metadata)


OPERATION = Operation(
    name="fill",
    title="AI Fill",
    description="Fill the selection with Stable Diffusion inpainting (SD 1.5 or SDXL), guided by "
                "an optional prompt; one layer per variation.",
    params=ParamSchema((
        Param("prompt", str, "", "what to paint in the selection (empty: continue the surroundings)"),
        Param("negative_prompt", str, "", "what to avoid"),
        Param("seed", int, None, "random seed (default: a new one, reported in the result); "
              "variation i uses seed + i", minimum=0, maximum=2**32 - 1, nullable=True),
        Param("steps", int, 25, "denoising steps", minimum=1, maximum=150),
        Param("guidance", float, 7.5, "how closely to follow the prompt (classifier-free guidance)",
              minimum=0.0, maximum=30.0),
        Param("strength", float, 1.0, "how much of the selected area to repaint (1: all of it)",
              minimum=0.01, maximum=1.0),
        Param("variations", int, 1, "how many results (one layer each; the first is visible)",
              minimum=1, maximum=8),
        Param("scheduler", str, "default", "sampler", choices=SCHEDULER_NAMES),
        Param("loras", str, [], "LoRA files or model ids, each 'path-or-id' or 'path-or-id:weight' "
              "(weight defaults to 1.0)", many=True),
        Param("model", str, DEFAULT_MODEL,
              "registry id (sd15-inpainting, sdxl-inpainting), a hub id already in the local "
              "Hugging Face cache, a diffusers folder, or a single .safetensors/.ckpt checkpoint"),
        Param("context", float, 0.5, "context around the selection, as a share of its size",
              minimum=0.0, maximum=4.0),
        Param("grow", int, None, "grow the selection by this many pixels first (default: 1% of "
              "its size)", minimum=0, maximum=512, nullable=True),
        Param("feather", float, None, "feather radius in pixels (default: in proportion to the "
              "selection)", minimum=0, maximum=512, nullable=True),
        Param("working_size", int, None, "side of the model's pixel budget (default: 512 for SD 1.5, "
              "1024 for SDXL); memory may lower it", minimum=64, maximum=2048, nullable=True),
        Param("color_match", bool, True, "match the fill's colours to its surroundings"),
        Param("preview_every", int, 5, "send a preview every N steps (0: none)", minimum=0,
              maximum=150),
    )),
    run=run,
    check=check,
    mask="required",
    models=(DEFAULT_MODEL, "sdxl-inpainting"),
)
