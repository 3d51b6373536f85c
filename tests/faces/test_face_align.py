"""Similarity alignment to the FFHQ 512 template and back, on synthetic faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bridge.faces.align import (
    TEMPLATE_512,
    alignment,
    apply,
    compose,
    footprint,
    invert,
    resize_map,
    scale_of,
    similarity,
    warp,
)
from bridge.faces.restore import aligned_face
from bridge.imaging.geometry import Bounds, Extent
from tests.faces.synthetic import dot_centres, dotted_face, similarity_matrix

RNG = np.random.default_rng(11)


# -- the transform ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_a_known_similarity_is_recovered_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = similarity_matrix(rng.uniform(0.05, 8), rng.uniform(-180, 180),
                              rng.uniform(-500, 500), rng.uniform(-500, 500))
    src = rng.uniform(0, 600, (5, 2))
    got = similarity(src, apply(truth, src))
    np.testing.assert_allclose(got, truth, atol=1e-8)
    np.testing.assert_allclose(compose(invert(got), got)[:, :2], np.eye(2), atol=1e-12)


def test_least_squares_is_optimal_and_never_mirrors() -> None:
    src = TEMPLATE_512 + RNG.normal(0, 4, TEMPLATE_512.shape)
    dst = apply(similarity_matrix(0.4, 12, 30, 40), TEMPLATE_512)
    best = similarity(src, dst)

    def error(m: np.ndarray) -> float:
        return float(((apply(m, src) - dst) ** 2).sum())

    # Any small change of the four parameters makes the fit worse.
    for i, j in [(0, 0), (0, 1), (0, 2), (1, 2)]:
        for step in (-1e-3, 1e-3):
            other = best.copy()
            other[i, j] += step * (100 if j == 2 else 1)
            if j < 2:  # keep it a similarity: a = d, b = -c
                other[1 - i, 1 - j] += step * (1 if i == j else -1)
            assert error(other) > error(best)
    # Mirrored points are fitted with a rotation (positive determinant), not a reflection.
    mirrored = dst * np.array([-1.0, 1.0])
    assert np.linalg.det(similarity(src, mirrored)[:, :2]) > 0
    with pytest.raises(ValueError):
        similarity(np.ones((5, 2)), dst)


def test_the_inverse_of_the_alignment_puts_the_template_on_the_landmarks() -> None:
    face_to_image = similarity_matrix(0.23, -17, 410.5, 233.25)
    landmarks = apply(face_to_image, TEMPLATE_512)
    to_face = alignment(landmarks)
    np.testing.assert_allclose(apply(invert(to_face), TEMPLATE_512), landmarks, atol=1e-9)
    assert scale_of(to_face) == pytest.approx(1 / 0.23)
    # Real landmarks are no exact similarity of the template: least squares spreads the
    # residual; YuNet's points on the astronaut land within 4% of the eye distance.
    real = np.array([[196.6, 117.9], [236.5, 112.8], [219.4, 136.6], [203.0, 155.6], [237.8, 151.6]])
    back = apply(invert(alignment(real)), TEMPLATE_512)
    eyes = np.linalg.norm(real[1] - real[0])
    assert np.linalg.norm(back - real, axis=1).max() < 0.1 * eyes


def test_resize_map_and_footprint() -> None:
    # A 10 px image resized to 20 px: pixel centre 0 lands on 0.5, 9 on 18.5.
    np.testing.assert_allclose(apply(resize_map(2, 2), [[0, 0], [9, 9]]), [[0.5, 0.5], [18.5, 18.5]])
    to_face = invert(similarity_matrix(0.25, 0, 100, 50))  # a 128 px square at (100, 50)
    # Corners 100..227.75: two pixels of filter margin, the last pixel included.
    assert footprint(to_face, Extent(1000, 1000)) == Bounds.from_corners(98, 48, 231, 181)
    assert footprint(to_face, Extent(150, 120)) == Bounds.from_corners(98, 48, 150, 120)


# -- images ------------------------------------------------------------------------------
@pytest.mark.parametrize(("scale", "degrees"), [(0.18, 23.0), (0.6, -8.0), (1.7, 4.0)])
def test_a_warped_synthetic_face_aligns_back_within_a_pixel(scale, degrees) -> None:
    face = dotted_face()
    face_to_image = similarity_matrix(scale, degrees, 0, 0)
    corners = apply(face_to_image, [[0, 0], [511, 0], [0, 511], [511, 511]])
    face_to_image[:, 2] = 40 - corners.min(axis=0)  # the face inside an image with margins
    size = np.ceil(apply(face_to_image, [[0, 0], [511, 0], [0, 511], [511, 511]]).max(axis=0)) + 40
    image = warp(face, face_to_image, int(size[0]), int(size[1]))
    landmarks = apply(face_to_image, TEMPLATE_512)
    # The dots sit where the similarity sent the landmarks...
    radius = 25 * scale + 3
    np.testing.assert_allclose(dot_centres(image, landmarks, radius), landmarks, atol=max(0.5, scale))
    # ...and aligning the image with those landmarks brings every dot home within a pixel.
    back = aligned_face((image * 65535).astype(np.uint16), alignment(landmarks))
    assert back.shape == (512, 512, 3) and back.dtype == np.float32
    assert np.abs(dot_centres(back, TEMPLATE_512, 25) - TEMPLATE_512).max() < 1.0


def test_shrinking_is_anti_aliased() -> None:
    # One-pixel stripes shrunk 4x must become flat grey, not a beat pattern.
    stripes = np.zeros((256, 256, 1), np.float32)
    stripes[:, ::2] = 1.0
    small = warp(stripes, similarity_matrix(0.25, 0, 0, 0), 64, 64)
    inner = small[8:-8, 8:-8, 0]
    assert abs(float(inner.mean()) - 0.5) < 0.02 and float(inner.std()) < 0.02
    # An enlargement stays in range despite bicubic overshoot.
    big = warp(stripes[:32, :32], similarity_matrix(4, 0, 0, 0), 128, 128)
    assert big.min() >= 0.0 and big.max() <= 1.0


def test_warp_handles_grey_and_many_channels() -> None:
    m = similarity_matrix(0.5, 30, 10, 5)
    grey = RNG.random((40, 50), np.float32)
    five = np.repeat(grey[:, :, None], 5, axis=2)
    one = warp(grey, m, 30, 20)
    many = warp(five, m, 30, 20)
    assert one.shape == (20, 30, 1) and many.shape == (20, 30, 5)
    for c in range(5):
        np.testing.assert_allclose(many[:, :, c], one[:, :, 0], atol=1e-6)
    mask = warp(np.ones((40, 50), np.float32), m, 60, 60, cv2.BORDER_CONSTANT)
    assert mask[-1, -1, 0] == 0.0  # outside the source: nothing, for masks
