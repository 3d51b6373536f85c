"""standardize on generated product shots (known geometry) and a real photo on a backdrop."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from bridge.errors import InvalidInput, InvalidParams, ModelMissing
from bridge.imaging.image import Image
from bridge.ops import standardize as st
from bridge.ops.registry import run_operation
from tests.batch.products import object_box, photo_product, product_image
from tests.support.images import adobe_rgb_like_profile

SMALL = {"canvas_width": 200, "canvas_height": 200, "matte": "border-color"}


def standardize(pixels: np.ndarray, **params):
    return run_operation("standardize", Image(pixels), None, {**SMALL, **params})


def content_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_subject_is_cut_out_scaled_and_centred_with_the_margin():
    src = product_image()
    result = standardize(src, margin=10.0)
    out = result.primary.image.pixels
    assert out.shape == (200, 200, 3) and result.extent.width == 200
    assert result.metadata["matte"] == "border-color"
    # The backdrop is gone: every pixel far from the subject is exactly white.
    subject = np.abs(out.astype(int) - 255).max(-1) > 12
    x0, y0, x1, y1 = content_box(subject)
    assert (out[:, :x0 - 2] == 255).all() and (out[:, x1 + 2:] == 255).all()
    # The subject fills the height less 10 % each side, and sits centred.
    assert abs(y0 - 20) <= 1 and abs((200 - y1) - 20) <= 1
    assert abs(x0 - (200 - x1)) <= 2
    # The subject's box in the source is where the ellipse was drawn.
    ox0, oy0, ox1, _oy1 = object_box(240, 180)
    sx, sy, sw, _sh = result.metadata["subject"]
    assert abs(sx - ox0) <= 2 and abs(sy - oy0) <= 2 and abs(sx + sw - ox1) <= 2
    # The product keeps its colour; the enclosed label (backdrop-coloured) stays subject.
    centre = out[y0 + (y1 - y0) // 4, (x0 + x1) // 2].astype(int)
    assert np.abs(centre - (180, 40, 40)).max() <= 8
    label = out[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
    assert np.abs(label - (205, 215, 230)).max() <= 12


def test_no_backdrop_halo_on_the_new_background():
    src = product_image(backdrop=(40, 160, 60), colour=(200, 60, 200), label=False)
    out = standardize(src, margin=10.0, background="#ffffff").primary.image.pixels.astype(int)
    # Edge pixels are mixes of the product and the new white, never of the old green.
    subject = np.abs(out - 255).max(-1) > 3
    edge = subject & ~np.all([np.roll(subject, s, a) for s in (-1, 1) for a in (0, 1)], axis=0)
    greenness = out[..., 1] - (out[..., 0] + out[..., 2]) / 2
    assert greenness[edge].max() < 25, greenness[edge].max()


def test_transparent_background_and_shadow():
    src = product_image()
    clear = standardize(src, background="transparent").primary.image.pixels
    assert clear.shape[2] == 4
    assert (clear[:5, :5, 3] == 0).all() and (clear[-5:, -5:, 3] == 0).all()
    x0, y0, x1, y1 = content_box(clear[:, :, 3] > 250)
    assert clear[(y0 + y1) // 2, x0 + (x1 - x0) // 4, 3] == 255
    shadowed = standardize(src, background="transparent", shadow=True).primary.image.pixels
    below = slice(y1 + 1, min(200, y1 + 5)), slice((x0 + x1) // 2 - 3, (x0 + x1) // 2 + 3)
    assert clear[below][..., 3].max() == 0 and shadowed[below][..., 3].min() > 10
    white = standardize(src, shadow=True).primary.image.pixels
    assert white[below].max() < 250 and (white[:3, :3] == 255).all()


def test_bottom_alignment_no_upscale_and_fit_canvas():
    src = product_image()
    out = standardize(src, margin=5.0, align="bottom").primary.image.pixels
    subject = np.abs(out.astype(int) - 255).max(-1) > 12
    assert abs((200 - content_box(subject)[3]) - 10) <= 1
    big = standardize(src, canvas_width=1000, canvas_height=1000, upscale=False)
    assert big.metadata["scale"] == 1.0 and big.extent.width == 1000
    fit = standardize(src, canvas_width=0, canvas_height=0, margin=10.0)
    _sx, _sy, sw, sh = fit.metadata["subject"]
    assert fit.extent.width == round(sw / 0.8) and fit.extent.height == round(sh / 0.8)


def test_sixteen_bit_stays_sixteen_bit():
    src8 = product_image()
    out16 = standardize(src8.astype(np.uint16) * 257).primary.image.pixels
    out8 = standardize(src8).primary.image.pixels
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257.0 - out8).max() <= 2.0
    assert np.count_nonzero(out16 % 257) > 0


def test_existing_transparency_is_the_matte():
    rgba = np.zeros((100, 150, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[30:70, 50:80, 3] = 255
    result = run_operation("standardize", Image(rgba), None,
                           {"canvas_width": 100, "canvas_height": 100, "margin": 0.0})
    assert result.metadata["matte"] == "alpha"
    assert result.metadata["subject"] == [50, 30, 30, 40]
    out = result.primary.image.pixels
    assert (out[:, 13:86] == (10, 200, 30)).all() and (out[:, :10] == 255).all()


def test_real_photo_on_a_backdrop():
    src = photo_product()
    result = standardize(src, margin=8.0)
    sx, sy, sw, sh = result.metadata["subject"]
    assert abs(sx - 70) <= 4 and abs(sy - 60) <= 4 and abs(sw - 145) <= 6 and abs(sh - 97) <= 6


def test_to_srgb_converts_from_the_embedded_profile():
    icc = adobe_rgb_like_profile()
    src = Image(product_image(colour=(40, 200, 90)), icc=icc)
    plain = run_operation("standardize", src, None, SMALL).primary.image
    conv = run_operation("standardize", src, None, {**SMALL, "to_srgb": True}).primary.image
    assert plain.icc == icc and st.is_srgb(conv.icc)
    # Exactly what LittleCMS gives for the unconverted result.
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                        ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                        ImageCms.Intent.RELATIVE_COLORIMETRIC)
    expected = np.asarray(ImageCms.applyTransform(PILImage.fromarray(plain.pixels), transform))
    np.testing.assert_array_equal(conv.pixels, expected)
    assert np.abs(conv.pixels.astype(int) - plain.pixels).max() > 10
    src16 = Image(src.pixels.astype(np.uint16) * 257, icc=icc)
    conv16 = run_operation("standardize", src16, None, {**SMALL, "to_srgb": True}).primary.image
    assert conv16.pixels.dtype == np.uint16 and st.is_srgb(conv16.icc)
    assert np.median(np.abs(conv16.pixels / 257.0 - conv.pixels)) <= 1.0


def test_sixteen_bit_icc_conversion_is_exact_at_8_bit_values_and_interpolates_between():
    icc = adobe_rgb_like_profile()
    rng = np.random.default_rng(5)
    c8 = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    exact = st.to_srgb(c8, icc)
    np.testing.assert_array_equal(st.to_srgb(c8.astype(np.uint16) * 257, icc),
                                  exact.astype(np.uint16) * 257)
    # Half way to the next 8-bit value in every channel: between the 8 neighbours' results.
    corners = np.stack([st.to_srgb(c8 + np.array(d, np.uint8), icc).astype(float) * 257
                        for d in np.ndindex(2, 2, 2)])
    mid = st.to_srgb(c8.astype(np.uint16) * 257 + 128, icc).astype(float)
    assert (mid >= corners.min(0) - 1).all() and (mid <= corners.max(0) + 1).all()


def test_nothing_but_backdrop_is_a_clear_error():
    flat = np.full((60, 80, 3), 200, np.uint8)
    with pytest.raises(InvalidInput, match="no subject"):
        standardize(flat)


def test_parameter_checks_before_work():
    params = st.OPERATION.params.validate({"background": "transparent", "format": "jpeg"})
    with pytest.raises(InvalidParams):
        st.check(params, None)
    with pytest.raises(InvalidParams):
        st.check(st.OPERATION.params.validate({"canvas_width": 0}), None)
    with pytest.raises(InvalidParams):
        st.OPERATION.params.validate({"background": "white"})


@pytest.fixture(scope="module")
def tiny_matte_model(tmp_path_factory):
    from tests.inpaint.support import cached_model
    from tests.inpaint.tiny import write_u2net_like_onnx

    return cached_model(tmp_path_factory, "u2net-like.onnx", write_u2net_like_onnx)


def test_rembg_matte_through_the_remove_background_operation(tiny_matte_model):
    # The tiny u2net-like model mattes by brightness: a bright object on a dark ground.
    src = np.full((120, 160, 3), 12, np.uint8)
    src[30:90, 50:120] = 230
    params = {"matte": "rembg", "matte_model": str(tiny_matte_model), "margin": 0.0,
              "canvas_width": 140, "canvas_height": 120}
    st.check(st.OPERATION.params.validate(params), None)
    result = run_operation("standardize", Image(src), None, params)
    assert result.metadata["matte"] == "rembg"
    direct = run_operation("remove-background", Image(src), None,
                           {"model": str(tiny_matte_model)}).primary
    full = np.zeros((120, 160), np.uint8)
    full[direct.bounds.slices] = direct.mask
    x0, y0, x1, y1 = content_box(full > st.SUBJECT_ALPHA)
    assert result.metadata["subject"] == [x0, y0, x1 - x0, y1 - y0]
    out = result.primary.image.pixels
    assert out.shape == (120, 140, 3) and np.abs(out[60, 70].astype(int) - 230).max() <= 3


def test_a_missing_background_model_is_named_or_replaced(isolated_home):
    with pytest.raises(ModelMissing):
        st.check(st.OPERATION.params.validate({"matte": "rembg"}), None)
    auto = run_operation("standardize", Image(product_image()), None,
                         {"canvas_width": 100, "canvas_height": 100})
    assert auto.metadata["matte"] == "border-color"
    assert any("not installed" in w for w in auto.metadata["warnings"])
