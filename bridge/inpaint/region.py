"""Where to work and at what size: the crop around a selection and the model's working size.

Everything here is geometry on Bounds/Extent; no pixels. The crop is the only
thing whose size follows the document: it follows the selection instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bridge.imaging.geometry import Bounds, Extent


@dataclass(frozen=True)
class WorkingSize:
    """How a model wants its input sized.

    `side` squared is the pixel budget (512 -> about 512x512 for SD 1.5, whatever
    the aspect ratio). Diffusion models enlarge small crops to that budget
    (`upscale`), because they draw badly far below their training size; LaMa
    does not need to. `max_pixels` is the memory cap, which always wins.
    """

    side: int
    multiple: int = 8
    upscale: bool = True
    max_pixels: int | None = None

    @property
    def budget(self) -> int:
        pixels = self.side * self.side
        return pixels if self.max_pixels is None else min(pixels, self.max_pixels)


def auto_feather(selection: Bounds) -> float:
    """A feather radius in proportion to the selection: soft for big areas, tight for wires."""
    return float(min(48, max(2, round(0.04 * max(selection.width, selection.height)))))


def auto_grow(selection: Bounds, share: float) -> int:
    """Grow by a share of the selection's size, a few pixels at least (selections hug edges)."""
    if share <= 0:
        return 0
    return int(min(64, max(2, round(share * max(selection.width, selection.height)))))


def context_bounds(selection: Bounds, extent: Extent, ratio: float, minimum: int = 16) -> Bounds:
    """The selection padded by `ratio` of its geometric-mean side, clamped to the image.

    The geometric mean keeps a long thin selection (a wire across the frame) in a
    band around it instead of a crop as tall as it is long.
    """
    mean_side = math.sqrt(max(1, selection.width) * max(1, selection.height))
    pad = max(minimum, math.ceil(ratio * mean_side))
    return selection.pad(pad).clamp(extent)


def working_extent(crop: Extent, size: WorkingSize) -> Extent:
    """The crop scaled to the model's budget, sides multiples of `size.multiple`.

    Never over the budget (so over the memory cap), never enlarged unless the model
    wants it, and at least one multiple on each side.
    """
    if crop.is_empty:
        raise ValueError("nothing to work on: the crop is empty")
    budget = max(size.multiple * size.multiple, size.budget)
    scale = math.sqrt(budget / crop.pixels)
    if not size.upscale:
        scale = min(1.0, scale)
    m = size.multiple

    def side(length: int) -> int:
        return max(m, math.floor(length * scale / m) * m) if length * scale >= m else m

    out = Extent(side(crop.width), side(crop.height))
    # Rounding each side down keeps the product under budget, except for very thin
    # crops where the short side was lifted to one multiple: shrink the long side then.
    while out.pixels > budget and max(out.width, out.height) > m:
        if out.width >= out.height:
            out = Extent(out.width - m, out.height)
        else:
            out = Extent(out.width, out.height - m)
    return out
