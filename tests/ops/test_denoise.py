"""denoise with tiny, randomly initialised SCUNet and FBCNN of the real architectures,
through registry, manager, loader, tiling and operation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import Cancelled, InvalidParams, ModelMissing
from bridge.imaging.composite import paste_masked
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.imaging.tiling import tile_process
from bridge.models.manager import ModelManager
from bridge.ops import denoise
from bridge.ops.base import CancelToken, OpContext
from bridge.ops.registry import get_operation, prepare, run_operation
from tests.faces.support import new_manager
from tests.models import tiny_models as tm

RNG = np.random.default_rng(8)
ICC = b"icc bytes"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelManager:
    home = tmp_path_factory.mktemp("denoise-home")
    m = new_manager(home)
    m.import_file(tm.save(tm.scunet(), home / "scunet.pth"), as_id="scunet-real-psnr")
    m.import_file(tm.save(tm.fbcnn(nc=(8, 16, 32, 512)), home / "fbcnn.safetensors"),
                  as_id="fbcnn-color")
    m.import_file(tm.save(tm.compact(), home / "c.pth"), as_id="realesr-animevideov3")
    return m


def photo(h: int, w: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = [0.5 + 0.4 * np.sin(xx / 7 + c) * np.cos(yy / 5 - c) for c in range(channels)]
    values = np.clip(np.stack(base, axis=2) + RNG.normal(0, 0.05, (h, w, channels)), 0, 1)
    top = np.iinfo(dtype).max
    return np.rint(values * top).astype(dtype)


def run(models, image: Image, mask: Mask | None = None, progress=None, cancel=None, **params):
    ctx = OpContext(progress=progress, cancel=cancel, models=models)
    return run_operation("denoise", image, mask, params, ctx)


def full_frame(models, model_id: str, pixels: np.ndarray, call=None) -> np.ndarray:
    top = np.iinfo(pixels.dtype).max
    out = models.load(model_id)(pixels.astype(np.float32) / top, call=call)
    return np.rint(np.clip(out, 0, 1) * top).astype(pixels.dtype)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


# -- tiles -----------------------------------------------------------------------------
def test_tiles_start_on_the_models_lattice() -> None:
    # A "model" that depends on where a pixel sits in its own input, modulo 8 (as JPEG
    # blocks and stride-8 UNets do): tiled runs agree with the whole image only when
    # every tile starts on the lattice.
    def phase_model(tile: np.ndarray) -> np.ndarray:
        yy, xx = np.mgrid[0:tile.shape[0], 0:tile.shape[1]]
        return tile * (((yy % 8) * 8 + xx % 8) / 64.0)[:, :, None].astype(np.float32)

    src = RNG.random((70, 93, 1)).astype(np.float32)
    whole = phase_model(src.copy())
    aligned, _ = tile_process(src, phase_model, 1, tile=20, pad=5, blend=0, align=8)
    np.testing.assert_allclose(aligned, whole, atol=1e-6)
    unaligned, _ = tile_process(src, phase_model, 1, tile=20, pad=5, blend=0)
    assert np.abs(unaligned - whole).max() > 0.1


def test_fbcnn_tiled_equals_a_full_frame_forward(models) -> None:
    pixels = photo(61, 45)  # tiles of 24 do not divide it
    image = Image(pixels, icc=ICC, source_format="tiff")
    result = run(models, image, model="fbcnn-color", strength=0.3, tile=24)
    out = result.primary.image
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == pixels.shape
    assert (out.icc, out.source_format) == (ICC, "tiff")
    assert result.metadata["tiles"] == 6 and result.metadata["jpeg_quality"] == 70.0
    want = full_frame(models, "fbcnn-color", pixels, denoise._quality_call(0.3))
    assert max_diff(out.pixels, want) <= 1


def test_fbcnn_quality_is_estimated_once_for_the_whole_image(models) -> None:
    image = Image(photo(40, 56))
    blind = run(models, image, model="fbcnn-color", tile=24)
    assert blind.metadata["quality_estimated"] is True
    qf = denoise.estimate_quality(models.load("fbcnn-color"), image.pixels)
    assert blind.metadata["jpeg_quality"] == round(100 * (1 - qf), 1)
    # Every tile used that one estimate: the same as asking for it explicitly.
    explicit = run(models, image, model="fbcnn-color", strength=qf, tile=24)
    np.testing.assert_array_equal(blind.primary.image.pixels, explicit.primary.image.pixels)
    # And the quality input does change what FBCNN does.
    crop = image.pixels[:16, :16].astype(np.float32) / 255
    loaded = models.load("fbcnn-color")
    low, high = (loaded(crop, call=denoise._quality_call(q)) for q in (0.0, 1.0))
    assert np.abs(low - high).max() > 1e-3


def test_scunet_strength_blends_the_original_and_the_model(models) -> None:
    pixels = photo(40, 48)
    image = Image(pixels)
    full = run(models, image, model="scunet-real-psnr").primary.image.pixels
    assert max_diff(full, full_frame(models, "scunet-real-psnr", pixels)) <= 1
    half = run(models, image, model="scunet-real-psnr", strength=0.5).primary.image.pixels
    want = (pixels.astype(np.float64) + full) / 2
    assert np.abs(half - want).max() <= 1.0
    none = run(models, image, model="scunet-real-psnr", strength=0.0)
    np.testing.assert_array_equal(none.primary.image.pixels, pixels)
    assert none.metadata["strength"] == 0.0 and "jpeg_quality" not in none.metadata


# -- depth, alpha, grey, selection --------------------------------------------------------
def test_sixteen_bit_alpha_is_copied_and_grey_goes_through_the_rgb_model(models) -> None:
    rgba = np.dstack([photo(32, 40, dtype=np.uint16), RNG.integers(0, 65536, (32, 40), np.uint16)])
    out = run(models, Image(rgba), model="fbcnn-color", strength=0.5).primary.image.pixels
    assert out.dtype == np.uint16 and out.shape == rgba.shape
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])
    want = full_frame(models, "fbcnn-color", rgba[:, :, :3], denoise._quality_call(0.5))
    assert max_diff(out[:, :, :3], want) <= 256
    between = out[:, :, :3][(out[:, :, :3] > 0) & (out[:, :, :3] < 65535)]
    assert np.mean(between % 257 != 0) > 0.9  # computed from 16-bit values
    grey = photo(32, 40, 1)
    got = run(models, Image(grey), model="fbcnn-color", strength=0.5).primary.image.pixels
    assert got.shape == (32, 40, 1)
    rgb = full_frame(models, "fbcnn-color", np.repeat(grey, 3, axis=2), denoise._quality_call(0.5))
    assert max_diff(got[:, :, 0], rgb.mean(axis=2)) <= 1


def test_a_selection_is_denoised_alone_and_the_rest_is_untouched(models) -> None:
    pixels = photo(64, 80)
    image = Image(pixels)
    coverage = np.zeros((64, 80), np.uint8)
    coverage[20:40, 30:70] = 255
    coverage[25:35, 22:30] = 120
    mask = Mask.from_array(coverage)
    result = run(models, image, mask, model="fbcnn-color", strength=0.4)
    layer = result.primary
    assert layer.bounds == mask.bounds == Bounds.from_corners(22, 20, 70, 40)
    np.testing.assert_array_equal(layer.mask, mask.data)
    assert result.metadata["region"] == layer.bounds.as_list()
    # Inside, what the whole image would give there (the selection had its context).
    whole = run(models, image, model="fbcnn-color", strength=0.4).primary.image.pixels
    rows, cols = layer.bounds.slices
    inside = layer.mask == 255
    assert max_diff(layer.image.pixels[inside], whole[rows, cols][inside]) <= 1
    composite = pixels.copy()
    paste_masked(composite, layer.image.pixels, layer.bounds, Mask(layer.bounds, layer.mask))
    outside = coverage == 0
    np.testing.assert_array_equal(composite[outside], pixels[outside])
    empty = run(models, image, Mask(Bounds(0, 0, 4, 4), np.zeros((4, 4), np.uint8)),
                model="fbcnn-color")
    assert "empty" in empty.metadata["warnings"][0]
    np.testing.assert_array_equal(empty.primary.image.pixels, pixels)


# -- choosing models, errors ----------------------------------------------------------------
def test_auto_prefers_fbcnn_for_jpeg_sources(models) -> None:
    assert denoise.resolve_model({"model": "auto"}, models).id == "scunet-real-psnr"
    assert denoise.resolve_model({"model": "auto"}, models, "jpeg").id == "fbcnn-color"
    assert denoise.resolve_model({"model": "auto"}, models, "png").id == "scunet-real-psnr"


def test_models_are_checked_at_submission(models, tmp_path: Path) -> None:
    op = get_operation("denoise")
    image = Image(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InvalidParams, match=r"not a denoising model.*scunet-real-psnr"):
        prepare(op, image, None, {"model": "nope"}, models)
    with pytest.raises(InvalidParams, match="not a denoising model"):
        prepare(op, image, None, {"model": "realesr-animevideov3"}, models)
    with pytest.raises(ModelMissing) as missing:
        prepare(op, image, None, {"model": "scunet-real-gan"}, models)
    assert "models pull scunet-real-gan" in missing.value.details["hint"]
    empty = new_manager(tmp_path / "empty")
    with pytest.raises(ModelMissing, match="none is installed") as none:
        prepare(op, image, None, {}, empty)
    assert none.value.details["model"] == "scunet-real-psnr"
    described = op.describe()
    assert described["mask"] == "optional" and described["resizes"] is False
    assert described["params"]["properties"]["strength"]["anyOf"][0]["maximum"] == 1


def test_progress_per_tile_and_cancel_between_tiles(models) -> None:
    image = Image(photo(48, 48))
    seen: list[str] = []
    run(models, image, progress=lambda f, m: seen.append(m), model="fbcnn-color", strength=0.5,
        tile=16)
    assert [m for m in seen if m.startswith("tile ")] == [f"tile {i} of 9" for i in range(1, 10)]
    token = CancelToken()
    done: list[str] = []

    def cancel_at_two(fraction: float, message: str) -> None:
        done.append(message)
        if message == "tile 2 of 9":
            token.cancel()

    with pytest.raises(Cancelled):
        run(models, image, progress=cancel_at_two, cancel=token, model="fbcnn-color",
            strength=0.5, tile=16)
    assert "tile 3 of 9" not in done
