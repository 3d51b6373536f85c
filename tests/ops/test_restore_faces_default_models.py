"""restore-faces with GFPGAN (its default) and CodeFormer in the default suite.

Both are the real architectures, randomly initialised at the only size spandrel builds
(87M and 74M+ parameters, stored as fp16), so a forward costs seconds on a CPU: each
model is built and saved once per module, and every check hangs off a handful of
forwards on hopper (128 px). The full-size checks on more images stay in
test_restore_faces_models.py under RB_LONG_TESTS=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bridge.faces.detect import YUNET_FILE
from bridge.faces.restore import FaceModel
from bridge.imaging.composite import paste_masked
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.manager import ModelManager
from bridge.ops.base import OpContext
from bridge.ops.registry import run_operation
from tests.faces.support import hopper, new_manager, shared_or_skip
from tests.models import tiny_models as tm

ICC = b"not an sRGB profile"
OFFSET = 77  # 16-bit values that are no 8-bit value times 257


@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_or_skip()


@pytest.fixture(scope="module")
def models(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelManager:
    home = tmp_path_factory.mktemp("face-models")
    m = new_manager(home)
    m.import_file(shared / "models" / YUNET_FILE)
    m.import_file(tm.save(tm.gfpgan(), home / "GFPGANv1.4.pth"), as_id="GFPGANv1.4")
    m.import_file(tm.save(tm.codeformer(), home / "codeformer.safetensors"), as_id="CodeFormer")
    return m


@pytest.fixture(scope="module")
def image16(shared: Path) -> Image:
    return Image(hopper(shared).astype(np.uint16) * 257 + OFFSET, icc=ICC, source_format="tiff")


@contextmanager
def network_calls(models: ModelManager, model_id: str) -> Iterator[list[tuple[Any, Any]]]:
    """(input, first output) of every forward of the model's network, as it saw them."""
    calls: list[tuple[Any, Any]] = []
    net = models.load(model_id).descriptor.model

    def hook(_module: Any, args: tuple[Any, ...], _kwargs: dict[str, Any], out: Any) -> None:
        calls.append((args[0].detach().clone(), out[0].detach().clone()))

    handle = net.register_forward_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def run(models: ModelManager, image: Image, **params: Any):
    return run_operation("restore-faces", image, None, params, OpContext(models=models))


@pytest.fixture(scope="module")
def gfpgan_runs(models: ModelManager, image16: Image):
    """Two runs with the default model and seed, and what the network was fed."""
    with network_calls(models, "GFPGANv1.4") as calls:
        first = run(models, image16)
    torch.manual_seed(1234)  # the process's RNG must not matter: the noise has its own
    second = run(models, image16)
    return first, second, calls


@pytest.fixture(scope="module")
def codeformer_runs(models: ModelManager, image16: Image, gfpgan_runs):
    # (after GFPGAN: each model is loaded once, one at a time)
    with network_calls(models, "CodeFormer") as calls:
        low = run(models, image16, model="CodeFormer", fidelity=0.0)
    high = run(models, image16, model="CodeFormer", fidelity=1.0)
    return low, high, calls


def check_sixteen_bit_and_only_the_face_changed(image: Image, result) -> None:
    layer = result.primary
    out = layer.image
    assert out.pixels.dtype == np.uint16 and out.channels == 3
    assert (out.icc, out.source_format) == (ICC, "tiff")
    assert layer.mask is not None and layer.bounds.width < image.width
    composite = image.pixels.copy()
    paste_masked(composite, out.pixels, layer.bounds, Mask(layer.bounds, layer.mask))
    outside = Mask(layer.bounds, layer.mask).to_full(image.extent) == 0
    np.testing.assert_array_equal(composite[outside], image.pixels[outside])
    # Restored from the 16-bit values, not from 8-bit ones scaled back up.
    restored = out.pixels[layer.mask == 255]
    assert restored.size and np.mean(restored % 257 != OFFSET) > 0.9
    assert np.abs(restored.astype(int) - image.pixels[layer.bounds.slices][layer.mask == 255]
                  ).mean() > 1000


def test_gfpgan_is_the_default_and_keeps_sixteen_bits(gfpgan_runs, image16) -> None:
    first, _, _ = gfpgan_runs
    meta = first.metadata
    assert (meta["requested_model"], meta["model"], meta["architecture"]) == (
        "auto", "GFPGANv1.4", "GFPGAN")
    assert meta["sampled"] is True and meta["seed"] == 0 and meta["fidelity"] is None
    assert [f["restored"] for f in meta["faces"]] == [True]
    check_sixteen_bit_and_only_the_face_changed(image16, first)


def test_gfpgan_is_deterministic_for_a_seed(gfpgan_runs) -> None:
    first, second, _ = gfpgan_runs
    np.testing.assert_array_equal(second.primary.image.pixels, first.primary.image.pixels)
    np.testing.assert_array_equal(second.primary.mask, first.primary.mask)


def test_codeformer_fidelity_reaches_the_network(codeformer_runs, image16) -> None:
    low, high, _ = codeformer_runs
    assert (low.metadata["fidelity"], high.metadata["fidelity"]) == (0.0, 1.0)
    assert low.metadata["sampled"] is False and low.metadata["model"] == "CodeFormer"
    assert any("non-commercial" in w for w in low.metadata["warnings"])
    check_sixteen_bit_and_only_the_face_changed(image16, low)
    check_sixteen_bit_and_only_the_face_changed(image16, high)
    diff = np.abs(low.primary.image.pixels.astype(int) - high.primary.image.pixels.astype(int))
    assert diff[low.primary.mask == 255].mean() > 100


@pytest.mark.parametrize("runs", ["gfpgan_runs", "codeformer_runs"])
def test_the_network_is_fed_minus_one_to_one(runs, request) -> None:
    # Both work in [-1, 1]: fed spandrel's [0, 1], hopper's dark pixels would never
    # reach the negative half.
    *_, calls = request.getfixturevalue(runs)
    [(x, _)] = calls
    assert x.shape == (1, 3, 512, 512)
    assert x.min() < -0.5 and x.max() <= 1.0


@pytest.mark.parametrize("model_id", ["GFPGANv1.4", "CodeFormer"])
def test_a_flat_grey_face_keeps_its_value_range(models, model_id, gfpgan_runs) -> None:
    """Mid-grey goes in as 0 (not 0.5: no shift) and the output comes back as (y+1)/2,
    clamped only at the ends of [0, 1]."""
    face = np.full((512, 512, 3), 0.5, np.float32)
    with network_calls(models, model_id) as calls:
        ours = FaceModel(models.load(model_id), 0.5 if model_id == "CodeFormer" else None)(face, 0)
    [(x, raw)] = calls
    np.testing.assert_allclose(x.numpy(), 0.0, atol=1e-6)
    want = ((raw.float() + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert ours.shape == (512, 512, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, want, atol=1e-5)
    # The check has teeth: part of the output lies below 0 (it would be lost to a [0, 1]
    # clamp before the mapping) and the mapped values are not all clamped.
    assert (raw < 0).any() and 0.05 < ours.mean() < 0.95
