"""Blending and paste-back: exact at coverage 0 and 255, bit-identical outside the mask."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.imaging.composite import blend_region, paste_masked
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.mask import Mask
from tests.imaging.helpers import pattern

DTYPES = [np.uint8, np.uint16, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
def test_blend_is_exact_at_the_ends(dtype: type) -> None:
    base = pattern(16, 16, 4, dtype, seed=1)
    patch = pattern(16, 16, 4, dtype, seed=2)
    coverage = np.zeros((16, 16), np.uint8)
    coverage[:, 8:] = 255
    out = blend_region(base, patch, coverage)
    assert out.dtype == base.dtype
    assert np.array_equal(out[:, :8], base[:, :8])
    assert np.array_equal(out[:, 8:], patch[:, 8:])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_blend_in_between_is_rounded_mix(dtype: type) -> None:
    base = pattern(8, 32, 3, dtype, seed=3)
    patch = pattern(8, 32, 3, dtype, seed=4)
    coverage = np.tile(np.arange(0, 256, 8, dtype=np.uint8)[None, :], (8, 1))
    out = blend_region(base, patch, coverage)
    c = coverage.astype(np.float64)[..., None] / 255
    expected = base * (1 - c) + patch * c
    assert np.abs(out.astype(np.float64) - expected).max() <= 0.5 + 1e-3 * np.iinfo(dtype).max / 255


def test_blend_float_is_linear() -> None:
    base = np.zeros((1, 3, 1), np.float32)
    patch = np.full((1, 3, 1), 2.0, np.float32)
    out = blend_region(base, patch, np.array([[0, 51, 255]], np.uint8))
    assert out[0, :, 0] == pytest.approx([0.0, 0.4, 2.0])


def test_blend_refuses_mismatched_inputs() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="does not match"):
        blend_region(a, np.zeros((4, 5, 3), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="type"):
        blend_region(a, np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_paste_touches_only_covered_pixels(dtype: type) -> None:
    target = pattern(60, 80, 4, dtype, seed=5)
    before = target.copy()
    full = np.zeros((60, 80), np.uint8)
    full[20:30, 30:50] = 255
    full[25, 25:30] = 100  # a soft fringe
    mask = Mask.from_array(full)
    patch_bounds = Bounds(20, 15, 40, 25)
    patch = pattern(25, 40, 4, dtype, seed=6)
    paste_masked(target, patch, patch_bounds, mask)
    outside = mask.to_full(Extent(80, 60)) == 0
    assert np.array_equal(target[outside], before[outside])
    rows, cols = Bounds(30, 20, 20, 10).slices
    assert np.array_equal(target[rows, cols], patch[5:15, 10:30])


def test_paste_with_a_mask_beyond_the_patch_writes_only_the_overlap() -> None:
    target = np.zeros((20, 20, 1), np.uint8)
    mask = Mask.rectangle(Bounds(0, 0, 20, 20))
    paste_masked(target, np.full((5, 5, 1), 9, np.uint8), Bounds(10, 10, 5, 5), mask)
    assert target.sum() == 25 * 9 and (target[10:15, 10:15] == 9).all()


def test_paste_of_a_patch_hanging_over_the_target_edge() -> None:
    """Bounds partly outside the target (negative or past the end) must not wrap around."""
    target = np.zeros((10, 10, 1), np.uint8)
    patch = np.full((6, 6, 1), 7, np.uint8)
    paste_masked(target, patch, Bounds(-3, -3, 6, 6), Mask.rectangle(Bounds(-3, -3, 6, 6)))
    assert (target[:3, :3] == 7).all()
    assert target.sum() == 9 * 7
    paste_masked(target, patch, Bounds(7, 8, 6, 6), Mask.rectangle(Bounds(7, 8, 6, 6)))
    assert (target[8:, 7:] == 7).all()
    assert target.sum() == 9 * 7 + 6 * 7


def test_paste_with_an_empty_mask_changes_nothing() -> None:
    target = pattern(10, 10, 3)
    before = target.copy()
    paste_masked(target, pattern(10, 10, 3, seed=9), Bounds(0, 0, 10, 10),
                 Mask.from_array(np.zeros((10, 10), np.uint8)))
    assert np.array_equal(target, before)


@settings(max_examples=40, deadline=None)
@given(st.builds(Bounds, st.integers(-10, 40), st.integers(-10, 30), st.integers(1, 30),
                 st.integers(1, 30)),
       st.integers(0, 2**31 - 1))
def test_paste_is_bit_exact_outside_any_mask(patch_bounds: Bounds, seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 65536, (30, 40, 3)).astype(np.uint16)
    before = target.copy()
    full = np.where(rng.random((30, 40)) < 0.3, rng.integers(0, 256, (30, 40)), 0).astype(np.uint8)
    mask = Mask.from_array(full)
    patch = rng.integers(0, 65536, (patch_bounds.height, patch_bounds.width, 3)).astype(np.uint16)
    paste_masked(target, patch, patch_bounds, mask)
    touched = np.zeros((30, 40), bool)
    inside = patch_bounds.clamp(Extent(40, 30))
    rows, cols = inside.slices
    touched[rows, cols] = full[rows, cols] > 0
    assert np.array_equal(target[~touched], before[~touched])
    full_cover = touched & (full == 255)
    prow, pcol = np.nonzero(full_cover)
    assert np.array_equal(target[prow, pcol],
                          patch[prow - patch_bounds.y, pcol - patch_bounds.x])
