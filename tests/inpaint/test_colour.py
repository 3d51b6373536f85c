"""Colour matching learns a fill's shift on the ring around the hole and undoes it."""

from __future__ import annotations

import numpy as np

from bridge.inpaint.colour import match_colours, surrounding_ring


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    original = np.stack([xx / 127, yy / 95, 0.5 + 0.3 * np.sin(xx / 9)], -1) * 0.8 + 0.1
    original += rng.normal(0, 0.02, original.shape).astype(np.float32)
    hole = np.zeros((96, 128), np.uint8)
    hole[30:60, 40:90] = 255
    return np.clip(original, 0, 1).astype(np.float32), hole


def test_a_shifted_fill_is_brought_back_to_its_surroundings() -> None:
    original, hole = _scene()
    shifted = np.clip(original * np.float32(0.9) + np.float32([0.06, -0.04, 0.03]), 0, 1)
    fixed = match_colours(shifted, original, hole)
    ring = surrounding_ring(hole, 8)
    before = np.abs(shifted[ring] - original[ring]).mean()
    after = np.abs(fixed[ring] - original[ring]).mean()
    assert after < before / 4
    # the hole is corrected by the same map, so it moves toward the original too
    inside = hole > 0
    assert np.abs(fixed[inside] - original[inside]).mean() < np.abs(shifted[inside] - original[inside]).mean()


def test_a_fill_that_already_matches_is_left_alone() -> None:
    original, hole = _scene(1)
    fill = original.copy()
    fill[hole > 0] = 0.3  # whatever the model painted inside
    fixed = match_colours(fill, original, hole)
    assert np.abs(fixed - fill).max() < 1e-5


def test_no_ring_means_no_change() -> None:
    original, _ = _scene(2)
    everything = np.full(original.shape[:2], 255, np.uint8)
    fill = original * np.float32(0.5)
    assert match_colours(fill, original, everything) is fill


def test_gain_is_bounded_when_the_ring_is_flat() -> None:
    original = np.full((64, 64, 3), 0.5, np.float32)
    hole = np.zeros((64, 64), np.uint8)
    hole[20:40, 20:40] = 255
    noisy = original + np.random.default_rng(3).normal(0, 0.2, original.shape).astype(np.float32)
    fixed = match_colours(np.clip(noisy, 0, 1), original, hole)
    assert np.isfinite(fixed).all() and fixed.std() > 0.05  # not squashed flat by a huge gain
