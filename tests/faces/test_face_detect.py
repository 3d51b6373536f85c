"""YuNet with the real model in ../shared/models: real photos, depths, large images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from bridge.faces.detect import YUNET_FILE, detect_faces


@pytest.fixture
def yunet(shared_models: Path) -> Path:
    return shared_models / YUNET_FILE


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def test_one_face_in_hopper(yunet, shared_samples) -> None:
    pixels = np.asarray(PILImage.open(shared_samples / "hopper.jpg").convert("RGB"))
    faces = detect_faces(pixels, yunet)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    # The eyes are level-ish and the subject's right eye is on the image's left.
    right_eye, left_eye = face.point("right_eye"), face.point("left_eye")
    assert right_eye[0] < left_eye[0] and abs(right_eye[1] - left_eye[1]) < 5
    assert face.bounds.contains(face.bounds.intersect(face.bounds))
    for x, y in face.landmarks:
        assert face.x <= x <= face.x + face.width and face.y <= y <= face.y + face.height


def test_the_astronauts_face_and_none_in_coffee(yunet) -> None:
    from skimage import data

    faces = detect_faces(astronaut(), yunet)
    assert len(faces) == 1
    box = np.array([faces[0].x, faces[0].y, faces[0].width, faces[0].height])
    np.testing.assert_allclose(box, [178, 63, 90, 113], atol=4)
    assert detect_faces(data.coffee(), yunet) == []


def test_sixteen_bit_alpha_and_grey_find_the_same_face(yunet) -> None:
    rgb = astronaut()
    want = detect_faces(rgb, yunet)[0]
    alpha = np.full((*rgb.shape[:2], 1), 65535, np.uint16)
    rgba16 = np.concatenate([rgb.astype(np.uint16) * 257, alpha], axis=2)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    # The detector sees the same 8-bit copy of a 16-bit or float image: the same face.
    for pixels in (rgba16, rgb.astype(np.float32) / 255):
        assert detect_faces(pixels, yunet) == [want]
    # Grey is another picture to it, but the same face (eyes about 40 px apart).
    got = detect_faces(grey, yunet)
    assert len(got) == 1
    np.testing.assert_allclose(np.array(got[0].landmarks), np.array(want.landmarks), atol=4)


def test_large_images_are_detected_on_a_small_copy_and_mapped_back(yunet) -> None:
    rgb = astronaut()
    want = detect_faces(rgb, yunet)[0]
    big = cv2.resize(rgb, (2048, 2048), interpolation=cv2.INTER_CUBIC)  # 4x
    got = detect_faces(big, yunet, max_side=512)  # detected at the original's size
    assert len(got) == 1
    # Landmark pixel centres move as a resize moves them; the small copy is not quite the
    # original (cubic up, area down), so within one original pixel (4 here).
    np.testing.assert_allclose(np.array(got[0].landmarks), np.array(want.scaled(4).landmarks),
                               atol=4.0)
    np.testing.assert_allclose([got[0].x, got[0].y, got[0].width], [want.x * 4, want.y * 4,
                                                                     want.width * 4], atol=4.0)
