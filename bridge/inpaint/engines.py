"""Fill engines without a prompt: LaMa (through spandrel) and OpenCV.

Each takes float32 RGB in [0, 1] at its working size and a uint8 hole, and gives
back one float32 RGB fill. torch is imported inside, when a model is used.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge.errors import InvalidParams, ModelError
from bridge.imaging.depth import to_uint8
from bridge.inpaint.region import WorkingSize
from bridge.models.resident import KeyedCache, configured_budget, module_bytes
from bridge.ops.base import OpContext

# Peak activation bytes per working pixel, over-estimated (see memory.py).
LAMA_BYTES_PER_PIXEL = 6_000


@dataclass
class OpenCVInpainter:
    """Classical inpainting (Telea's fast marching or Navier-Stokes): no weights, 8-bit."""

    method: str = "telea"
    working: WorkingSize = field(default_factory=lambda: WorkingSize(1024, upscale=False))
    name: str = "opencv"

    def fill(self, rgb: np.ndarray, hole: np.ndarray, ctx: OpContext) -> list[np.ndarray]:
        flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[self.method]
        ctx.progress(0.1, f"opencv inpainting ({self.method})")
        # A radius in proportion to the image keeps strokes smooth on large holes.
        radius = max(3, round(0.01 * max(rgb.shape[:2])))
        out = cv2.inpaint(to_uint8(rgb), hole, radius, flag)
        ctx.progress(1.0, "filled")
        return [out.astype(np.float32) * np.float32(1.0 / 255.0)]


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips with a `constants.pkl` / `code/` inside; state dicts are not."""
    if path.suffix.lower() not in (".pt", ".pth", ".jit") or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def load_lama(path: Path) -> Any:
    """A LaMa model from a weights file (.pth, .ckpt, .safetensors), through spandrel.

    spandrel reads pickles with a restricted unpickler. TorchScript archives carry
    code, so, as everywhere in the bridge, they are opened only through the model
    manager, for registry models whose official checksum matched.
    """
    if is_torchscript(path):
        raise ModelError(
            f"refusing to open {path.name}: it is a TorchScript archive, which can run code; "
            "TorchScript models are opened only as registry models with their official "
            f"checksum (retouch-bridge models import {path.name} --as big-lama)", model=str(path))
    from spandrel import ModelLoader

    try:
        return ModelLoader().load_from_file(path)
    except Exception as e:  # spandrel raises plain errors for unknown or broken files
        raise ModelError(f"could not load {path.name} as an inpainting model: {e}") from e


def check_inpainting_model(model: Any, label: str) -> None:
    purpose = getattr(model, "purpose", None)
    if purpose is not None and purpose != "Inpainting":
        arch = getattr(getattr(model, "architecture", None), "id", "?")
        raise InvalidParams(f"model '{label}' is a {arch} {purpose.lower()} model, not an "
                            "inpainting model (remove needs LaMa)", param="model")


@dataclass
class LamaInpainter:
    """LaMa: large-mask inpainting with Fourier convolutions. Works at the crop's own size."""

    model: Any
    device: str = "cpu"
    working: WorkingSize = field(default_factory=lambda: WorkingSize(1024, upscale=False))
    name: str = "lama"

    def __post_init__(self) -> None:
        self.model = self.model.to(self.device)
        self.model.eval()

    def fill(self, rgb: np.ndarray, hole: np.ndarray, ctx: OpContext) -> list[np.ndarray]:
        import torch

        ctx.progress(0.05, "lama")
        image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
        mask = torch.from_numpy((hole > 0).astype(np.float32))[None, None]
        image, mask = image.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            out = self.model(image, mask)  # spandrel pads to the model's multiple itself
        ctx.check_cancelled()
        result = out[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        ctx.progress(1.0, "filled")
        return [np.ascontiguousarray(result, dtype=np.float32)]


# One LaMa at a time, in the process's resident-model registry (shared memory budget).
_loaded = KeyedCache("lama", configured_budget, one_at_a_time=True)


def cached_lama(path: Path, label: str, device: str) -> Any:
    """The LaMa model of a file on a device, kept loaded for the next job (one at a time)."""

    def build() -> Any:
        model = load_lama(path)  # in CPU memory
        check_inpainting_model(model, label)
        _loaded.make_room(module_bytes(model.model), device)
        return model.to(device).eval()

    return _loaded.load((str(path), path.stat().st_mtime, device), build, label=label,
                        device=device, measure=lambda model: module_bytes(model.model))
