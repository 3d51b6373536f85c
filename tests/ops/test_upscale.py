"""The upscale operation with tiny real-architecture models, through registry and manager."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bridge.config import load_settings
from bridge.errors import Cancelled, InvalidParams, ModelMissing, OutOfMemory
from bridge.imaging.image import Image
from bridge.models.manager import ModelManager
from bridge.ops.base import CancelToken, OpContext
from bridge.ops.registry import get_operation, run_operation
from bridge.ops.upscale import choose_model, resample, resample_plane_into
from tests.models import tiny_models as tm

RNG = np.random.default_rng(3)
ICC, EXIF = b"fake icc profile bytes", b"Exif\0\0fake"


@pytest.fixture
def models(tmp_path: Path) -> ModelManager:
    m = ModelManager(load_settings())
    m.import_file(tm.save(tm.compact(num_conv=3, num_feat=12), tmp_path / "c.pth"),
                  as_id="realesr-animevideov3")
    return m


def upscale(models: ModelManager, image: Image, progress=None, cancel=None, **params):
    ctx = OpContext(progress=progress, cancel=cancel, models=models)
    return run_operation("upscale", image, None, params, ctx)


def photo(h: int, w: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """Smooth content plus noise, so models and resamplers have something to do."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = [0.5 + 0.4 * np.sin(xx / 7 + c) * np.cos(yy / 5 - c) for c in range(channels)]
    values = np.clip(np.stack(base, axis=2) + RNG.normal(0, 0.03, (h, w, channels)), 0, 1)
    top = np.iinfo(dtype).max
    return np.rint(values * top).astype(dtype)


def full_frame(models: ModelManager, model_id: str, pixels: np.ndarray) -> np.ndarray:
    top = np.iinfo(pixels.dtype).max
    out = models.load(model_id)(pixels.astype(np.float32) / top)
    return np.rint(np.clip(out, 0, 1) * top).astype(pixels.dtype)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


# -- Lanczos and auto ----------------------------------------------------------------------
def test_lanczos_still_works_without_any_model() -> None:
    image = Image(photo(20, 30), icc=ICC)
    result = run_operation("upscale", image, None, {"model": "lanczos", "scale": 2.5})
    assert result.primary.image.pixels.shape == (50, 75, 3)
    assert result.metadata["model"] == "lanczos" and result.extent.width == 75
    assert result.primary.image.icc == ICC


def test_auto_without_models_falls_back_to_lanczos_with_a_warning() -> None:
    image = Image(photo(10, 12))
    result = run_operation("upscale", image, None, {"scale": 2})
    assert result.metadata["model"] == "lanczos"
    assert "Lanczos was used" in result.metadata["warnings"][0]
    np.testing.assert_array_equal(result.primary.image.pixels, resample(image.pixels, 24, 20))


def test_auto_picks_the_installed_model_that_reaches_the_scale(models, tmp_path) -> None:
    assert choose_model(models, 4).id == "realesr-animevideov3"
    models.import_file(tm.save(tm.rrdb(scale=2), tmp_path / "x2.pth"), as_id="RealESRGAN_x2plus")
    assert choose_model(models, 2).id == "RealESRGAN_x2plus"
    assert choose_model(models, 1.5).id == "RealESRGAN_x2plus"
    assert choose_model(models, 3).id == "realesr-animevideov3"
    assert choose_model(models, 8).id == "realesr-animevideov3"  # largest, then resample
    models.import_file(tm.save(tm.rrdb(), tmp_path / "x4.pth"), as_id="RealESRGAN_x4plus")
    assert choose_model(models, 4).id == "RealESRGAN_x4plus"  # higher priority, same scale
    result = upscale(models, Image(photo(9, 11)), scale=2)
    assert result.metadata["model"] == "RealESRGAN_x2plus"


# -- the model path is the full-frame result -------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiled_model_output_equals_a_full_frame_forward(models, dtype) -> None:
    pixels = photo(45, 61, dtype=dtype)
    image = Image(pixels, icc=ICC, exif=EXIF, source_format="tiff")
    result = upscale(models, image, model="realesr-animevideov3", scale=4, tile=17)
    out = result.primary.image
    assert out.pixels.dtype == dtype and out.pixels.shape == (180, 244, 3)
    assert (out.icc, out.exif, out.source_format) == (ICC, EXIF, "tiff")
    assert result.metadata["tiles"] == 12 and result.metadata["model_scale"] == 4
    lsb = 1 if dtype == np.uint8 else 256
    assert max_diff(out.pixels, full_frame(models, "realesr-animevideov3", pixels)) <= lsb


def test_sixteen_bit_is_fed_to_the_model_without_8_bit_rounding(models) -> None:
    # A gentle 16-bit ramp spans only a few 8-bit levels.
    ramp = np.linspace(20000, 20600, 40, dtype=np.float64)
    pixels = np.repeat(np.repeat(ramp[None, :, None], 16, axis=0), 3, axis=2).astype(np.uint16)
    out = upscale(models, Image(pixels), model="realesr-animevideov3", scale=4).primary.image
    via_8_bit = full_frame(models, "realesr-animevideov3",
                           ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))
    assert out.pixels.dtype == np.uint16
    levels_16 = len(np.unique(out.pixels[:, :, 0]))
    assert levels_16 > 4 * len(np.unique(via_8_bit[:, :, 0]))
    assert max_diff(out.pixels, full_frame(models, "realesr-animevideov3", pixels)) <= 256


def test_alpha_is_resampled_and_reattached(models) -> None:
    rgb = photo(30, 26)
    alpha = np.zeros((30, 26), np.uint8)
    alpha[5:25, 8:20] = 255
    alpha[10:15, 2:8] = 128
    image = Image(np.dstack([rgb, alpha]), icc=ICC)
    out = upscale(models, image, model="realesr-animevideov3", scale=4, tile=11).primary.image
    assert out.pixels.shape == (120, 104, 4) and out.icc == ICC
    want_alpha = cv2.resize(alpha, (104, 120), interpolation=cv2.INTER_LANCZOS4)
    assert max_diff(out.pixels[:, :, 3], want_alpha) <= 1
    # Colour is exactly what the model gives for the colour alone.
    rgb_only = upscale(models, Image(rgb), model="realesr-animevideov3", scale=4, tile=11)
    np.testing.assert_array_equal(out.pixels[:, :, :3], rgb_only.primary.image.pixels)


def test_strip_resample_matches_one_resize() -> None:
    # Within 1 LSB: OpenCV computes each strip's source positions in float from the
    # strip's own origin, which rounds a few coefficients differently.
    for dtype in (np.uint8, np.uint16):
        plane = photo(600, 37, 1, dtype)[:, :, 0]
        dst = np.zeros((1800, 111, 2), dtype)
        resample_plane_into(plane, dst[:, :, 1], 3)
        whole = cv2.resize(plane, (111, 1800), interpolation=cv2.INTER_LANCZOS4)
        assert max_diff(dst[:, :, 1], whole) <= 1
        assert np.mean(dst[:, :, 1] != whole) < 0.05
        assert not dst[:, :, 0].any()


@pytest.mark.parametrize("channels", [1, 2])
def test_grey_images_go_through_an_rgb_model(models, channels) -> None:
    image = Image(photo(14, 18, channels))
    out = upscale(models, image, model="realesr-animevideov3", scale=4).primary.image
    assert out.pixels.shape == (56, 72, channels)
    grey = image.pixels[:, :, :1]
    rgb = full_frame(models, "realesr-animevideov3", np.repeat(grey, 3, axis=2))
    assert max_diff(out.pixels[:, :, 0], rgb.mean(axis=2)) <= 1


def test_other_scales_resample_the_models_output(models) -> None:
    pixels = photo(20, 24)
    x4 = full_frame(models, "realesr-animevideov3", pixels)
    for scale, size in ((3, (60, 72)), (6, (120, 144)), (1, (20, 24))):
        result = upscale(models, Image(pixels), model="realesr-animevideov3", scale=scale)
        out = result.primary.image.pixels
        assert out.shape[:2] == size and result.metadata["scale"] == scale
        want = resample(x4, size[1], size[0])
        assert max_diff(out, want) <= 1


def test_float_images_stay_float_and_hdr_is_clipped_with_a_warning(models) -> None:
    pixels = photo(12, 12).astype(np.float32) / 255
    pixels[0, 0, 0] = 3.0
    result = upscale(models, Image(pixels), model="realesr-animevideov3", scale=4)
    out = result.primary.image.pixels
    assert out.dtype == np.float32 and out.max() <= 1.0
    assert any("HDR" in w for w in result.metadata["warnings"])


def test_denoise_strength_uses_the_blended_model(models, tmp_path) -> None:
    models.import_file(tm.save(tm.compact(seed=5), tmp_path / "g.pth"),
                       as_id="realesr-general-x4v3")
    models.import_file(tm.save(tm.compact(seed=6), tmp_path / "w.pth"),
                       as_id="realesr-general-wdn-x4v3")
    image = Image(photo(16, 16))
    outs = {d: upscale(models, image, model="realesr-general-x4v3", scale=4,
                       denoise=d).primary.image.pixels for d in (0.0, 0.5, 1.0)}
    assert max_diff(outs[0.0], outs[1.0]) > 3
    blended = models.load("realesr-general-x4v3", denoise=0.5)
    want = np.rint(np.clip(blended(image.pixels.astype(np.float32) / 255), 0, 1) * 255)
    assert max_diff(outs[0.5], want.astype(np.uint8)) <= 1
    with pytest.raises(InvalidParams, match="no denoise strength"):
        upscale(models, image, model="realesr-animevideov3", denoise=0.5)


# -- errors, memory, progress ------------------------------------------------------------
def test_unknown_or_wrong_models_are_clear_errors(models, tmp_path) -> None:
    image = Image(photo(8, 8))
    with pytest.raises(InvalidParams, match=r"not a super-resolution model.*RealESRGAN_x4plus"):
        upscale(models, image, model="nope")
    models.import_file(tm.save(tm.scunet(), tmp_path / "s.pth"), as_id="scunet-real-psnr")
    with pytest.raises(InvalidParams, match="not a super-resolution model"):
        upscale(models, image, model="scunet-real-psnr")
    with pytest.raises(ModelMissing) as info:
        upscale(models, image, model="RealESRGAN_x4plus")
    assert "models pull RealESRGAN_x4plus" in info.value.details["hint"]
    with pytest.raises(InvalidParams):
        upscale(models, image, model="../../etc/passwd")


class OomAbove:
    """Stands in for a descriptor on a small GPU: inputs above a size do not fit."""

    def __init__(self, real, limit: int) -> None:
        self.real, self.limit, self.sizes = real, limit, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __call__(self, x):
        self.sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return self.real(x)


def test_out_of_memory_halves_the_tile_and_redoes_it(models) -> None:
    pixels = photo(64, 80)
    image = Image(pixels)
    want = upscale(models, image, model="realesr-animevideov3", scale=4, tile=64)
    loaded = models.load("realesr-animevideov3")
    loaded.descriptor = OomAbove(loaded.descriptor, limit=48)
    result = upscale(models, image, model="realesr-animevideov3", scale=4, tile=64)
    assert result.metadata["oom_retries"] >= 1
    assert max(loaded.descriptor.sizes) > 48 and loaded.descriptor.sizes[-1] <= 48
    assert max_diff(result.primary.image.pixels, want.primary.image.pixels) <= 1


def test_out_of_memory_at_the_smallest_tile_is_an_error(models) -> None:
    loaded = models.load("realesr-animevideov3")
    loaded.descriptor = OomAbove(loaded.descriptor, limit=4)
    with pytest.raises(OutOfMemory, match="not enough"):
        upscale(models, Image(photo(40, 40)), model="realesr-animevideov3", scale=4, tile=32)


def test_progress_per_tile_and_cancel_between_tiles(models) -> None:
    image = Image(photo(40, 40))
    seen: list[tuple[float, str]] = []
    upscale(models, image, progress=lambda f, m: seen.append((f, m)),
            model="realesr-animevideov3", scale=4, tile=10)
    tiles = [m for _, m in seen if m.startswith("tile ")]
    assert tiles == [f"tile {i} of 16" for i in range(1, 17)]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    token = CancelToken()
    done: list[str] = []

    def cancel_at_five(fraction: float, message: str) -> None:
        done.append(message)
        if message == "tile 5 of 16":
            token.cancel()

    with pytest.raises(Cancelled):
        upscale(models, image, progress=cancel_at_five, cancel=token,
                model="realesr-animevideov3", scale=4, tile=10)
    assert "tile 6 of 16" not in done


def test_automatic_tiles_respect_the_memory_budget(models, tmp_path) -> None:
    image = Image(photo(20, 20))
    roomy = upscale(models, image, model="realesr-animevideov3", scale=4)
    cap = 1024 if roomy.metadata["device"].startswith("cuda") else 512  # per-device caps
    assert roomy.metadata["tile"] == cap
    tight = ModelManager(load_settings(memory_budget_mb=40))
    tight.import_file(tm.save(tm.compact(num_conv=3, num_feat=12), tmp_path / "c.pth"),
                      as_id="realesr-animevideov3")
    small = upscale(tight, image, model="realesr-animevideov3", scale=4)
    assert small.metadata["tile"] == tight.load("realesr-animevideov3").auto_tile(40 << 20)
    assert 64 <= small.metadata["tile"] < cap


def test_schema_describes_the_parameters() -> None:
    schema = get_operation("upscale").describe()["params"]["properties"]
    assert schema["model"]["default"] == "auto"
    assert schema["tile"]["minimum"] == 0
    assert schema["denoise"]["anyOf"][0]["maximum"] == 1
