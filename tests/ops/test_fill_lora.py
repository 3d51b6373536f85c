"""LoRA files merged into the tiny pipeline: PEFT and kohya formats, weights, exact restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.diffusion.lora import parse_lora
from bridge.errors import InvalidParams, ModelMissing
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.registry import run_operation
from tests.inpaint.support import cached_model
from tests.inpaint.tiny import build_sd15_inpaint, photo_like, write_kohya_lora, write_peft_lora

FAST = {"steps": 2, "working_size": 96, "seed": 5, "preview_every": 0, "color_match": False}


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)


def _pixels(model: Path, loras: list[str]) -> np.ndarray:
    image = Image(photo_like(120, 120))
    result = run_operation("fill", image, Mask.rectangle(Bounds(30, 30, 60, 60)),
                           {"model": str(model), "loras": loras, **FAST})
    return result.primary.image.pixels


def test_parse_lora_weights_and_windows_paths() -> None:
    assert parse_lora("styles/brand.safetensors") == ("styles/brand.safetensors", 1.0)
    assert parse_lora("styles/brand.safetensors:0.6") == ("styles/brand.safetensors", 0.6)
    assert parse_lora("brand-style:-0.5") == ("brand-style", -0.5)
    assert parse_lora("C:\\loras\\brand.safetensors") == ("C:\\loras\\brand.safetensors", 1.0)
    assert parse_lora("C:\\loras\\brand.safetensors:2") == ("C:\\loras\\brand.safetensors", 2.0)


def test_peft_lora_changes_the_fill_and_comes_out_exactly(sd15: Path, tmp_path: Path) -> None:
    lora = write_peft_lora(sd15, tmp_path / "brand.safetensors")
    base = _pixels(sd15, [])
    with_zero = _pixels(sd15, [f"{lora}:0"])
    with_lora = _pixels(sd15, [f"{lora}:1.0"])
    after = _pixels(sd15, [])
    assert np.array_equal(with_zero, base)       # weight 0 merges nothing
    assert not np.array_equal(with_lora, base)   # weight 1 changes the result
    assert np.array_equal(after, base)           # and the base weights are restored bit for bit


def test_kohya_lora_is_converted_and_merged(sd15: Path, tmp_path: Path) -> None:
    lora = write_kohya_lora(sd15, tmp_path / "kohya.safetensors")
    base = _pixels(sd15, [])
    image = Image(photo_like(120, 120))
    result = run_operation("fill", image, Mask.rectangle(Bounds(30, 30, 60, 60)),
                           {"model": str(sd15), "loras": [f"{lora}:0.8"], **FAST})
    assert result.metadata["loras"] == [{"name": str(lora), "weight": 0.8}]
    assert not np.array_equal(result.primary.image.pixels, base)
    assert "warnings" not in result.metadata  # every layer of the file matched


def test_a_lora_for_another_model_is_refused(sd15: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    foreign = tmp_path / "sdxl-only.safetensors"
    save_file({"unet.no_such_block.attn.to_q.lora_A.weight": torch.zeros(4, 8),
               "unet.no_such_block.attn.to_q.lora_B.weight": torch.zeros(8, 4)}, str(foreign))
    with pytest.raises(InvalidParams) as caught:
        _pixels(sd15, [str(foreign)])
    assert "matches no layer" in caught.value.message
    assert np.array_equal(_pixels(sd15, []), _pixels(sd15, []))


def test_a_missing_lora_file_is_named(sd15: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as caught:
        _pixels(sd15, [str(tmp_path / "gone.safetensors") + ":0.5"])
    assert "gone.safetensors" in caught.value.message
