"""Mask: construction from arrays, regions, grow, feather and trim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.mask import Mask, content_bounds, to_uint8_coverage

EXT = Extent(120, 90)
BOX = Bounds(40, 30, 25, 20)


def blob(extent: Extent = EXT, box: Bounds = BOX, value: int = 255) -> Mask:
    full = np.zeros((extent.height, extent.width), np.uint8)
    rows, cols = box.slices
    full[rows, cols] = value
    return Mask.from_array(full)


# -- from_array and coverage conversion --------------------------------------------
def test_from_array_trims_to_content() -> None:
    m = blob()
    assert m.bounds == Bounds(40, 30, 25, 20)
    assert m.data.shape == (20, 25) and (m.data == 255).all()
    assert m.data.flags.c_contiguous


def test_from_array_of_nothing_is_empty() -> None:
    m = Mask.from_array(np.zeros((10, 10), np.uint8))
    assert m.is_empty and m.bounds.is_empty


@pytest.mark.parametrize(("array", "expected"), [
    (np.array([[0, 1, 254, 255]], np.uint8), [0, 1, 254, 255]),
    (np.array([[False, True]]), [0, 255]),
    (np.array([[0, 128, 129, 32767, 32768, 65535]], np.uint16), [0, 0, 1, 127, 128, 255]),
    (np.array([[0.0, 0.5, 1.0, 1.5, -0.5, 0.002]], np.float32), [0, 128, 255, 255, 0, 1]),
])
def test_coverage_conversion_rounds(array: np.ndarray, expected: list[int]) -> None:
    assert to_uint8_coverage(array)[0].tolist() == expected


def test_uint16_coverage_is_exactly_rounded_for_every_value() -> None:
    values = np.arange(65536, dtype=np.uint16)[None, :]
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    assert np.array_equal(to_uint8_coverage(values), expected)


def test_coverage_accepts_one_channel_3d_and_refuses_more() -> None:
    assert to_uint8_coverage(np.full((2, 3, 1), 7, np.uint8)).shape == (2, 3)
    with pytest.raises(ValueError, match="one channel"):
        to_uint8_coverage(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError):
        to_uint8_coverage(np.zeros((2, 3, 1, 1), np.uint8))
    with pytest.raises(ValueError, match="unsupported"):
        to_uint8_coverage(np.zeros((2, 3), np.int32))


def test_mask_checks_its_data() -> None:
    with pytest.raises(ValueError):
        Mask(Bounds(0, 0, 2, 2), np.zeros((2, 2), np.uint16))
    with pytest.raises(ValueError):
        Mask(Bounds(0, 0, 2, 3), np.zeros((2, 2), np.uint8))


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 30), st.integers(1, 30)),
              elements=st.sampled_from([0, 0, 0, 1, 100, 255])))
def test_from_array_then_to_full_is_identity(full: np.ndarray) -> None:
    m = Mask.from_array(full)
    extent = Extent(full.shape[1], full.shape[0])
    assert np.array_equal(m.to_full(extent), full)
    assert m.bounds == content_bounds(full)
    if not m.is_empty:  # trimmed: every edge row and column holds something
        assert m.data[0].any() and m.data[-1].any()
        assert m.data[:, 0].any() and m.data[:, -1].any()


# -- region ----------------------------------------------------------------------------
def test_region_inside_partly_outside_and_disjoint() -> None:
    m = blob(box=Bounds(10, 10, 5, 5), value=200)
    assert (m.region(Bounds(10, 10, 5, 5)) == 200).all()
    part = m.region(Bounds(8, 12, 4, 6))
    assert part.shape == (6, 4)
    assert part[:3, 2:].tolist() == [[200, 200]] * 3
    assert not part[:, :2].any() and not part[3:].any()
    assert not m.region(Bounds(50, 50, 3, 3)).any()
    assert m.region(Bounds(-5, -5, 30, 30)).sum() == 25 * 200


def test_region_returns_a_copy() -> None:
    m = blob()
    r = m.region(m.bounds)
    r[:] = 0
    assert (m.data == 255).all()


# -- grown -----------------------------------------------------------------------------
def test_grown_by_zero_is_the_same_mask() -> None:
    m = blob()
    assert m.grown(0, EXT) is m


def test_grown_is_a_disc_dilation() -> None:
    m = Mask.from_array(np.pad(np.full((1, 1), 255, np.uint8), 20))
    g = m.grown(5, Extent(41, 41))
    full = g.to_full(Extent(41, 41))
    yy, xx = np.mgrid[0:41, 0:41]
    dist = np.hypot(yy - 20, xx - 20)
    assert (full[dist <= 4.5] == 255).all()
    assert not full[dist > 5.5].any()
    assert full[20, 15] == 255 and full[20, 14] == 0  # exactly radius 5 along an axis


def test_grown_contains_the_original_and_stays_in_the_image() -> None:
    m = blob(box=Bounds(0, 80, 30, 10))  # touches the left and bottom edges
    g = m.grown(8, EXT)
    assert Bounds.of(EXT).contains(g.bounds)
    orig, grown = m.to_full(EXT), g.to_full(EXT)
    assert (grown >= orig).all()
    assert grown[79 - 7, 10] == 255 and grown[79 - 9, 10] == 0


# -- feathered ---------------------------------------------------------------------------
def test_feathered_by_zero_is_the_same_mask() -> None:
    m = blob()
    assert m.feathered(0, EXT) is m


@pytest.mark.parametrize("radius", [2, 5, 12])
def test_feather_keeps_the_core_and_falls_off_outside(radius: float) -> None:
    m = blob(extent=Extent(200, 200), box=Bounds(80, 80, 40, 40))
    f = m.feathered(radius, Extent(200, 200))
    full = f.to_full(Extent(200, 200))
    assert (full[80:120, 80:120] == 255).all()  # the selection itself is fully replaced
    row = full[100, :80][::-1]  # walking outward from the left edge
    assert row[0] > 0
    assert (np.diff(row.astype(int)) <= 0).all()  # never rises on the way out
    assert row[-1] == 0


@pytest.mark.parametrize("radius", [2, 3.5, 6, 15])
def test_feather_has_no_step_where_its_bounds_end(radius: float) -> None:
    """The tail must fade to (near) zero inside the mask's bounds: a cut-off tail
    shows as a visible rectangle around the fill."""
    extent = Extent(300, 300)
    f = blob(extent=extent, box=Bounds(120, 120, 60, 60)).feathered(radius, extent)
    b = f.bounds
    full = f.to_full(extent)
    rim = np.concatenate([full[b.y, b.x:b.x1], full[b.y1 - 1, b.x:b.x1],
                          full[b.y:b.y1, b.x], full[b.y:b.y1, b.x1 - 1]])
    assert rim.max() <= 2


def test_feather_is_not_dimmed_by_the_image_edge() -> None:
    """A selection touching the right edge feathers the same there as one column inside."""
    extent = Extent(100, 100)
    f = blob(extent=extent, box=Bounds(60, 40, 40, 20)).feathered(6, extent)
    full = f.to_full(extent).astype(int)
    assert np.abs(full[:, 99] - full[:, 90]).max() <= 1


@settings(max_examples=25, deadline=None)
@given(st.builds(Bounds, st.integers(0, 60), st.integers(0, 60), st.integers(1, 20),
                 st.integers(1, 20)), st.floats(0.5, 10))
def test_feather_stays_inside_the_image_and_covers_the_selection(box: Bounds, r: float) -> None:
    extent = Extent(80, 80)
    box = box.clamp(extent)
    m = blob(extent=extent, box=box)
    f = m.feathered(r, extent)
    assert Bounds.of(extent).contains(f.bounds)
    assert (f.to_full(extent) >= m.to_full(extent)).all()


# -- trimmed -------------------------------------------------------------------------
def test_trimmed_moves_bounds_and_copies() -> None:
    data = np.zeros((10, 10), np.uint8)
    data[3:5, 6:9] = 9
    m = Mask(Bounds(100, 200, 10, 10), data).trimmed()
    assert m.bounds == Bounds(106, 203, 3, 2)
    assert (m.data == 9).all()
    data[:] = 0
    assert (m.data == 9).all()


def test_trimmed_of_a_tight_mask_is_itself() -> None:
    m = Mask.rectangle(Bounds(5, 5, 4, 4))
    assert m.trimmed() is m
