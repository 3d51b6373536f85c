"""remove: LaMa through spandrel (the real architecture, random weights), a TorchScript export,
and the OpenCV fallback that says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import InvalidParams, ModelMissing
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.registry import run_operation
from tests.inpaint.support import block_network, cached_model, composite, coverage_of
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


def _grey_fill_module():
    import torch

    class GreyFill(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            assert image.shape[-1] % 8 == 0 and image.shape[-2] % 8 == 0
            return image * (1 - mask) + mask * 0.5

    return torch.jit.script(GreyFill())


def test_torchscript_exports_load_and_fill(tmp_path: Path) -> None:
    """lama-cleaner's big-lama.pt is TorchScript; a scripted net with its (image, mask) interface
    goes through the same loading and running path (not the real big-lama weights)."""
    import torch

    path = tmp_path / "grey-lama.pt"
    torch.jit.save(_grey_fill_module(), str(path))
    pixels = photo_like(77, 101)
    result = run_operation("remove", Image(pixels), Mask.rectangle(Bounds(80, 50, 21, 27)),
                           {"model": str(path), "grow": 0, "feather": 0, "color_match": False})
    layer = result.primary
    assert result.metadata["engine"] == "lama"
    inside = layer.mask == 255
    assert (layer.image.pixels[inside] == 128).all()
    assert np.array_equal(layer.image.pixels[~inside], pixels[layer.bounds.slices][~inside])


def test_raw_exports_get_input_padded_to_a_multiple_and_cropped_back() -> None:
    import torch

    from bridge.inpaint.engines import _run_padded

    image = torch.rand(1, 3, 29, 37)
    mask = torch.zeros(1, 1, 29, 37)
    mask[..., 5:9, 6:20] = 1
    out = _run_padded(_grey_fill_module(), image, mask, multiple=8)
    assert out.shape == image.shape
    assert torch.equal(out[mask.expand_as(out) == 0], image[mask.expand_as(image) == 0])
    assert torch.all(out[..., 5:9, 6:20] == 0.5)
