"""Running a recipe on one image: each step sees the previous step's flattened result."""

from __future__ import annotations

from typing import Any

import numpy as np

from bridge.errors import InvalidInput
from bridge.imaging.composite import paste_masked
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import OpContext, OpResult, full_layer
from bridge.ops.registry import run_operation
from bridge.recipes.recipe import Recipe, in_step


def flatten_result(previous: Image, result: OpResult) -> Image:
    """The document after a step: the primary layer composited through its mask.

    A layer covering the whole document without a mask is taken as it is (no copy);
    a masked or partial layer is pasted onto a copy of the previous image, so pixels
    outside its mask keep their exact bits.
    """
    layer = result.primary
    whole = Bounds.of(result.extent)
    if layer.bounds == whole and layer.mask is None:
        return layer.image
    if result.extent != previous.extent:
        raise InvalidInput(f"step result '{layer.name}' covers part of a resized document")
    if layer.image.channels != previous.channels or layer.image.depth != previous.depth:
        raise InvalidInput(f"step result '{layer.name}' changed the pixel layout of a partial "
                           "layer")
    pixels = np.array(previous.pixels, copy=True)
    coverage = layer.mask if layer.mask is not None else np.full(
        (layer.bounds.height, layer.bounds.width), 255, np.uint8)
    paste_masked(pixels, layer.image.pixels, layer.bounds, Mask(layer.bounds, coverage))
    return previous.with_pixels(pixels, icc=layer.image.icc, exif=layer.image.exif)


def run_recipe(recipe: Recipe, image: Image, ctx: OpContext | None = None) -> OpResult:
    """All steps in order, progress split evenly across them; one full-document layer out.

    metadata: recipe name, each step's own metadata, every warning (prefixed by
    its step), and `output`: the format/quality the result should be written in
    (Recipe.output_choice, as batch writes it).
    """
    ctx = ctx or OpContext()
    n = len(recipe.steps)
    current = image
    steps_meta: list[dict[str, Any]] = []
    for i, step in enumerate(recipe.steps):
        sub = ctx.sub(i / n, (i + 1) / n)
        sub.warnings = []  # this step's own, copied up with its name below
        with in_step(i, step.op):
            result = run_operation(step.op, current, None, step.params, sub)
            current = flatten_result(current, result)
        steps_meta.append({"op": step.op, **result.metadata})
        ctx.warnings.extend(f"step {i + 1} ({step.op}): {w}" for w in sub.warnings)
    ctx.progress(1.0, "done")
    meta: dict[str, Any] = {"operation": "recipe", "recipe": recipe.name, "steps": steps_meta}
    fmt, quality = recipe.output_choice()
    if fmt or quality:
        meta["output"] = {"format": fmt, "quality": quality}
    if ctx.warnings:
        meta["warnings"] = list(ctx.warnings)
    return OpResult([full_layer("image", current)], current.extent, meta)
