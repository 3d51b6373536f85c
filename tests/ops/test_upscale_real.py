"""Upscale with the real weights in ../shared/models (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from bridge.config import load_settings
from bridge.imaging.image import Image
from bridge.models.manager import ModelManager
from bridge.ops.base import OpContext
from bridge.ops.registry import run_operation
from bridge.ops.upscale import resample


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def sharpness(pixels: np.ndarray) -> float:
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture
def models(shared_models: Path) -> ModelManager:
    return ModelManager(load_settings())


def test_animevideov3_upscales_a_real_photo_x4(models, shared_models, shared_samples) -> None:
    models.import_file(shared_models / "realesr-animevideov3.pth")  # recognised by name
    pixels = np.asarray(PILImage.open(shared_samples / "hopper.jpg").convert("RGB"))
    image = Image(pixels, source_format="jpeg")
    result = run_operation("upscale", image, None, {"scale": 4, "tile": 48},
                           OpContext(models=models))
    out = result.primary.image.pixels
    assert result.metadata["model"] == "realesr-animevideov3"  # chosen by "auto"
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    assert result.metadata["tiles"] == 9
    # Faithful: brought back to the input size, it is the input.
    back = cv2.resize(out, (128, 128), interpolation=cv2.INTER_AREA)
    assert psnr(back, pixels) > 27
    # And it adds definition Lanczos cannot.
    lanczos = resample(pixels, 512, 512)
    assert sharpness(out) > 1.5 * sharpness(lanczos)


def test_realesrgan_x4plus_loads_and_upscales_a_crop(models, shared_models) -> None:
    from skimage import data

    models.import_file(shared_models / "RealESRGAN_x4plus.pth", as_id="RealESRGAN_x4plus")
    assert models.state("RealESRGAN_x4plus")["official"] is False  # converted file
    crop = np.ascontiguousarray(data.astronaut()[60:92, 170:202])
    result = run_operation("upscale", Image(crop), None,
                           {"model": "RealESRGAN_x4plus", "scale": 4},
                           OpContext(models=models))
    out = result.primary.image.pixels
    assert out.shape == (128, 128, 3)
    assert result.metadata["precision"] == "float32" and result.metadata["device"] == "cpu"
    back = cv2.resize(out, (32, 32), interpolation=cv2.INTER_AREA)
    assert psnr(back, crop) > 24
