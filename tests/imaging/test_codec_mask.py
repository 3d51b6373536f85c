"""decode_mask: encoded or raw selections of exactly the image's size, as trimmed Masks."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.errors import InvalidInput
from bridge.imaging import codecs
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from tests.imaging.helpers import STORED_FROM_UPRIGHT, exif_blob, pil_bytes, png_header_only

EXT = Extent(64, 48)


def selection(dtype: type = np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    full = np.zeros((48, 64), dtype)
    full[10:20, 30:50] = top
    full[20, 30:50] = top // 2  # a soft edge
    return full


def test_grey_png_mask() -> None:
    m = codecs.decode_mask(pil_bytes(selection(), "PNG"), EXT)
    assert m.bounds == Bounds(30, 10, 20, 11)
    assert np.array_equal(m.to_full(EXT), selection())


def test_16_bit_png_mask_is_rounded_to_8_bit() -> None:
    data = codecs.encode(Image(selection(np.uint16)), "png")
    m = codecs.decode_mask(data, EXT)
    full = m.to_full(EXT)
    assert full[15, 40] == 255 and full[5, 5] == 0
    assert full[20, 40] == 127  # 32767 * 255 / 65535 = 127.498


def test_float_tiff_mask() -> None:
    data = codecs.encode(Image(selection().astype(np.float32) / 255), "tiff")
    assert np.array_equal(codecs.decode_mask(data, EXT).to_full(EXT), selection())


@pytest.mark.parametrize("depth", [8, 16])
def test_raw_mask(depth: int) -> None:
    dtype = np.uint8 if depth == 8 else np.uint16
    data = selection(dtype).astype("<u2" if depth == 16 else np.uint8).tobytes()
    m = codecs.decode_mask(data, EXT, raw={"width": 64, "height": 48, "depth": depth})
    full = m.to_full(EXT)
    assert full[15, 40] == 255 and full[20, 40] in (127, 128) and not full[30:].any()


def test_wrong_size_raw_mask_names_both_sizes() -> None:
    with pytest.raises(InvalidInput, match="the mask is 300x200 but the image is 4000x3000"):
        codecs.decode_mask(bytes(300 * 200), Extent(4000, 3000),
                           raw={"width": 300, "height": 200, "depth": 8})


def test_wrong_size_encoded_mask_is_refused_from_its_header() -> None:
    """The header alone decides: this PNG's pixel data is not even valid."""
    with pytest.raises(InvalidInput, match="the mask is 300x200 but the image is 4000x3000"):
        codecs.decode_mask(png_header_only(300, 200, 8, 0), Extent(4000, 3000))


def test_wrong_size_after_orientation_is_refused() -> None:
    data = pil_bytes(np.zeros((48, 64), np.uint8), "PNG", exif=exif_blob(6))
    with pytest.raises(InvalidInput, match="the mask is 48x64 but the image is 64x48"):
        codecs.decode_mask(data, EXT)


def test_mask_with_orientation_is_turned_like_its_image() -> None:
    upright = selection()
    data = pil_bytes(np.ascontiguousarray(STORED_FROM_UPRIGHT[6](upright)), "PNG",
                     exif=exif_blob(6))
    assert np.array_equal(codecs.decode_mask(data, EXT).to_full(EXT), upright)


@pytest.mark.parametrize("raw", [
    {"width": 64, "height": 48}, {"width": "64", "height": 48, "depth": 8},
    {"width": 64, "height": 48, "depth": 32},
    {"width": 64, "height": 48, "depth": 8, "channels": 3},
    {"width": -64, "height": 48, "depth": 8}, [64, 48, 8],
])
def test_bad_raw_mask_layouts(raw: object) -> None:
    with pytest.raises(InvalidInput):
        codecs.decode_mask(bytes(64 * 48), EXT, raw=raw)  # type: ignore[arg-type]


def test_raw_mask_with_the_wrong_length() -> None:
    with pytest.raises(InvalidInput, match="3,072 bytes"):
        codecs.decode_mask(bytes(100), EXT, raw={"width": 64, "height": 48, "depth": 8})


def test_all_zero_mask_is_empty() -> None:
    m = codecs.decode_mask(pil_bytes(np.zeros((48, 64), np.uint8), "PNG"), EXT)
    assert m.is_empty


def test_rgba_with_real_alpha_uses_the_alpha() -> None:
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere: the colour says nothing
    rgba[..., 3] = selection()
    m = codecs.decode_mask(pil_bytes(rgba, "PNG"), EXT)
    assert np.array_equal(m.to_full(EXT), selection())


def test_opaque_rgba_uses_the_colour() -> None:
    rgba = np.full((48, 64, 4), 255, np.uint8)
    rgba[..., :3] = selection()[..., None]
    assert np.array_equal(codecs.decode_mask(pil_bytes(rgba, "PNG"), EXT).to_full(EXT), selection())


def test_grey_alpha_with_real_alpha_uses_the_alpha() -> None:
    la = np.stack([np.full((48, 64), 200, np.uint8), selection()], axis=-1)
    assert np.array_equal(codecs.decode_mask(pil_bytes(la, "PNG", mode="LA"), EXT).to_full(EXT),
                          selection())


def test_colour_mask_becomes_luminance() -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:24, :, 0] = 255  # pure red half
    rgb[24:, :, 1] = 255  # pure green half
    full = codecs.decode_mask(pil_bytes(rgb, "PNG"), EXT).to_full(EXT)
    assert abs(int(full[0, 0]) - round(0.299 * 255)) <= 1
    assert abs(int(full[40, 0]) - round(0.587 * 255)) <= 1


def test_grey_jpeg_saved_as_rgb_is_exact_where_channels_agree() -> None:
    rgb = np.repeat(selection()[..., None], 3, axis=2)
    full = codecs.decode_mask(pil_bytes(rgb, "PNG"), EXT).to_full(EXT)
    assert np.array_equal(full, selection())
