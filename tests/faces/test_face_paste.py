"""The face-space mask, warping restored faces back, merging faces into one layer."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.faces.align import TEMPLATE_512, alignment, apply, compose, invert, translation
from bridge.faces.paste import PastedFace, composite, face_mask, merge, warp_back
from bridge.imaging.geometry import Bounds
from bridge.imaging.mask import Mask

RNG = np.random.default_rng(5)


def test_face_mask_is_full_inside_and_fades_to_nothing_at_the_rim() -> None:
    m = face_mask()
    assert m.shape == (512, 512) and m.dtype == np.float32 and not m.flags.writeable
    assert m[100:412, 100:412].min() == 1.0  # eyes, nose, mouth and cheeks fully restored
    for x, y in TEMPLATE_512:
        assert m[round(y), round(x)] == 1.0
    assert m[0].max() == 0.0 and m[:, 0].max() == 0.0 and m[5, 5] == 0.0
    # A smooth, monotone fade from the rim to the middle, the same on all four sides.
    row = m[256, :256]
    assert np.all(np.diff(row) >= 0) and np.diff(row).max() < 0.05
    np.testing.assert_array_equal(m, m[::-1])
    np.testing.assert_array_equal(m, m.T)
    # Rounded corners: the diagonal fades in later than the sides.
    assert m[40, 40] < m[40, 256]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_warp_back_gives_coverage_and_the_images_depth(dtype) -> None:
    # A face 128 px wide whose square starts at (30, 20) of the region.
    landmarks = apply(np.array([[0.25, 0, 30], [0, 0.25, 20]]), TEMPLATE_512)
    region = Bounds(1000, 2000, 200, 170)
    face_to_region = invert(alignment(landmarks))
    restored = np.full((512, 512, 3), 0.75, np.float32)
    pasted = warp_back(restored, face_to_region, region, np.dtype(dtype))
    assert isinstance(pasted, PastedFace)
    # Inside the square, in image coordinates (the region's corner added back).
    assert pasted.bounds.x >= 1030 and pasted.bounds.x1 <= 1030 + 128
    assert pasted.bounds.y >= 2020 and pasted.bounds.y1 <= 2020 + 128
    assert pasted.patch.dtype == dtype and pasted.patch.shape[:2] == pasted.coverage.shape
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    np.testing.assert_allclose(pasted.patch.astype(np.float64), round(0.75 * top, 5 if top == 1 else 0))
    c = pasted.coverage
    centre = (2020 + 64 - pasted.bounds.y, 1030 + 64 - pasted.bounds.x)
    assert c[centre] == 255 and c[0, 0] == 0
    # Blend scales the coverage; nothing at all for blend 0 or a square outside the region.
    half = warp_back(restored, face_to_region, region, np.dtype(dtype), blend=0.5)
    assert half is not None and half.coverage.max() == 128
    assert warp_back(restored, face_to_region, region, np.dtype(dtype), blend=0.0) is None
    away = compose(translation(500, 0), face_to_region)
    assert warp_back(restored, away, region, np.dtype(dtype)) is None


def test_merge_keeps_the_strongest_face_and_the_alpha() -> None:
    base = RNG.integers(0, 65536, (60, 80, 4), dtype=np.uint16)
    cov_a = np.zeros((30, 30), np.uint8)
    cov_a[5:25, 5:25] = 200
    cov_b = np.zeros((30, 30), np.uint8)
    cov_b[:, :] = 100
    a = PastedFace(Bounds(10, 10, 30, 30), np.full((30, 30, 3), 1000, np.uint16), cov_a)
    b = PastedFace(Bounds(30, 20, 30, 30), np.full((30, 30, 3), 2000, np.uint16), cov_b)
    bounds, pixels, coverage = merge(base, [a, b])
    assert bounds == Bounds.from_corners(10, 10, 60, 50)
    assert pixels.shape == (40, 50, 4) and coverage.shape == (40, 50)
    # Alpha is the base's everywhere.
    np.testing.assert_array_equal(pixels[:, :, 3], base[10:50, 10:60, 3])
    # Where A's 200 beats B's 100, A's pixel; elsewhere in B, B's; outside both, the base.
    assert coverage[15 - 10, 32 - 10] == 200 and pixels[5, 22, 0] == 1000
    assert coverage[35 - 10, 50 - 10] == 100 and pixels[25, 40, 0] == 2000
    assert coverage[0, 49] == 0
    np.testing.assert_array_equal(pixels[0, 49], base[10, 59])
    # Composited through its mask, the document changes only under the mask.
    out = base.copy()
    composite(out, bounds, pixels, coverage)
    changed = np.any(out != base, axis=2)
    full_mask = Mask(bounds, coverage).to_full(Bounds(0, 0, 80, 60).extent)
    assert not changed[full_mask == 0].any()
    assert changed[full_mask > 0].mean() > 0.99
