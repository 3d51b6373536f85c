"""remove: LaMa through spandrel (the real architecture, random weights), by path and through
the model manager, and the OpenCV fallback that says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import InvalidParams, ModelError, ModelMissing
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.registry import run_operation
from tests.inpaint.support import (
    assert_exact_outside_the_feather,
    block_network,
    cached_model,
    composite,
    coverage_of,
)
from tests.inpaint.tiny import photo_like, write_tiny_lama


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    yield from block_network(monkeypatch)


@pytest.fixture(scope="module")
def lama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # spandrel's LaMa has no size knobs: this is the full 51M-parameter network (100 MB in
    # fp16). It runs in well under a second at the 128-pixel budget the tests use.
    return cached_model(tmp_path_factory, "lama.safetensors", write_tiny_lama)


@pytest.mark.parametrize("depth", [8, 16])
def test_lama_on_a_large_document_exact_outside(lama: Path, depth: int, no_network: list) -> None:
    pixels = photo_like(3000, 4000, depth=depth)
    sel = Mask.rectangle(Bounds(1800, 1400, 300, 200))
    result = run_operation("remove", Image(pixels), sel, {"model": str(lama), "working_size": 128})
    assert result.metadata["engine"] == "lama" and "warnings" not in result.metadata
    layer = result.primary
    assert layer.name == "removed" and layer.image.pixels.dtype == pixels.dtype
    assert layer.bounds.contains(sel.bounds) and layer.bounds.width < 900
    shown = composite(pixels, layer)
    cover = coverage_of(layer, 3000, 4000)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])
    assert_exact_outside_the_feather(pixels, layer, sel.bounds, result.metadata["grow"])
    assert (shown[cover == 255] != pixels[cover == 255]).mean() > 0.5
    assert no_network == []


def test_without_lama_opencv_is_used_and_the_result_says_so(no_network: list) -> None:
    image = Image(photo_like(200, 300))
    result = run_operation("remove", image, Mask.rectangle(Bounds(100, 80, 50, 30)))
    meta = result.metadata
    assert meta["engine"] == "opencv"
    assert "big-lama" in meta["fallback_reason"]
    assert any("OpenCV" in w and "models pull big-lama" in w for w in meta["warnings"])
    assert no_network == []


def test_fallback_off_gives_a_model_missing_error_with_the_way_to_get_it() -> None:
    image = Image(photo_like(64, 64))
    with pytest.raises(ModelMissing) as caught:
        run_operation("remove", image, Mask.rectangle(Bounds(10, 10, 20, 20)), {"fallback": False})
    assert caught.value.status == 409
    assert caught.value.details["model"] == "big-lama"
    assert "models pull big-lama" in str(caught.value.details["hint"])


def test_a_named_file_that_is_missing_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as caught:
        run_operation("remove", Image(photo_like(64, 64)), Mask.rectangle(Bounds(10, 10, 20, 20)),
                      {"model": str(tmp_path / "big-lama.pt")})
    assert "not found" in caught.value.message


def test_a_model_that_is_not_for_inpainting_is_refused(shared_models: Path) -> None:
    with pytest.raises(InvalidParams) as caught:
        run_operation("remove", Image(photo_like(64, 64)), Mask.rectangle(Bounds(10, 10, 20, 20)),
                      {"model": str(shared_models / "realesr-animevideov3.pth")})
    assert "not an inpainting model" in caught.value.message


def test_torchscript_at_a_path_is_refused(tmp_path: Path) -> None:
    """TorchScript carries code: the bridge opens it only as a registry model with its official
    checksum (the model manager's rule), never from an arbitrary path."""
    import torch

    class GreyFill(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return image * (1 - mask) + mask * 0.5

    path = tmp_path / "grey-lama.pt"
    torch.jit.save(torch.jit.script(GreyFill()), str(path))
    with pytest.raises(ModelError) as caught:
        run_operation("remove", Image(photo_like(64, 64)), Mask.rectangle(Bounds(10, 10, 20, 20)),
                      {"model": str(path)})
    assert "TorchScript" in caught.value.message


def test_big_lama_through_the_model_manager(lama: Path, no_network: list) -> None:
    """Imported under the registry id, the default model is found, loaded and used."""
    from bridge.models.manager import default_manager

    default_manager().import_file(lama, as_id="big-lama")
    pixels = photo_like(300, 400, depth=16)
    result = run_operation("remove", Image(pixels), Mask.rectangle(Bounds(150, 100, 60, 40)),
                           {"working_size": 128})
    assert result.metadata["engine"] == "lama" and result.metadata["model"] == "big-lama"
    assert "warnings" not in result.metadata
    shown = composite(pixels, result.primary)
    cover = coverage_of(result.primary, 300, 400)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])
    with pytest.raises(InvalidParams):
        run_operation("remove", Image(pixels), Mask.rectangle(Bounds(150, 100, 60, 40)),
                      {"model": "u2net"})
    assert no_network == []


def test_the_memory_budget_setting_caps_lamas_working_size(
        lama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RB_MEMORY_BUDGET_MB binds remove as it binds fill: 1 MB plans the 256x256 floor, not
    the 1024 budget the request asks for; the job's own manager's settings are the source."""
    from bridge.config import load_settings
    from bridge.models.manager import ModelManager
    from bridge.ops.base import OpContext

    monkeypatch.setenv("RB_MEMORY_BUDGET_MB", "1")
    ctx = OpContext(models=ModelManager(load_settings()))
    monkeypatch.delenv("RB_MEMORY_BUDGET_MB")  # from the job's manager, not the environment
    pixels = photo_like(400, 500)
    result = run_operation("remove", Image(pixels), Mask.rectangle(Bounds(170, 130, 180, 150)),
                           {"model": str(lama), "working_size": 1024}, ctx)
    w, h = result.metadata["working_size"]
    assert result.metadata["engine"] == "lama" and w * h <= 256 * 256
    assert result.primary.bounds.extent.pixels > 256 * 256  # the crop alone would have been more


def test_out_of_memory_in_lama_retries_once_at_a_quarter_of_the_pixels(
        lama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from bridge.inpaint import engines, memory
    from bridge.ops.base import OpContext

    real_fill = engines.LamaInpainter.fill
    budgets: list[int] = []

    def short_of_memory_once(self, rgb, hole, ctx):
        budgets.append(self.working.budget)
        assert rgb.shape[0] * rgb.shape[1] <= self.working.budget
        if len(budgets) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_fill(self, rgb, hole, ctx)

    monkeypatch.setattr(engines.LamaInpainter, "fill", short_of_memory_once)
    monkeypatch.setattr(memory, "pixel_cap", lambda device, per_pixel, budget_mb=0: None)
    pixels = photo_like(200, 250)
    selection = Mask.rectangle(Bounds(90, 70, 60, 50))  # a small crop: both runs are cheap
    ctx = OpContext()
    result = run_operation("remove", Image(pixels), selection,
                           {"model": str(lama), "working_size": 1024}, ctx)
    assert budgets == [1024 * 1024, 1024 * 1024 // 4]
    assert result.metadata["engine"] == "lama"
    assert any("ran out of memory" in w for w in ctx.warnings)
    shown = composite(pixels, result.primary)
    cover = coverage_of(result.primary, 200, 250)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])

    budgets.clear()  # a model that keeps running out fails as out-of-memory, after one retry
    monkeypatch.setattr(engines.LamaInpainter, "fill", lambda self, rgb, hole, ctx: (
        budgets.append(self.working.budget),
        (_ for _ in ()).throw(torch.OutOfMemoryError("oom")))[1])
    with pytest.raises(torch.OutOfMemoryError):
        run_operation("remove", Image(pixels), selection, {"model": str(lama), "working_size": 512})
    assert budgets == [512 * 512, 256 * 256]
