"""Crop and working-size planning: multiples, budgets, memory caps, thin and huge selections."""

from __future__ import annotations

import pytest

from bridge.imaging.geometry import Bounds, Extent
from bridge.inpaint.region import (
    WorkingSize,
    auto_feather,
    auto_grow,
    context_bounds,
    working_extent,
)


@pytest.mark.parametrize("crop", [Extent(600, 500), Extent(8000, 6000), Extent(97, 33),
                                  Extent(8358, 374), Extent(9, 9), Extent(1, 4000)])
@pytest.mark.parametrize("size", [WorkingSize(512), WorkingSize(1024, upscale=False),
                                  WorkingSize(512, max_pixels=200 * 200), WorkingSize(64)])
def test_working_extent_is_a_multiple_within_budget(crop: Extent, size: WorkingSize) -> None:
    out = working_extent(crop, size)
    assert out.width % size.multiple == 0 and out.height % size.multiple == 0
    assert out.width >= size.multiple and out.height >= size.multiple
    assert out.pixels <= max(size.budget, size.multiple * size.multiple)
    if not size.upscale:
        # never enlarged beyond one rounding step
        assert out.width <= max(crop.width, size.multiple) and out.height <= max(crop.height, size.multiple)


def test_diffusion_sizes_enlarge_small_crops_to_the_native_budget_keeping_aspect() -> None:
    out = working_extent(Extent(300, 200), WorkingSize(512))
    assert out.pixels <= 512 * 512 < (out.width + 8) * (out.height + 8)
    assert abs(out.width / out.height - 1.5) < 0.1


def test_memory_cap_wins_over_the_native_size() -> None:
    out = working_extent(Extent(8000, 6000), WorkingSize(1024, max_pixels=300 * 300))
    assert out.pixels <= 300 * 300
    assert abs(out.width / out.height - 8000 / 6000) < 0.1


def test_lama_keeps_a_small_crop_at_its_own_size() -> None:
    assert working_extent(Extent(640, 480), WorkingSize(1024, upscale=False)) == Extent(640, 480)


def test_context_follows_the_selection_not_the_document() -> None:
    doc = Extent(8000, 6000)
    sel = Bounds(4000, 3000, 300, 200)
    crop = context_bounds(sel, doc, 0.5)
    assert crop.contains(sel)
    assert crop.width < 600 and crop.height < 500
    # a wire across the frame gets a band, not a crop as tall as it is long
    wire = context_bounds(Bounds(0, 3000, 8000, 8), doc, 0.5)
    assert wire.height < 400 and wire.width == 8000


def test_context_is_clamped_to_the_image() -> None:
    crop = context_bounds(Bounds(0, 0, 50, 50), Extent(100, 80), 2.0)
    assert crop == Bounds(0, 0, 100, 80)


def test_feather_and_grow_follow_selection_size() -> None:
    assert auto_feather(Bounds(0, 0, 10, 10)) == 2
    assert auto_feather(Bounds(0, 0, 300, 200)) == 12
    assert auto_feather(Bounds(0, 0, 5000, 5000)) == 48
    assert auto_grow(Bounds(0, 0, 300, 200), 0.02) == 6
    assert auto_grow(Bounds(0, 0, 300, 200), 0) == 0
