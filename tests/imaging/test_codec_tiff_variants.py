"""TIFFs as other programs write them: compressions, layouts, palettes, alpha kinds, depths."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from bridge.imaging import codecs
from tests.imaging.helpers import pattern, pil_bytes, tiff_file, wide_gamut_icc


def tifffile_bytes(array: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **options)
    return buf.getvalue()


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("compression", ["tiff_lzw", "packbits", "tiff_adobe_deflate"])
def test_pillow_compressed_8_bit(channels: int, compression: str) -> None:
    pixels = pattern(20, 30, channels)
    data = pil_bytes(pixels[:, :, 0] if channels == 1 else pixels, "TIFF", compression=compression)
    out = codecs.decode(data)
    assert np.array_equal(out.pixels, pixels)


def test_lzw_grey_alpha_keeps_its_alpha() -> None:
    pixels = pattern(12, 16, 2)
    out = codecs.decode(pil_bytes(pixels, "TIFF", mode="LA", compression="tiff_lzw"))
    assert np.array_equal(out.pixels, pixels)


@pytest.mark.parametrize("channels", [3, 4])
def test_lzw_16_bit_colour_with_predictor(channels: int) -> None:
    """What Photoshop's default (LZW, 16-bit) save looks like; read through libtiff."""
    pixels = pattern(20, 30, channels, np.uint16)
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR if channels == 3 else cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(".tif", bgr, [cv2.IMWRITE_TIFF_COMPRESSION,
                                         cv2.IMWRITE_TIFF_COMPRESSION_LZW,
                                         cv2.IMWRITE_TIFF_PREDICTOR,
                                         cv2.IMWRITE_TIFF_PREDICTOR_HORIZONTAL])
    assert ok
    out = codecs.decode(data.tobytes())
    assert out.depth == 16
    assert np.array_equal(out.pixels, pixels)


def test_jpeg_compressed_tiff_is_close() -> None:
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:, 16:] = (200, 100, 50)
    out = codecs.decode(pil_bytes(pixels, "TIFF", compression="jpeg", quality=95))
    assert out.channels == 3
    assert np.abs(out.pixels.astype(int) - pixels).mean() < 3


def test_deflate_with_predictor_16_bit() -> None:
    pixels = pattern(25, 35, 3, np.uint16)
    data = tifffile_bytes(pixels, photometric="rgb", compression="zlib", predictor=True)
    assert np.array_equal(codecs.decode(data).pixels, pixels)


def test_planar_separate_layout() -> None:
    pixels = pattern(10, 14, 3, np.uint16)
    data = tifffile_bytes(np.moveaxis(pixels, -1, 0), photometric="rgb", planarconfig="separate")
    assert np.array_equal(codecs.decode(data).pixels, pixels)


def test_tiled_layout() -> None:
    pixels = pattern(40, 50, 4, np.uint16)
    data = tifffile_bytes(pixels, photometric="rgb", tile=(16, 16), extrasamples=("unassalpha",))
    assert np.array_equal(codecs.decode(data).pixels, pixels)


def test_palette_becomes_8_bit_rgb() -> None:
    indices = np.arange(20 * 30, dtype=np.uint32).reshape(20, 30) % 7
    im = PILImage.fromarray(indices.astype(np.uint8), "P")
    im.putpalette([10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200, 255, 255, 255, 5, 6, 7, 90, 91, 92])
    buf = io.BytesIO()
    im.save(buf, "TIFF")
    out = codecs.decode(buf.getvalue())
    assert out.depth == 8 and out.channels == 3
    assert np.array_equal(out.pixels, np.asarray(im.convert("RGB")))


def test_palette_with_16_bit_colours_stays_16_bit() -> None:
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, 1] = (1000, 2000, 3000)  # not multiples of 257: real 16-bit entries
    cmap[:, 2] = (65535, 0, 12345)
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    out = codecs.decode(tifffile_bytes(indices, photometric="palette", colormap=cmap))
    assert out.depth == 16
    assert out.pixels.tolist() == [[[0, 0, 0], [1000, 2000, 3000]],
                                   [[65535, 0, 12345], [1000, 2000, 3000]]]


def test_bilevel_becomes_8_bit_grey() -> None:
    bits = np.eye(8, 12, dtype=bool)
    out = codecs.decode(pil_bytes(bits, "TIFF"))
    assert out.depth == 8 and out.channels == 1
    assert np.array_equal(out.pixels[:, :, 0], bits.astype(np.uint8) * 255)


def test_bilevel_group4_white_is_zero() -> None:
    bits = np.eye(8, 16, dtype=bool)
    out = codecs.decode(pil_bytes(bits, "TIFF", compression="group4"))
    assert np.array_equal(out.pixels[:, :, 0], bits.astype(np.uint8) * 255)


def test_white_is_zero_8_bit_is_inverted() -> None:
    stored = pattern(6, 8, 1)[:, :, 0]
    out = codecs.decode(tifffile_bytes(stored, photometric="miniswhite"))
    assert np.array_equal(out.pixels[:, :, 0], 255 - stored)


@pytest.mark.parametrize(("bits", "packed", "expected"), [
    (4, bytes([0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]),
     [[0, 17, 34, 51], [68, 85, 102, 119]]),
    (2, bytes([0x1B, 0xE4]), [[0, 85, 170, 255], [255, 170, 85, 0]]),
])
def test_2_and_4_bit_grey_is_stretched_to_8_bit(bits: int, packed: bytes,
                                                 expected: list[list[int]]) -> None:
    out = codecs.decode(tiff_file(4, 2, packed, bits=bits))
    assert out.pixels.dtype == np.uint8
    assert out.pixels[:, :, 0].tolist() == expected


def with_extrasamples(data: bytes, kind: int) -> bytes:
    """The same TIFF with its ExtraSamples value rewritten in place."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tag = tif.pages.first.tags[338]
        assert tag.count == 1 and tag.dtype == 3
        at = tag.valueoffset
    return data[:at] + kind.to_bytes(2, "little" if data[:2] == b"II" else "big") + data[at + 2:]


def test_associated_alpha_through_libtiff_is_divided_out() -> None:
    stored = pattern(10, 12, 4)
    stored[..., :3] = (stored[..., :3].astype(int) * stored[..., 3:] // 255).astype(np.uint8)
    data = with_extrasamples(pil_bytes(stored, "TIFF", compression="tiff_lzw"), 1)
    out = codecs.decode(data)
    a = stored[..., 3:].astype(np.float64)
    expected = np.where(a > 0, np.rint(stored[..., :3] * 255.0 / np.maximum(a, 1)), 0)
    assert np.array_equal(out.pixels[..., 3], stored[..., 3])
    assert np.abs(out.pixels[..., :3].astype(int) - np.clip(expected, 0, 255)).max() <= 1


def test_associated_alpha_is_divided_out() -> None:
    straight = pattern(16, 16, 4, np.uint16)
    straight[..., 3] = np.linspace(1, 65535, 256).reshape(16, 16).astype(np.uint16)
    straight[0, 0, 3] = 0
    alpha = straight[..., 3:].astype(np.float64) / 65535
    premultiplied = straight.copy()
    premultiplied[..., :3] = np.rint(straight[..., :3] * alpha).astype(np.uint16)
    out = codecs.decode(tifffile_bytes(premultiplied, photometric="rgb",
                                       extrasamples=("assocalpha",)))
    assert np.array_equal(out.pixels[..., 3], straight[..., 3])
    visible = straight[..., 3] > 2000  # where premultiplying kept enough precision
    err = np.abs(out.pixels[..., :3].astype(int) - straight[..., :3])[visible]
    assert err.max() <= 65535 / 2000
    assert (out.pixels[0, 0, :3] == 0).all()


def test_unspecified_extra_sample_is_dropped() -> None:
    """Photoshop stores saved selections as unspecified extra samples: not transparency."""
    pixels = pattern(8, 10, 4)
    out = codecs.decode(tifffile_bytes(pixels, photometric="rgb", extrasamples=("unspecified",)))
    assert out.channels == 3
    assert np.array_equal(out.pixels, pixels[..., :3])


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_depths_become_float32(dtype: type) -> None:
    pixels = pattern(6, 7, 3, np.float32).astype(dtype)
    out = codecs.decode(tifffile_bytes(pixels, photometric="rgb"))
    assert out.pixels.dtype == np.float32
    assert np.array_equal(out.pixels, pixels.astype(np.float32))


def test_multi_page_gives_the_first_page() -> None:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(pattern(5, 6, 3, seed=1), photometric="rgb")
        tif.write(pattern(9, 9, 3, seed=2), photometric="rgb")
    assert np.array_equal(codecs.decode(buf.getvalue()).pixels, pattern(5, 6, 3, seed=1))


def test_bigtiff() -> None:
    pixels = pattern(8, 9, 3, np.uint16)
    icc = wide_gamut_icc()
    out = codecs.decode(tifffile_bytes(pixels, photometric="rgb", bigtiff=True, iccprofile=icc))
    assert np.array_equal(out.pixels, pixels)
    assert out.icc == icc


def test_icc_from_pillow_tiff() -> None:
    icc = wide_gamut_icc()
    out = codecs.decode(pil_bytes(pattern(4, 4, 3), "TIFF", icc_profile=icc))
    assert out.icc == icc


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_buffers_other_than_bytes_decode_the_same(kind: type) -> None:
    pixels = pattern(9, 11, 4, np.uint16)
    data = tifffile_bytes(pixels, photometric="rgb", extrasamples=("unassalpha",))
    assert np.array_equal(codecs.decode(kind(data)).pixels, pixels)
    assert codecs.probe(kind(data)) == ("tiff", codecs.decode(data).extent)
