"""Extent and Bounds: examples for each helper, and properties that must hold for all inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.imaging.geometry import Bounds, Extent

coord = st.integers(-500, 500)
size = st.integers(0, 400)
bounds = st.builds(Bounds, coord, coord, size, size)
# Small boxes for tests that compare sets of pixels.
small = st.builds(Bounds, st.integers(-40, 40), st.integers(-40, 40), st.integers(0, 30),
                  st.integers(0, 30))
small_extents = st.builds(Extent, st.integers(1, 50), st.integers(1, 50))
extents = st.builds(Extent, st.integers(1, 600), st.integers(1, 600))


def inside(extent: Extent) -> st.SearchStrategy[Bounds]:
    """Bounds lying inside `extent` (possibly empty)."""
    return st.tuples(st.integers(0, extent.width), st.integers(0, extent.height)).flatmap(
        lambda xy: st.builds(Bounds, st.just(xy[0]), st.just(xy[1]),
                             st.integers(0, extent.width - xy[0]),
                             st.integers(0, extent.height - xy[1])))


def covered(b: Bounds) -> set[tuple[int, int]]:
    return {(x, y) for x in range(b.x, b.x1) for y in range(b.y, b.y1)}


# -- Extent ----------------------------------------------------------------------
def test_extent_basics() -> None:
    e = Extent(40, 30)
    assert e.pixels == 1200
    assert not e.is_empty
    assert Extent(0, 5).is_empty and Extent(5, 0).is_empty
    assert str(e) == "40x30"
    assert e == Extent(40, 30) and hash(e) == hash(Extent(40, 30))


def test_extent_refuses_negative_sides() -> None:
    with pytest.raises(ValueError):
        Extent(-1, 5)
    with pytest.raises(ValueError):
        Extent(5, -1)


def test_extent_scaled_and_multiple_of() -> None:
    assert Extent(100, 50).scaled(2) == Extent(200, 100)
    assert Extent(101, 51).scaled(0.5) == Extent(round(50.5), round(25.5))
    assert Extent(100, 50).multiple_of(8) == Extent(96, 48)
    assert Extent(3, 3).multiple_of(8) == Extent(8, 8)  # at least n


@given(extents, st.integers(1, 64))
def test_multiple_of_is_a_multiple_and_near(e: Extent, n: int) -> None:
    m = e.multiple_of(n)
    assert m.width % n == 0 and m.height % n == 0
    assert m.width >= n and m.height >= n
    assert abs(m.width - e.width) <= max(n // 2, n - e.width)
    assert abs(m.height - e.height) <= max(n // 2, n - e.height)


@given(extents, st.integers(1, 400_000))
def test_fit_within_respects_limit_and_aspect(e: Extent, limit: int) -> None:
    f = e.fit_within(limit)
    if e.pixels <= limit:
        assert f == e
        return
    assert f.width >= 1 and f.height >= 1
    assert f.width <= e.width and f.height <= e.height
    if f.width > 1 and f.height > 1:
        assert f.pixels <= limit
        # Aspect kept to within one pixel's rounding on either side.
        assert abs(f.width / f.height - e.width / e.height) <= (
            e.width / e.height) * (1 / f.width + 1 / f.height) + 1e-9


# -- Bounds: examples --------------------------------------------------------------
def test_bounds_basics() -> None:
    b = Bounds(10, 20, 30, 40)
    assert (b.x1, b.y1) == (40, 60)
    assert b.extent == Extent(30, 40)
    assert b.as_list() == [10, 20, 30, 40]
    assert str(b) == "30x40+10+20"
    assert Bounds.of(Extent(7, 8)) == Bounds(0, 0, 7, 8)
    assert Bounds(0, 0, 0, 5).is_empty and not b.is_empty
    with pytest.raises(ValueError):
        Bounds(0, 0, -1, 1)


def test_from_corners_never_negative() -> None:
    assert Bounds.from_corners(5, 5, 10, 12) == Bounds(5, 5, 5, 7)
    assert Bounds.from_corners(10, 10, 5, 5).is_empty


def test_slices_index_the_right_pixels() -> None:
    a = np.arange(100).reshape(10, 10)
    rows, cols = Bounds(2, 3, 4, 5).slices
    assert a[rows, cols].shape == (5, 4)
    assert a[rows, cols][0, 0] == a[3, 2]


def test_offset_and_relative_to() -> None:
    b = Bounds(10, 20, 5, 5)
    assert b.offset(3, -4) == Bounds(13, 16, 5, 5)
    assert b.relative_to(Bounds(8, 15, 100, 100)) == Bounds(2, 5, 5, 5)


def test_pad_forms() -> None:
    b = Bounds(10, 10, 10, 10)
    assert b.pad(2) == Bounds(8, 8, 14, 14)
    assert b.pad(1, 2) == Bounds(9, 8, 12, 14)  # left/right 1, top/bottom 2
    assert b.pad(1, 2, 3, 4) == Bounds(9, 8, 14, 16)
    assert b.pad(-20).is_empty


def test_intersect_union_contains() -> None:
    a, b = Bounds(0, 0, 10, 10), Bounds(5, 5, 10, 10)
    assert a.intersect(b) == Bounds(5, 5, 5, 5)
    assert a.union(b) == Bounds(0, 0, 15, 15)
    assert a.intersect(Bounds(20, 20, 5, 5)).is_empty
    assert a.union(Bounds(50, 50, 0, 0)) == a  # empty bounds add nothing
    assert Bounds(0, 0, 0, 0).union(b) == b
    assert a.contains(Bounds(2, 2, 3, 3)) and not a.contains(b)


def test_clamp() -> None:
    assert Bounds(-5, -5, 20, 20).clamp(Extent(10, 12)) == Bounds(0, 0, 10, 12)
    assert Bounds(50, 50, 5, 5).clamp(Extent(10, 10)).is_empty


def test_scaled_rounds_outward() -> None:
    assert Bounds(1, 1, 3, 3).scaled(0.5) == Bounds(0, 0, 2, 2)
    assert Bounds(2, 4, 6, 8).scaled(2) == Bounds(4, 8, 12, 16)


def test_expand_to_multiple_examples() -> None:
    e = Extent(100, 100)
    assert Bounds(10, 10, 30, 30).expand_to_multiple(8, e) == Bounds(9, 9, 32, 32)
    assert Bounds(90, 90, 10, 10).expand_to_multiple(16, e) == Bounds(84, 84, 16, 16)
    assert Bounds(0, 0, 100, 100).expand_to_multiple(64, e) == Bounds(0, 0, 100, 100)


def test_context_crop() -> None:
    e = Extent(1000, 800)
    assert Bounds(100, 100, 200, 100).context_crop(e, 0.1) == Bounds(80, 80, 240, 140)
    assert Bounds(0, 0, 50, 50).context_crop(e, 0.0, minimum=16) == Bounds(0, 0, 66, 66)
    assert Bounds(950, 750, 50, 50).context_crop(e, 0.5) == Bounds(925, 725, 75, 75)


def test_enclosing() -> None:
    assert Bounds.enclosing([]) == Bounds(0, 0, 0, 0)
    assert Bounds.enclosing([Bounds(5, 5, 1, 1), Bounds(0, 9, 2, 2)]) == Bounds(0, 5, 6, 6)


# -- Bounds: properties ------------------------------------------------------------
@given(small, small)
def test_intersect_is_exactly_the_common_pixels(a: Bounds, b: Bounds) -> None:
    i = a.intersect(b)
    assert i == b.intersect(a)
    assert covered(i) == covered(a) & covered(b)


@given(small, small)
def test_union_is_the_smallest_box_around_both(a: Bounds, b: Bounds) -> None:
    u = a.union(b)
    assert covered(a) | covered(b) <= covered(u)
    if not a.is_empty and not b.is_empty:
        assert u.x == min(a.x, b.x) and u.y1 == max(a.y1, b.y1)


@given(small, small_extents)
def test_clamp_stays_inside_and_keeps_what_was_inside(b: Bounds, e: Extent) -> None:
    c = b.clamp(e)
    assert covered(c) == covered(b) & covered(Bounds.of(e))


@given(bounds, st.integers(-30, 30), st.integers(-30, 30))
def test_offset_and_relative_to_are_inverse(b: Bounds, dx: int, dy: int) -> None:
    outer = Bounds(dx, dy, 1, 1)
    assert b.relative_to(outer).offset(dx, dy) == b


@given(bounds, st.floats(0.05, 8.0, allow_nan=False))
def test_scaled_covers_the_scaled_area(b: Bounds, f: float) -> None:
    s = b.scaled(f)
    assert s.x <= b.x * f + 1e-9 and s.y <= b.y * f + 1e-9
    assert s.x1 >= b.x1 * f - 1e-9 and s.y1 >= b.y1 * f - 1e-9
    assert s.width <= math.ceil(b.width * f) + 2


@given(extents.flatmap(lambda e: st.tuples(st.just(e), inside(e))), st.integers(1, 128))
def test_expand_to_multiple_properties(e_b: tuple[Extent, Bounds], n: int) -> None:
    e, b = e_b
    out = b.expand_to_multiple(n, e)
    assert Bounds.of(e).contains(out)
    assert out.contains(b) or b.is_empty
    for side, limit in ((out.width, e.width), (out.height, e.height)):
        assert side % n == 0 or side == limit  # a multiple, unless the image is too small
    assert out.width - b.width < n or out.width == e.width or b.width % n == 0
    assert out.height - b.height < n or out.height == e.height or b.height % n == 0


@given(extents.flatmap(lambda e: st.tuples(st.just(e), inside(e))),
       st.floats(0, 1, allow_nan=False), st.integers(0, 64))
def test_context_crop_contains_the_box_and_stays_inside(
        e_b: tuple[Extent, Bounds], ratio: float, minimum: int) -> None:
    e, b = e_b
    crop = b.context_crop(e, ratio, minimum)
    assert Bounds.of(e).contains(crop)
    assert crop.contains(b) or b.is_empty
    pad = max(minimum, math.ceil(max(b.width, b.height) * ratio))
    assert crop == b.pad(pad).clamp(e)


@given(st.lists(bounds, max_size=6))
def test_enclosing_contains_every_non_empty_box(items: list[Bounds]) -> None:
    env = Bounds.enclosing(items)
    for b in items:
        if not b.is_empty:
            assert env.contains(b)
