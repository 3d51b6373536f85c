"""One face through crop, alignment, a restorer, the inverse warp and the paste.

The restorers here are plain functions of the aligned face (identity, a painted
template), so the geometry and the depth handling are checked exactly; the real model
architectures run through the same `restore_face` in tests/ops/test_restore_faces*.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.faces.align import TEMPLATE_512, apply
from bridge.faces.detect import Face
from bridge.faces.paste import composite, merge
from bridge.faces.restore import restore_face
from bridge.imaging.geometry import Extent
from bridge.imaging.mask import Mask
from tests.faces.synthetic import dot_centres, dotted_face, similarity_matrix

# YuNet's landmarks for skimage's astronaut (see test_face_detect.py).
ASTRONAUT = Face(178.0, 63.0, 90.0, 113.0, ((196.6, 117.9), (236.5, 112.8), (219.4, 136.6),
                                            (203.0, 155.6), (237.8, 151.6)), 0.93)


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def identity(face: np.ndarray, index: int) -> np.ndarray:
    return face


def painted(face: np.ndarray, index: int) -> np.ndarray:
    return dotted_face()


def face_at(m: np.ndarray) -> Face:
    marks = apply(m, TEMPLATE_512)
    x0, y0 = marks.min(axis=0) - 20
    x1, y1 = marks.max(axis=0) + 20
    return Face(float(x0), float(y0), float(x1 - x0), float(y1 - y0),
                tuple((float(x), float(y)) for x, y in marks), 0.99)


def pasted_result(pixels: np.ndarray, faces: list[Face], restorer, **kw) -> tuple[np.ndarray, Mask]:
    colour = pixels[:, :, :3] if pixels.shape[2] in (3, 4) else pixels[:, :, :1]
    done = [restore_face(colour, f, restorer, i, **kw) for i, f in enumerate(faces)]
    bounds, layer, coverage = merge(pixels, [d for d in done if d is not None])
    out = pixels.copy()
    composite(out, bounds, layer, coverage)
    return out, Mask(bounds, coverage)


def test_identity_restoration_gives_the_image_back_and_nothing_outside_changes() -> None:
    img = astronaut()
    out, mask = pasted_result(img, [ASTRONAUT], identity)
    full = mask.to_full(Extent(512, 512))
    np.testing.assert_array_equal(out[full == 0], img[full == 0])  # bit-identical outside
    # The face area went to 512 px and back: only the anti-aliasing blur of the way back
    # remains (a Gaussian of 0.3 px). The same face moved by one pixel differs 6x more.
    inside = full == 255
    diff = np.abs(out.astype(int) - img.astype(int))[inside]
    moved = np.abs(np.roll(img, 1, axis=1).astype(int) - img.astype(int))[inside]
    assert diff.mean() < 2 and np.percentile(diff, 99) < 10
    assert moved.mean() > 6 * diff.mean()
    # The whole face (its box) is covered, fully in the middle.
    box = ASTRONAUT.bounds
    assert full[box.slices].min() > 0 and full[box.y + 20:box.y1 - 20, box.x + 20:box.x1 - 20].min() == 255


@pytest.mark.parametrize(("scale", "degrees"), [(0.15, 30.0), (0.5, -12.0), (1.4, 3.0)])
def test_the_restored_template_lands_on_the_landmarks(scale, degrees) -> None:
    m = similarity_matrix(scale, degrees, 0, 0)
    corners = apply(m, [[0, 0], [511, 0], [0, 511], [511, 511]])
    m[:, 2] = 30 - corners.min(axis=0)
    side = int(np.ceil(apply(m, [[511, 511], [0, 511], [511, 0]]).max())) + 30
    face = face_at(m)
    black = np.zeros((side, side, 3), np.uint16)
    out, _ = pasted_result(black, [face], painted)
    got = dot_centres(out.astype(np.float32) / 65535, np.array(face.landmarks), 25 * scale + 3)
    np.testing.assert_allclose(got, np.array(face.landmarks), atol=max(0.6, 0.5 * scale))


def test_sixteen_bit_faces_are_restored_from_sixteen_bit_values() -> None:
    # Smooth 16-bit content: resampling is exact up to rounding there, so any detour
    # through 8 bits (errors of 64 units on average) would show.
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float64)
    img = np.stack([20000 + 30 * xx + 7 * yy, 40000 - 20 * yy + 5 * xx,
                    30000 + 3000 * np.sin(xx / 9)], axis=2).astype(np.uint16)
    out, mask = pasted_result(img, [ASTRONAUT], identity)
    assert out.dtype == np.uint16
    inside = mask.to_full(Extent(512, 512)) == 255
    diff = np.abs(out.astype(int) - img.astype(int))[inside]
    assert diff.mean() < 1 and diff.max() <= 4


def test_grey_with_alpha_keeps_its_alpha_and_one_colour_channel() -> None:
    from skimage.color import rgb2gray

    grey = (rgb2gray(astronaut()) * 255).round().astype(np.uint8)
    alpha = np.tile(np.arange(512, dtype=np.uint16)[None, :] // 2, (512, 1)).astype(np.uint8)
    img = np.dstack([grey, alpha])
    out, mask = pasted_result(img, [ASTRONAUT], identity)
    np.testing.assert_array_equal(out[:, :, 1], alpha)
    inside = mask.to_full(Extent(512, 512)) == 255
    assert np.abs(out[:, :, 0].astype(int) - grey.astype(int))[inside].mean() < 2


def test_faces_read_at_one_size_are_pasted_at_another() -> None:
    m = similarity_matrix(0.2, 10, 60, 40)
    face = face_at(m)
    small = np.zeros((200, 220, 3), np.uint8)
    colour = small
    done = restore_face(colour, face, painted, 0, out_scale=4)
    assert done is not None
    big = np.zeros((800, 880, 3), np.uint8)
    bounds, layer, coverage = merge(big, [done])
    composite(big, bounds, layer, coverage)
    want = (np.array(face.landmarks) + 0.5) * 4 - 0.5  # pixel centres in the 4x image
    got = dot_centres(big.astype(np.float32) / 255, want, 25 * 0.8 + 3)
    np.testing.assert_allclose(got, want, atol=1.0)


def test_each_face_gets_its_index_and_blend_scales_the_mask() -> None:
    img = astronaut()
    seen: list[int] = []

    def record(face: np.ndarray, index: int) -> np.ndarray:
        seen.append(index)
        return np.zeros_like(face)

    other = ASTRONAUT.shifted(250, 300)
    pasted = [restore_face(img, f, record, i, blend=0.5) for i, f in enumerate([ASTRONAUT, other])]
    assert seen == [0, 1]
    assert all(p is not None and p.coverage.max() == 128 for p in pasted)


def test_a_face_outside_the_image_is_skipped_without_running_the_restorer() -> None:
    calls: list[int] = []

    def record(face: np.ndarray, index: int) -> np.ndarray:
        calls.append(index)
        return face

    gone = ASTRONAUT.shifted(2000, 0)
    assert restore_face(astronaut(), gone, record, 0) is None and calls == []
    # Half outside: restored, and pasted only where the image is.
    edge = ASTRONAUT.shifted(-200, 0)
    done = restore_face(astronaut(), edge, record, 1)
    assert calls == [1] and done is not None and done.bounds.x == 0
