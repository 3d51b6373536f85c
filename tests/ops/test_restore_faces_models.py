"""restore-faces with randomly initialised GFPGAN and CodeFormer of the real size.

spandrel builds both with fixed hyper-parameters (512 px, 87M and 74M+ parameters), so
no tiny variant loads; a forward takes 15-40 s on a small CPU. These run with
RB_LONG_TESTS=1 (and YuNet from ../shared/models).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.imaging.composite import paste_masked
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.manager import ModelManager
from bridge.ops.base import OpContext
from bridge.ops.registry import run_operation
from tests.faces.support import hopper, new_manager, shared_or_skip
from tests.models import tiny_models as tm

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("RB_LONG_TESTS"),
                       reason="RB_LONG_TESTS=1: full-size GFPGAN and CodeFormer"),
]


@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_or_skip()


@pytest.fixture(scope="module")
def models(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelManager:
    home = tmp_path_factory.mktemp("big-faces")
    m = new_manager(home)
    m.import_file(shared / "models" / "face_detection_yunet_2023mar.onnx")
    m.import_file(tm.save(tm.gfpgan(), home / "GFPGANv1.4.pth"), as_id="GFPGANv1.4")
    m.import_file(tm.save(tm.codeformer(), home / "codeformer.safetensors"), as_id="CodeFormer")
    return m


def run(models: ModelManager, image: Image, **params):
    return run_operation("restore-faces", image, None, params, OpContext(models=models))


def check_only_the_face_changed(image: Image, result) -> None:
    layer = result.primary
    assert layer.image.pixels.dtype == image.pixels.dtype
    composite = image.pixels.copy()
    paste_masked(composite, layer.image.pixels, layer.bounds, Mask(layer.bounds, layer.mask))
    outside = Mask(layer.bounds, layer.mask).to_full(image.extent) == 0
    np.testing.assert_array_equal(composite[outside], image.pixels[outside])
    assert np.any(composite[~outside] != image.pixels[~outside])


def test_gfpgan_is_the_default_and_its_noise_follows_the_seed(models, shared) -> None:
    image = Image(hopper(shared))
    first = run(models, image)
    assert first.metadata["model"] == "GFPGANv1.4" and first.metadata["sampled"] is True
    check_only_the_face_changed(image, first)
    # (Loading drew from the process's RNG: spandrel initialises before loading weights.)
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    again = run(models, image, model="GFPGANv1.4")
    assert torch.equal(torch.random.get_rng_state(), before)  # the noise has its own RNG
    np.testing.assert_array_equal(again.primary.image.pixels, first.primary.image.pixels)
    other = run(models, image, seed=7)
    assert np.any(other.primary.image.pixels != first.primary.image.pixels)


def test_gfpgan_sixteen_bit(models, shared) -> None:
    pixels = hopper(shared).astype(np.uint16) * 257 + 77
    image = Image(pixels)
    result = run(models, image)
    check_only_the_face_changed(image, result)
    restored = result.primary.image.pixels[result.primary.mask == 255]
    assert np.mean(restored % 257 != 77) > 0.9


def test_codeformer_fidelity_reaches_the_network(models, shared) -> None:
    image = Image(hopper(shared))
    low = run(models, image, model="CodeFormer", fidelity=0.0)
    high = run(models, image, model="CodeFormer", fidelity=1.0)
    assert (low.metadata["fidelity"], high.metadata["fidelity"]) == (0.0, 1.0)
    assert low.metadata["sampled"] is False
    assert any("non-commercial" in w for w in low.metadata["warnings"])
    check_only_the_face_changed(image, low)
    assert np.abs(low.primary.image.pixels.astype(int)
                  - high.primary.image.pixels.astype(int)).max() > 0
    # Nothing is sampled: the same fidelity gives the same pixels whatever the seed.
    again = run(models, image, model="CodeFormer", fidelity=0.0, seed=99)
    np.testing.assert_array_equal(again.primary.image.pixels, low.primary.image.pixels)


def test_the_architectures_value_range_is_handled(models, shared) -> None:
    # GFPGAN and CodeFormer work in [-1, 1]: fed [0, 1] (spandrel's call) a mid-grey face
    # would come out different from what our adapter gives.
    from bridge.faces.restore import FaceModel

    face = np.full((512, 512, 3), 0.5, np.float32)
    for model_id in ("GFPGANv1.4", "CodeFormer"):
        loaded = models.load(model_id)
        ours = FaceModel(loaded)(face, 0)
        assert ours.shape == (512, 512, 3) and ours.min() >= 0 and ours.max() <= 1
        with torch.random.fork_rng():
            torch.manual_seed(0)
            x = torch.from_numpy(face.transpose(2, 0, 1))[None] * 2 - 1
            with torch.inference_mode():
                raw = loaded.descriptor.model(x, **({"return_rgb": False} if model_id.startswith("GFP")
                                                    else {"weight": 0.5}))[0]
        want = ((raw + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours, want, atol=1e-5)
