"""color-match on real photos (scikit-image) and constructed scenes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color, data

from bridge.errors import InvalidParams
from bridge.imaging.codecs import write_image
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops import color_match as cm
from bridge.ops.base import OpContext
from bridge.ops.registry import run_operation
from bridge.recipes.runner import flatten_result


def lab_of(pixels: np.ndarray) -> np.ndarray:
    """CIELAB by scikit-image: an independent implementation to check ours against."""
    return color.rgb2lab(pixels[:, :, :3].astype(np.float64) / np.iinfo(pixels.dtype).max)


@pytest.fixture
def coffee_ref(tmp_path):
    path = tmp_path / "coffee.png"
    write_image(Image(data.coffee()), path)
    return path


def test_lab_conversion_agrees_with_scikit_image_and_round_trips():
    rng = np.random.default_rng(3)
    rgb = rng.random((64, 64, 3), dtype=np.float32)
    ours = cm.linear_to_lab(cm.srgb_to_linear(rgb))
    np.testing.assert_allclose(ours, color.rgb2lab(rgb), atol=0.02)
    back = cm.linear_to_srgb(cm.lab_to_linear(ours))
    np.testing.assert_allclose(back, rgb, atol=1e-4)


def test_mean_std_transfer_moves_the_photo_to_the_reference_look(coffee_ref):
    src = data.astronaut()
    result = run_operation("color-match", Image(src), None, {"reference": str(coffee_ref)})
    out = result.primary.image.pixels
    ref_mean = lab_of(data.coffee()).reshape(-1, 3).mean(0)
    before = np.linalg.norm(lab_of(src).reshape(-1, 3).mean(0) - ref_mean)
    after = np.linalg.norm(lab_of(out).reshape(-1, 3).mean(0) - ref_mean)
    assert before > 15 and after < 4, (before, after)
    assert result.metadata["transfer"]["method"] == "mean-std"
    assert out.dtype == np.uint8 and out.shape == src.shape


def test_histogram_matching_matches_the_lightness_distribution(coffee_ref):
    src = data.astronaut()
    out = run_operation("color-match", Image(src), None,
                        {"reference": str(coffee_ref), "method": "histogram"}).primary.image.pixels
    # (Below the 20th percentile the astronaut is mostly one value, pure black: those
    # pixels cannot be spread and map to the reference's average over that span.)
    q = [25, 50, 75, 90]
    ref_q = np.percentile(lab_of(data.coffee())[..., 0], q)
    src_q = np.percentile(lab_of(src)[..., 0], q)
    out_q = np.percentile(lab_of(out)[..., 0], q)
    assert np.abs(out_q - ref_q).max() < 1.0
    assert np.abs(src_q - ref_q).max() > 8


def test_color_only_transfer_keeps_lightness(coffee_ref):
    src = data.astronaut()
    out = run_operation("color-match", Image(src), None,
                        {"reference": str(coffee_ref), "channels": "color"}).primary.image.pixels
    l_in, l_out = lab_of(src)[..., 0], lab_of(out)[..., 0]
    assert np.median(np.abs(l_in - l_out)) < 0.6
    assert np.abs(lab_of(out)[..., 1:].mean((0, 1)) - lab_of(src)[..., 1:].mean((0, 1))).max() > 5


def cast_scene(gains: tuple[float, float, float], seed: int = 0) -> np.ndarray:
    """Neutral greys of many levels (a grey world) seen under a coloured light, 8-bit."""
    rng = np.random.default_rng(seed)
    grey = rng.uniform(0.05, 0.6, (48, 64, 1)).astype(np.float32)
    lin = np.repeat(grey, 3, axis=2) * np.asarray(gains, np.float32)
    return np.rint(cm.linear_to_srgb(lin) * 255).astype(np.uint8)


def test_grey_world_removes_a_colour_cast():
    src = cast_scene((1.25, 1.0, 0.7))
    out = run_operation("color-match", Image(src), None,
                        {"white_balance": "grey-world"}).primary.image.pixels
    before, after = lab_of(src)[..., 1:].mean((0, 1)), lab_of(out)[..., 1:].mean((0, 1))
    assert np.abs(before).max() > 8
    assert np.abs(after).max() < 1.0


def test_white_patch_makes_the_brightest_area_neutral():
    src = cast_scene((1.0, 0.95, 0.75), seed=1)
    white = cm.linear_to_srgb(np.array([0.9, 0.855, 0.675], np.float32))
    src[:10, :10] = np.rint(white * 255).astype(np.uint8)
    out = run_operation("color-match", Image(src), None,
                        {"white_balance": "white-patch"}).primary.image.pixels
    patch = out[:10, :10].reshape(-1, 3).astype(int)
    assert np.ptp(patch.mean(0)) <= 2, patch.mean(0)
    assert np.ptp(src[:10, :10].reshape(-1, 3).mean(0)) > 20


def test_exposure_auto_brings_the_median_lightness_to_the_target():
    src = data.astronaut()
    darker = np.rint(cm.linear_to_srgb(cm.to_linear(src) * 0.35) * 255).astype(np.uint8)
    result = run_operation("color-match", Image(darker), None,
                           {"exposure": "auto", "target_lightness": 45.0})
    out = result.primary.image.pixels
    assert abs(np.median(lab_of(out)[..., 0]) - 45.0) < 1.5
    assert np.median(lab_of(darker)[..., 0]) < 35
    assert result.metadata["exposure"]["stops"] > 0.5


def test_clipping_is_reported_not_hidden():
    src = data.astronaut()
    ctx = OpContext()
    result = run_operation("color-match", Image(src), None,
                           {"exposure": "auto", "target_lightness": 92.0}, ctx)
    out = result.primary.image.pixels
    share = result.metadata["clipped_share"]
    at_top = (out == 255).any(-1).mean()
    assert share > 0.05
    # Every clipped pixel ends at the top (brightening only); some were there already.
    assert at_top >= share - 1e-6
    assert any("clipped" in w for w in result.metadata["warnings"])
    calm = run_operation("color-match", Image(src), None, {"white_balance": "grey-world",
                                                            "strength": 0.0})
    assert calm.metadata["clipped_share"] == 0.0
    np.testing.assert_array_equal(calm.primary.image.pixels, src)


def test_sixteen_bit_stays_sixteen_bit_and_agrees_with_eight_bit(coffee_ref):
    src8 = data.astronaut()
    src16 = src8.astype(np.uint16) * 257
    params = {"reference": str(coffee_ref), "white_balance": "grey-world"}
    out8 = run_operation("color-match", Image(src8), None, params).primary.image.pixels
    out16 = run_operation("color-match", Image(src16), None, params).primary.image.pixels
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257.0 - out8).max() <= 1.0
    # Real 16-bit precision, not 8-bit values scaled up.
    assert np.count_nonzero(out16 % 257) > out16.size // 2


def test_strips_leave_no_seams(monkeypatch, coffee_ref):
    src = Image(data.astronaut()[:300])
    params = {"reference": str(coffee_ref), "method": "histogram", "exposure": "auto"}
    whole = run_operation("color-match", src, None, params).primary.image.pixels
    monkeypatch.setattr(cm, "STRIP_VALUES", 512 * 3 * 7)  # 7 rows a strip
    strips = run_operation("color-match", src, None, params).primary.image.pixels
    np.testing.assert_array_equal(whole, strips)


def test_alpha_is_kept_and_transparent_pixels_do_not_count(coffee_ref):
    rgb = data.astronaut()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[100:400, 100:400] = 255
    rgba = np.dstack([rgb, alpha])
    out = run_operation("color-match", Image(rgba), None,
                        {"reference": str(coffee_ref)}).primary.image.pixels
    np.testing.assert_array_equal(out[:, :, 3], alpha)
    inside = run_operation("color-match", Image(np.ascontiguousarray(rgb[100:400, 100:400])),
                           None, {"reference": str(coffee_ref)}).primary.image.pixels
    assert np.abs(out[100:400, 100:400, :3].astype(int) - inside).max() <= 1


def test_a_selection_gives_a_masked_layer_and_leaves_the_rest_alone(coffee_ref):
    src = Image(data.astronaut())
    cover = np.zeros((512, 512), np.uint8)
    cover[50:200, 150:300] = 255
    cover[50:60, 150:300] = 128
    mask = Mask.from_array(cover)
    result = run_operation("color-match", src, mask, {"reference": str(coffee_ref)})
    layer = result.primary
    assert layer.bounds == mask.bounds and np.array_equal(layer.mask, mask.data)
    flat = flatten_result(src, result).pixels
    np.testing.assert_array_equal(flat[cover == 0], src.pixels[cover == 0])
    assert np.abs(flat[cover == 255].astype(int) - src.pixels[cover == 255]).mean() > 5


def test_float_images_are_not_clipped():
    src = np.full((8, 8, 3), 0.5, np.float32)
    out = run_operation("color-match", Image(src), None,
                        {"exposure": "auto", "target_lightness": 95.0})
    assert out.primary.image.pixels.dtype == np.float32
    assert out.primary.image.pixels.max() > 0.9


def test_missing_reference_is_a_clear_parameter_error(tmp_path):
    params = cm.OPERATION.params.validate({"reference": str(tmp_path / "nope.jpg")})
    with pytest.raises(InvalidParams) as e:
        cm.check(params, None)
    assert e.value.details["param"] == "reference"
    with pytest.raises(InvalidParams):
        run_operation("color-match", Image(data.astronaut()), None, params)


def test_nothing_to_do_says_so():
    result = run_operation("color-match", Image(data.astronaut()), None, {})
    assert any("nothing to do" in w for w in result.metadata["warnings"])
