"""Follow the selection: the one path every fill-like operation takes, top to bottom.

    selection (soft 8-bit)
      -> grow, then feather outward: the mask the result is pasted through
      -> crop around it, with context in proportion to its size
      -> the crop at the model's working size (a multiple of 8, memory-aware)
      -> the model fills the hole (one fill per variation)
      -> colour-match each fill to the ring around the hole
      -> back to the crop's size and the document's depth
      -> a layer at the crop's bounds: the fill where the mask covers, the
         original pixels (exact bits, original alpha) everywhere else

Nothing here scales with the document: a 300x200 selection in a 100 MP image
costs what it costs in a 1 MP image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bridge.errors import InvalidInput
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.inpaint.colour import match_colours
from bridge.inpaint.region import WorkingSize, auto_feather, context_bounds, working_extent
from bridge.inpaint.resample import mask_to_working, to_crop, to_working
from bridge.ops.base import Layer, OpContext


class Inpainter(Protocol):
    """A model that fills holes. Sees float32 RGB in [0, 1] and a uint8 hole (255 = fill)."""

    name: str
    working: WorkingSize

    def fill(self, rgb: np.ndarray, hole: np.ndarray, ctx: OpContext) -> list[np.ndarray]:
        """One float32 RGB image per variation, the size of `rgb`, in [0, 1]."""
        ...


@dataclass(frozen=True)
class SelectionSettings:
    context: float = 0.5          # padding around the selection, as a share of its size
    grow: int = 0                 # pixels to grow the selection before feathering
    feather: float | None = None  # feather radius in pixels; None: in proportion to the selection
    color_match: bool = True


@dataclass(frozen=True)
class SelectionPlan:
    paste_mask: Mask  # the grown, feathered selection: the result's layer mask
    crop: Bounds      # the only part of the document that is read or written
    working: Extent   # the crop's size as the model sees it


def require_selection(selection: Mask | None, op: str) -> Mask:
    if selection is None or selection.is_empty:
        state = "missing" if selection is None else "empty (nothing is selected)"
        raise InvalidInput(
            f"'{op}' works on a selection, and the mask is {state}: select the area to "
            "change first (a mask with some non-zero pixels)")
    return selection


def plan_selection(extent: Extent, selection: Mask, settings: SelectionSettings,
                   size: WorkingSize) -> SelectionPlan:
    grown = selection.grown(settings.grow, extent) if settings.grow > 0 else selection
    grown = grown.trimmed()
    feather = auto_feather(grown.bounds) if settings.feather is None else settings.feather
    paste_mask = grown.feathered(feather, extent) if feather > 0 else grown
    crop = context_bounds(paste_mask.bounds, extent, settings.context)
    if not size.upscale:
        # Models that work at the crop's own size: make it a multiple they take,
        # so the crop needs no resampling at all when it fits the budget.
        crop = crop.expand_to_multiple(size.multiple, extent)
    return SelectionPlan(paste_mask, crop, working_extent(crop.extent, size))


def paste_inside(original: np.ndarray, colour: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """The crop with `colour` wherever coverage > 0 and its own bits everywhere else.

    The layer carries the fill wherever its mask shows any of it, and the layer
    mask does the blending, so the host composites fill*m + original*(1-m) once.
    Alpha (the last channel, when there is one) is the original's. `colour` (a
    fresh crop-sized array) is reused when it can be, so a selection as large as
    the document costs one crop-sized result, not two.
    """
    cc = colour.shape[2]
    keep = (coverage == 0)[:, :, None]
    if original.shape[2] == cc:
        np.copyto(colour, original, where=keep)
        return colour
    out = np.array(original, copy=True)
    np.copyto(out[:, :, :cc], colour, where=~keep)
    return out


def follow_selection(
    image: Image,
    selection: Mask | None,
    engine: Inpainter,
    settings: SelectionSettings,
    ctx: OpContext,
    names: Sequence[str] | Callable[[int], str] = lambda i: f"variation-{i + 1}",
    op: str = "fill",
) -> tuple[list[Layer], SelectionPlan]:
    # 1. where: the feathered selection and the crop around it.
    selection = require_selection(selection, op)
    plan = plan_selection(image.extent, selection, settings, engine.working)
    ctx.progress(0.02, f"{engine.name}: {plan.crop.width}x{plan.crop.height} crop at {plan.working}")

    # 2. what the model sees: the crop at its working size and the hole in it.
    crop = image.crop(plan.crop)
    coverage = plan.paste_mask.region(plan.crop)
    rgb = to_working(crop.pixels, image.color_channels, plan.working)
    hole = mask_to_working(coverage, plan.working)

    # 3. the model, which reports its own progress and checks for cancel.
    fills = engine.fill(rgb, hole, ctx.sub(0.05, 0.92))

    # 4. each fill back into the document, as a layer over the crop.
    layers: list[Layer] = []
    for i, fill in enumerate(fills):
        ctx.progress(0.92 + 0.08 * i / len(fills), "blending into the document")
        if settings.color_match:
            fill = match_colours(fill, rgb, hole)
        colour = to_crop(fill, plan.crop.extent, image.pixels.dtype, image.color_channels)
        pixels = paste_inside(crop.pixels, colour, coverage)
        name = names(i) if callable(names) else names[i]
        layers.append(Layer(name, crop.with_pixels(pixels), plan.crop, coverage, visible=i == 0))
    ctx.progress(1.0, "done")
    return layers, plan


def describe_plan(plan: SelectionPlan) -> dict[str, object]:
    """What the result's metadata says about where and at what size the model worked."""
    return {
        "crop": plan.crop.as_list(),
        "working_size": [plan.working.width, plan.working.height],
        "mask_bounds": plan.paste_mask.bounds.as_list(),
    }
