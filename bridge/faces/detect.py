"""YuNet face detection: a model file in, faces with a box, five landmarks and a score out.

YuNet (OpenCV Zoo, MIT) runs through `cv2.FaceDetectorYN`, no torch needed. It
is trained on images of a few hundred pixels, so large images are detected on
a downscaled 8-bit copy and the coordinates mapped back: a 6000 px portrait
costs what a 1280 px one does, and never a full-size 8-bit copy is made.

Landmarks follow YuNet's order, named from the subject's point of view:
right eye, left eye, nose tip, right mouth corner, left mouth corner (so the
subject's right eye is usually the one on the image's left).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge.errors import InvalidParams, ModelError
from bridge.imaging.depth import to_uint8
from bridge.imaging.geometry import Bounds, Extent
from bridge.paths import user_path

YUNET_ID = "yunet"
YUNET_FILE = "face_detection_yunet_2023mar.onnx"  # as in bridge/models/registry.json
LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
# Long side of the copy the detector sees; faces smaller than ~1/60 of it are missed.
DEFAULT_DETECT_SIDE = 1280


@dataclass(frozen=True)
class Face:
    x: float
    y: float
    width: float
    height: float
    landmarks: tuple[tuple[float, float], ...]
    score: float

    @property
    def bounds(self) -> Bounds:
        """The box rounded outward to whole pixels."""
        return Bounds.from_corners(math.floor(self.x), math.floor(self.y),
                                   math.ceil(self.x + self.width), math.ceil(self.y + self.height))

    def point(self, name: str) -> np.ndarray:
        return np.array(self.landmarks[LANDMARK_NAMES.index(name)], np.float64)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.point("left_eye") - self.point("right_eye")))

    def shifted(self, dx: float, dy: float) -> Face:
        return Face(self.x + dx, self.y + dy, self.width, self.height,
                    tuple((px + dx, py + dy) for px, py in self.landmarks), self.score)

    def scaled(self, factor: float) -> Face:
        """The face in an image resized by `factor`: box edges scale, landmark pixel
        centres move as a resize moves them ((x + 0.5) * factor - 0.5)."""
        return Face(self.x * factor, self.y * factor, self.width * factor, self.height * factor,
                    tuple(((px + 0.5) * factor - 0.5, (py + 0.5) * factor - 0.5)
                          for px, py in self.landmarks), self.score)

    def to_json(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in (self.x, self.y, self.width, self.height)],
            "landmarks": {n: [round(px, 1), round(py, 1)]
                          for n, (px, py) in zip(LANDMARK_NAMES, self.landmarks, strict=True)},
            "score": round(self.score, 3),
        }


_local = threading.local()


def _detector(model: Path, size: tuple[int, int], min_score: float) -> Any:
    """One detector per thread and model file: creating one parses the ONNX graph."""
    cache: dict[str, Any] = getattr(_local, "detectors", None) or {}
    _local.detectors = cache
    key = str(model)
    det = cache.get(key)
    if det is None:
        # OpenCV 5 warns on every load that the new graph engine ignores targets: noise.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            det = cv2.FaceDetectorYN.create(key, "", size, min_score, 0.3, 5000)
        except cv2.error as e:
            raise ModelError(f"the face detector '{model.name}' could not be loaded: {e}",
                             model=YUNET_ID) from None
        finally:
            cv2.utils.logging.setLogLevel(level)
        cache[key] = det
    det.setInputSize(size)
    det.setScoreThreshold(min_score)
    return det


def detection_copy(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """An 8-bit BGR copy with its long side at most max_side, and the scale applied."""
    h, w = pixels.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    channels = pixels.shape[2]
    colour = pixels[:, :, : 3 if channels >= 3 else 1]
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # Resize in the source depth first: converting a huge image to 8-bit would copy it.
        small = cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
        if small.ndim == 2:
            small = small[:, :, None]
    else:
        small = colour
    small = to_uint8(small)
    if small.shape[2] == 1:
        bgr = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    else:
        bgr = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR)
    return bgr, scale


def detect_faces(pixels: np.ndarray, model: Path, *, min_score: float = 0.8,
                 max_side: int = DEFAULT_DETECT_SIDE) -> list[Face]:
    """Faces in an HxWxC image (any depth, grey or colour, alpha ignored), largest first."""
    bgr, scale = detection_copy(pixels, max_side)
    h, w = bgr.shape[:2]
    det = _detector(model, (w, h), min_score)
    _, found = det.detect(bgr)
    faces: list[Face] = []
    if found is None:
        return faces
    inv = 1.0 / scale
    extent = Extent(pixels.shape[1], pixels.shape[0])
    for row in found:
        x, y, fw, fh = (float(v) * inv for v in row[:4])
        marks = tuple((float(row[4 + 2 * i]) * inv, float(row[5 + 2 * i]) * inv) for i in range(5))
        face = Face(x, y, fw, fh, marks, float(row[14]))
        if not face.bounds.clamp(extent).is_empty:
            faces.append(face)
    faces.sort(key=lambda f: f.width * f.height, reverse=True)
    return faces


def resolve_detector(models: Any = None, override: str | None = None) -> Path:
    """The YuNet model file: an explicit path, else the model manager's "yunet".

    `models` is a ModelManager (or an OpContext, whose manager is used); None means
    the default manager. A missing model raises ModelMissing with the manager's hint.
    """
    if override:
        path = user_path(override, "detector")
        if not path.is_file():
            raise InvalidParams(f"the face detector model '{override}' does not exist",
                                param="detector")
        return path
    if models is not None and not hasattr(models, "require"):
        models = models.models  # an OpContext
    if models is None:
        from bridge.models.manager import default_manager

        models = default_manager()
    return Path(models.require(YUNET_ID))
