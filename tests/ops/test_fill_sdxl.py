"""fill with a tiny SDXL-style inpainting pipeline (two CLIP text encoders, size conditioning)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
from tests.inpaint.tiny import build_sdxl_inpaint, photo_like


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    yield from block_network(monkeypatch)


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sdxl-inpaint", build_sdxl_inpaint)


def test_sdxl_fill_on_a_16_bit_document(sdxl: Path, no_network: list) -> None:
    pixels = photo_like(900, 1200, depth=16, channels=4)
    sel = Mask.rectangle(Bounds(500, 400, 120, 90))
    result = run_operation("fill", Image(pixels), sel, {
        "model": str(sdxl), "prompt": "red sky", "negative_prompt": "the", "steps": 2,
        "working_size": 128, "seed": 3, "variations": 2, "scheduler": "euler_a"})
    assert result.metadata["family"] == "sdxl" and result.metadata["engine"] == "diffusers-sdxl"
    assert [la.name for la in result.layers] == ["variation-1", "variation-2"]
    for layer in result.layers:
        assert layer.image.pixels.dtype == np.uint16 and layer.bounds.contains(sel.bounds)
        shown = composite(pixels, layer)
        cover = coverage_of(layer, 900, 1200)
        assert np.array_equal(shown[cover == 0], pixels[cover == 0])
        assert_exact_outside_the_feather(pixels, layer, sel.bounds, result.metadata["grow"])
        assert np.array_equal(layer.image.pixels[:, :, 3], pixels[layer.bounds.slices][:, :, 3])
        assert (shown[cover == 255][:, :3] != pixels[cover == 255][:, :3]).mean() > 0.5
    assert no_network == []
