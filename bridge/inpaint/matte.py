"""Alpha mattes from rembg sessions, with model files that come from us, never from rembg.

rembg's sessions fetch their weights themselves (pooch) when their file is not in
rembg's own folder. Here every session is a subclass whose `download_models`
returns the file our model manager (or the user) gave: the session's own pre- and
post-processing run unchanged, and no code path can reach a download.

The model sees a shrunk 8-bit copy (the networks work at 320 or 1024 pixels
anyway); the matte is scaled back to the region's size as 8-bit coverage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage

from bridge.errors import InvalidParams
from bridge.imaging.depth import to_uint8
from bridge.imaging.geometry import Extent
from bridge.models.resident import KeyedCache, configured_budget

# Registry ids of the background-removal models and the rembg session that knows
# each one's input size, normalisation and output squashing.
SESSIONS: dict[str, str] = {
    "u2net": "u2net",
    "u2netp": "u2netp",
    "u2net_human_seg": "u2net_human_seg",
    "silueta": "silueta",
    "isnet-general-use": "isnet-general-use",
    "birefnet-general": "birefnet-general",
    "birefnet-general-lite": "birefnet-general-lite",
    "birefnet-portrait": "birefnet-portrait",
    "birefnet-dis": "birefnet-dis",
    "birefnet-hrsod": "birefnet-hrsod",
    "birefnet-cod": "birefnet-cod",
    "birefnet-massive": "birefnet-massive",
}
# For a custom .onnx file: which family's pre/post-processing it expects.
PREPROCESS = {"u2net": "u2net", "isnet": "isnet-general-use", "birefnet": "birefnet-general"}
# Longest side of the copy the model is given.
MODEL_INPUT_SIDE = 1024


def session_kind_for_file(path: Path, preprocess: str) -> str:
    if preprocess != "auto":
        return PREPROCESS[preprocess]
    name = path.name.lower()
    if "birefnet" in name:
        return "birefnet-general"
    if "isnet" in name:
        return "isnet-general-use"
    return "u2net"


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def pinned_session(kind: str, model_file: Path, device: str = "cpu") -> Any:
    """A rembg session of `kind` that loads `model_file` and nothing else."""
    import onnxruntime as ort

    from bridge.inpaint.rembg_sessions import session_classes

    base = next((c for c in session_classes() if c.name() == kind), None)
    if base is None:
        raise InvalidParams(f"rembg has no session '{kind}'", param="model")
    path = str(model_file)

    class PinnedSession(base):  # type: ignore[misc, valid-type]
        @classmethod
        def download_models(cls, *args: Any, **kwargs: Any) -> str:
            return path

    options = ort.SessionOptions()
    return PinnedSession(kind, options, providers=_providers(device))


# One session at a time, in the process's resident-model registry (shared memory budget).
_sessions = KeyedCache("rembg", configured_budget, one_at_a_time=True)


def session_for(kind: str, model_file: Path, device: str) -> Any:
    """Cached: building an ONNX session for a large model takes seconds."""
    size = model_file.stat().st_size  # an ONNX session is about its model file's size

    def build() -> Any:
        _sessions.make_room(size, device)
        return pinned_session(kind, model_file, device)

    return _sessions.load((str(model_file), model_file.stat().st_mtime, kind, device), build,
                          label=f"{kind} ({model_file.name})", device=device,
                          measure=lambda session: size)


def model_input(pixels: np.ndarray, colour_channels: int, side: int = MODEL_INPUT_SIDE) -> PILImage.Image:
    """A shrunk 8-bit RGB copy of a region (any depth, alpha last, dropped), for the network.

    The region is shrunk with all its channels: slicing the colour off a view first
    would make OpenCV copy the whole region.
    """
    h, w = pixels.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = pixels
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        if small.ndim == 2:
            small = small[:, :, None]
    small = to_uint8(small[:, :, :colour_channels])
    if small.shape[2] == 1:
        small = np.repeat(small, 3, axis=2)
    return PILImage.fromarray(np.ascontiguousarray(small[:, :, :3]), "RGB")


def predict_matte(session: Any, pixels: np.ndarray, colour_channels: int, size: Extent) -> np.ndarray:
    """uint8 coverage (255 = subject) for a region's pixels, at `size`."""
    picture = model_input(pixels, colour_channels)
    masks = session.predict(picture)
    small = np.asarray(masks[0].convert("L"), dtype=np.uint8)
    if (small.shape[1], small.shape[0]) == (size.width, size.height):
        return np.array(small, copy=True)
    return cv2.resize(small, (size.width, size.height), interpolation=cv2.INTER_LINEAR)
