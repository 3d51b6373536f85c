"""Face restoration models, and one face through them: crop, align, restore, warp back.

Models come from the model manager (`load(id)`) and are called through `LoadedModel`
(one forward at a time, finite-output check, out-of-memory handling) with a per
architecture call, because spandrel's descriptors do not cover what these need:

* GFPGAN works in [-1, 1] (the release's own inference normalises with mean and std
  0.5). spandrel's descriptor passes [0, 1] and clamps the output to [0, 1], so the
  network is called directly. Its StyleGAN2 decoder *samples* noise in every layer on
  each forward (the release's default, `randomize_noise`): that noise is drawn from a
  torch generator seeded with `seed + face index` inside a forked RNG state, so a result
  depends on the seed only, and the process's own RNG is left alone.
* CodeFormer also works in [-1, 1]; its forward takes the fidelity weight `w` (0: the
  most restoration, 1: closest to the input; 0.5 is the release's default), which the
  descriptor cannot pass. Deterministic: codes are picked by top-1, nothing is sampled.
* RestoreFormer: spandrel's descriptor normalises by itself; deterministic (nearest
  codebook entries).
* Other face models a user imports: spandrel's plain [0, 1] contract.

Faces are worked on in float32 from the image's own values (16-bit faces are never
rounded to 8 bits) and only over each face's footprint; grey images go through the
RGB models as three equal channels and come back as their mean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bridge.errors import OutOfMemory
from bridge.faces.align import (
    FACE_SIZE,
    alignment,
    compose,
    footprint,
    invert,
    resize_map,
    translation,
    warp,
)
from bridge.faces.detect import Face
from bridge.faces.paste import PastedFace, warp_back
from bridge.imaging.depth import to_float
from bridge.imaging.geometry import Extent

# Architectures with a fidelity setting, and those that sample at inference.
FIDELITY_ARCHS = frozenset({"CodeFormer"})
SAMPLING_ARCHS = frozenset({"GFPGAN"})
DEFAULT_FIDELITY = 0.5
# A face restorer: (aligned face float32 512x512x3 in [0, 1], face index) -> same shape.
Restorer = Callable[[np.ndarray, int], np.ndarray]


@contextlib.contextmanager
def seeded(seed: int, device: Any) -> Iterator[None]:
    """Torch's default generators (CPU and the model's device) seeded, then restored."""
    import torch

    kinds = ("cuda", "mps")
    devices = [device.index or 0] if device.type in kinds else []
    device_type = device.type if device.type in kinds else "cuda"
    with torch.random.fork_rng(devices=devices, device_type=device_type):
        torch.manual_seed(seed)
        yield


class FaceModel:
    """A loaded face model as a Restorer, with its fidelity and seed."""

    def __init__(self, loaded: Any, fidelity: float | None = None, seed: int = 0) -> None:
        self.loaded = loaded
        self.architecture: str = loaded.architecture
        if self.architecture in FIDELITY_ARCHS:
            self.fidelity: float | None = DEFAULT_FIDELITY if fidelity is None else float(fidelity)
        else:
            self.fidelity = None
        self.seed = seed
        if loaded.input_channels != 3 or loaded.output_channels != 3:
            raise ValueError(f"model '{loaded.model_id}' is not an RGB face model")

    @property
    def samples(self) -> bool:
        return self.architecture in SAMPLING_ARCHS

    def _call(self, descriptor: Any, x: Any) -> Any:
        if self.architecture == "GFPGAN":
            out = descriptor.model(x * 2 - 1, return_rgb=False)[0]
        elif self.architecture == "CodeFormer":
            out = descriptor.model(x * 2 - 1, weight=self.fidelity)[0]
        else:
            return descriptor(x)
        return ((out + 1) / 2).clamp_(0, 1)

    def __call__(self, face: np.ndarray, index: int) -> np.ndarray:
        from bridge.imaging.tiling import TileTooLarge

        try:
            if self.samples:
                with seeded(self.seed + index, self.loaded.device):
                    return self.loaded(face, call=self._call)
            return self.loaded(face, call=self._call)
        except TileTooLarge:
            raise OutOfMemory(
                f"not enough {self.loaded.device.type.upper()} memory to restore a "
                f"{FACE_SIZE}px face with {self.loaded.model_id}; close other GPU "
                "applications or set RB_DEVICE=cpu") from None


def aligned_face(colour: np.ndarray, to_face: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """The face square (float32 size x size x 3 in [0, 1]) cut from HxWxC colour pixels.

    Only the face's footprint is converted to float. Outside the image the square is
    filled by reflection, which gives the model plausible surroundings.
    """
    h, w = colour.shape[:2]
    region = footprint(to_face, Extent(w, h), size)
    rows, cols = region.slices
    crop = to_float(colour[rows, cols])
    crop = np.clip(crop, 0.0, 1.0) if colour.dtype == np.float32 else crop
    if crop.shape[2] == 1:
        crop = np.repeat(crop, 3, axis=2)
    return warp(crop, compose(to_face, translation(region.x, region.y)), size, size)


def restore_face(colour: np.ndarray, face: Face, restorer: Restorer, index: int, *,
                 blend: float = 1.0, out_scale: int = 1,
                 out_extent: Extent | None = None) -> PastedFace | None:
    """One face of `colour` (HxWxC colour channels) restored and warped back.

    With `out_scale` > 1 the face is read from `colour` but placed in an image
    `out_scale` times larger (`out_extent`), as when the background was upscaled.
    """
    h, w = colour.shape[:2]
    to_face = alignment(np.array(face.landmarks))
    if footprint(to_face, Extent(w, h)).is_empty:
        return None  # the face square lies wholly outside the image
    restored = restorer(aligned_face(colour, to_face), index)
    if restored.shape != (FACE_SIZE, FACE_SIZE, 3):
        raise ValueError(f"the face model returned {restored.shape}, "
                         f"expected {(FACE_SIZE, FACE_SIZE, 3)}")
    if colour.shape[2] == 1:
        restored = restored.mean(axis=2, keepdims=True, dtype=np.float32)
    extent = out_extent or Extent(w * out_scale, h * out_scale)
    if out_scale != 1:
        to_face = compose(to_face, invert(resize_map(out_scale, out_scale)))
    region = footprint(to_face, extent)
    face_to_region = compose(translation(-region.x, -region.y), invert(to_face))
    return warp_back(restored, face_to_region, region, colour.dtype, blend)
