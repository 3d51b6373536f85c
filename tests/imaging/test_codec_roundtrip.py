"""Encode then decode: pixel-exact for PNG, TIFF, lossless WebP and raw; metadata byte-exact."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from bridge.errors import InvalidParams, UnsupportedFormat
from bridge.imaging import codecs
from bridge.imaging.image import Image
from tests.imaging.helpers import (
    exif_blob,
    pattern,
    pil_bytes,
    pil_exif_dict,
    srgb_icc,
    wide_gamut_icc,
)

ICC = wide_gamut_icc()
DTYPES = [np.uint8, np.uint16]
CHANNELS = [1, 2, 3, 4]


def test_the_test_profile_is_a_real_profile_and_not_srgb() -> None:
    assert srgb_icc() != ICC
    profile = ImageCms.ImageCmsProfile(io.BytesIO(ICC))  # lcms accepts it
    assert profile.profile.xcolor_space.strip() == "RGB"
    assert profile.profile.red_colorant != ImageCms.ImageCmsProfile(
        io.BytesIO(srgb_icc())).profile.red_colorant


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_lossless_round_trip_is_exact(fmt: str, dtype: type, channels: int) -> None:
    pixels = pattern(37, 53, channels, dtype, seed=channels)
    exif = exif_blob(1)
    out = codecs.decode(codecs.encode(Image(pixels, icc=ICC, exif=exif), fmt))
    assert out.pixels.dtype == pixels.dtype
    assert out.pixels.shape == pixels.shape
    assert np.array_equal(out.pixels, pixels)
    assert out.icc == ICC
    assert out.source_format == fmt
    assert pil_exif_dict(out.exif) == pil_exif_dict(exif)


def test_png_exif_bytes_are_identical() -> None:
    exif = exif_blob(1, endian=">")
    out = codecs.decode(codecs.encode(Image(pattern(4, 5, 3), exif=exif), "png"))
    assert out.exif == exif


def test_tiff_float_round_trip_is_exact() -> None:
    pixels = pattern(20, 30, 4, np.float32)
    pixels[0, 0, 0] = 3.5  # HDR values above 1 survive
    pixels[0, 1, 0] = -0.25
    out = codecs.decode(codecs.encode(Image(pixels, icc=ICC), "tiff"))
    assert out.pixels.dtype == np.float32
    assert np.array_equal(out.pixels, pixels)
    assert out.icc == ICC


def test_png_of_float_is_16_bit_rounded() -> None:
    pixels = np.array([[[0.0], [1.0], [0.5], [2.0], [-1.0]]], np.float32)
    out = codecs.decode(codecs.encode(Image(pixels), "png"))
    assert out.depth == 16
    assert out.pixels[0, :, 0].tolist() == [0, 65535, 32768, 65535, 0]


def test_png_is_read_by_pillow_with_its_profile_and_exif() -> None:
    """Our chunk surgery is valid PNG for an independent reader (CRCs, order)."""
    pixels = pattern(8, 9, 4)
    exif = exif_blob(1)
    data = codecs.encode(Image(pixels, icc=ICC, exif=exif), "png")
    with PILImage.open(io.BytesIO(data)) as im:
        im.load()  # verifies every CRC
        assert im.info["icc_profile"] == ICC
        assert np.array_equal(np.asarray(im), pixels)
        assert pil_exif_dict(im.getexif().tobytes()[6:]) == pil_exif_dict(exif)


def test_png_grey_alpha_is_read_by_pillow() -> None:
    """Grey+alpha goes through our own small PNG writer; Pillow must agree with it."""
    pixels = pattern(6, 7, 2, np.uint8)
    data = codecs.encode(Image(pixels, icc=ICC), "png")
    with PILImage.open(io.BytesIO(data)) as im:
        assert im.mode == "LA"
        assert im.info["icc_profile"] == ICC
        assert np.array_equal(np.asarray(im), pixels)


@pytest.mark.parametrize(("channels", "color_type"), [(1, 0), (2, 4), (3, 2), (4, 6)])
def test_png_16_bit_header_and_chunks_are_valid(channels: int, color_type: int) -> None:
    data = codecs.encode(Image(pattern(6, 7, channels, np.uint16), icc=ICC, exif=exif_blob(1)),
                         "png")
    assert data[24:26] == bytes([16, color_type])  # IHDR bit depth and colour type
    assert data.index(b"iCCP") < data.index(b"IDAT") and data.index(b"eXIf") < data.index(b"IDAT")
    with PILImage.open(io.BytesIO(data)) as im:
        im.load()  # Pillow checks every chunk's CRC on the way
        assert im.info["icc_profile"] == ICC


def test_tiff_is_what_tifffile_expects() -> None:
    pixels = pattern(10, 12, 4, np.uint16)
    data = codecs.encode(Image(pixels, icc=ICC), "tiff")
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        assert page.photometric == tifffile.PHOTOMETRIC.RGB
        assert page.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
        assert page.tags[34675].value == ICC
        assert np.array_equal(page.asarray(), pixels)


def test_tiff_exif_is_readable_by_pillow() -> None:
    """The EXIF sub-IFDs we append to a TIFF are real: Pillow finds them."""
    exif = exif_blob(1)
    data = codecs.encode(Image(pattern(5, 6, 3), exif=exif), "tiff")
    with PILImage.open(io.BytesIO(data)) as im:
        found = im.getexif()
        assert found[0x010F] == "TestCam"
        assert found.get_ifd(0x8769)[0x8827] == 400
        assert found.get_ifd(0x8825)[1] == "N"


@pytest.mark.parametrize("endian", ["<", ">"])
def test_tiff_exif_round_trip_in_both_byte_orders(endian: str) -> None:
    exif = exif_blob(1, endian=endian)
    pixels = pattern(9, 11, 3, np.uint16)
    out = codecs.decode(codecs.encode(Image(pixels, exif=exif), "tiff"))
    assert np.array_equal(out.pixels, pixels)
    assert pil_exif_dict(out.exif) == pil_exif_dict(exif)


def test_webp_lossless_at_quality_100_keeps_pixels_under_transparency() -> None:
    pixels = pattern(16, 24, 4)
    pixels[:4, :, 3] = 0  # colour under fully transparent pixels must survive too
    out = codecs.decode(codecs.encode(Image(pixels, icc=ICC, exif=exif_blob(1)), "webp",
                                      quality=100))
    assert np.array_equal(out.pixels, pixels)
    assert out.icc == ICC
    assert pil_exif_dict(out.exif) == pil_exif_dict(exif_blob(1))


def test_webp_grey_comes_back_as_rgb() -> None:
    pixels = pattern(8, 8, 1)
    out = codecs.decode(codecs.encode(Image(pixels), "webp", quality=100))
    assert out.channels == 3
    assert all(np.array_equal(out.pixels[:, :, k], pixels[:, :, 0]) for k in range(3))


def test_webp_lossy_is_smaller_and_close() -> None:
    pixels = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, 0)
    pixels = np.repeat(pixels, 3, 2)
    lossy = codecs.encode(Image(pixels), "webp", quality=80)
    out = codecs.decode(lossy)
    assert np.abs(out.pixels.astype(int) - pixels).max() <= 12


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_keeps_icc_and_exif_and_is_close(channels: int) -> None:
    pixels = np.zeros((32, 48, channels), np.uint8)
    pixels[:, 24:] = 200
    exif = exif_blob(1)
    out = codecs.decode(codecs.encode(Image(pixels, icc=ICC, exif=exif), "jpeg", quality=95))
    assert out.channels == channels
    assert out.icc == ICC
    assert out.exif == exif
    assert np.abs(out.pixels.astype(int) - pixels).mean() < 2


def test_jpeg_splits_a_large_icc_profile_and_joins_it_back() -> None:
    big_icc = ICC + bytes(range(256)) * 600  # ~150 KB: needs three APP2 segments
    data = codecs.encode(Image(pattern(8, 8, 3), icc=big_icc), "jpeg")
    assert data.count(b"ICC_PROFILE\0") == 3
    assert codecs.decode(data).icc == big_icc
    with PILImage.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == big_icc


def test_jpeg_from_16_bit_is_rounded_not_truncated() -> None:
    # Flat 8x8 blocks on the DCT grid survive quality 100 within one step.
    values = np.array([0, 128, 32767, 32896, 65535, 65407], np.uint16)
    pixels = np.tile(np.repeat(values, 8)[None, :, None], (8, 1, 1))
    out = codecs.decode(codecs.encode(Image(pixels), "jpeg", quality=100))
    expected = np.rint(pixels.astype(np.float64) * 255 / 65535)
    assert out.depth == 8
    assert np.abs(out.pixels.astype(int) - expected).max() <= 1


def test_jpeg_refuses_alpha() -> None:
    with pytest.raises(InvalidParams, match="transparency"):
        codecs.encode(Image(pattern(4, 4, 4)), "jpeg")


def test_raw_encode_is_the_little_endian_samples() -> None:
    pixels = pattern(3, 4, 3, np.uint16)
    data = codecs.encode(Image(pixels), "raw")
    assert data == pixels.astype("<u2").tobytes()


def test_encode_refuses_unknown_format_and_bad_quality() -> None:
    image = Image(pattern(4, 4, 3))
    with pytest.raises(UnsupportedFormat):
        codecs.encode(image, "gif")
    for quality in (0, 101, 95.5, True):
        with pytest.raises(InvalidParams, match="quality"):
            codecs.encode(image, "jpeg", quality=quality)  # type: ignore[arg-type]


def test_encode_of_a_strided_view_is_correct() -> None:
    """A crop (non-contiguous view) encodes as the crop, in every format."""
    from bridge.imaging.geometry import Bounds

    full = Image(pattern(20, 30, 4, np.uint16))
    crop = full.crop(Bounds(3, 4, 10, 7))
    for fmt in ("png", "tiff", "raw"):
        data = codecs.encode(crop, fmt)
        out = (codecs.decode_raw(data, 10, 7, 4, 16) if fmt == "raw" else codecs.decode(data))
        assert np.array_equal(out.pixels, crop.pixels), fmt


# -- PNG layouts other writers produce -------------------------------------------------
def test_palette_png_becomes_rgb_and_rgba() -> None:
    im = PILImage.fromarray((np.arange(48).reshape(6, 8) % 5).astype(np.uint8), "P")
    im.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10, 10, 10, 250, 255, 255, 255])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = codecs.decode(buf.getvalue())
    assert out.channels == 3 and np.array_equal(out.pixels, np.asarray(im.convert("RGB")))
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=2)
    out = codecs.decode(buf.getvalue())
    with PILImage.open(io.BytesIO(buf.getvalue())) as saved:
        reference = np.asarray(saved.convert("RGBA"))
    assert out.channels == 4 and np.array_equal(out.pixels, reference)
    assert (out.pixels[:, :, 3] == 0).sum() == (np.asarray(im) == 2).sum()


def test_one_bit_png_becomes_8_bit_grey() -> None:
    bits = np.eye(6, 9, dtype=bool)
    out = codecs.decode(pil_bytes(bits, "PNG"))
    assert out.depth == 8 and out.channels == 1
    assert np.array_equal(out.pixels[:, :, 0], bits.astype(np.uint8) * 255)


def test_grey_png_with_a_transparent_key_gains_alpha() -> None:
    grey = pattern(6, 9, 1)[:, :, 0]
    grey[2, 3] = 77
    out = codecs.decode(pil_bytes(grey, "PNG", transparency=77))
    assert out.channels == 2
    assert np.array_equal(out.pixels[:, :, 0], grey)
    assert np.array_equal(out.pixels[:, :, 1] == 0, grey == 77)


def test_png_exif_with_a_jpeg_style_prefix_is_normalised() -> None:
    from bridge.imaging.png_chunks import chunk

    blob = exif_blob(1)
    plain = codecs.encode(Image(pattern(4, 4, 3)), "png")
    data = plain[:33] + chunk(b"eXIf", b"Exif\0\0" + blob) + plain[33:]
    assert codecs.decode(data).exif == blob


def test_png_profile_with_a_bad_crc_is_dropped_not_fatal() -> None:
    data = bytearray(codecs.encode(Image(pattern(4, 4, 3), icc=ICC), "png"))
    at = data.index(b"iCCP") + 20
    data[at] ^= 0xFF
    out = codecs.decode(bytes(data))
    assert out.icc is None
    assert np.array_equal(out.pixels, pattern(4, 4, 3))
