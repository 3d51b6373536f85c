"""Hostile and broken input: always a 4xx BridgeError with a useful message, fast, small."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from bridge.errors import BridgeError, InvalidInput, TooLarge, UnsupportedFormat
from bridge.imaging import codecs
from bridge.imaging.image import Image
from tests.imaging.helpers import (
    jpeg_header_only,
    pattern,
    pil_bytes,
    png_header_only,
    tiff_header_only,
    webp_header_only,
)


def valid_files() -> dict[str, bytes]:
    rgb = pattern(24, 32, 3)
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(24, 32, 3, np.uint16), photometric="rgb")
    deflate = io.BytesIO()
    tifffile.imwrite(deflate, pattern(24, 32, 4), photometric="rgb", compression="zlib",
                     extrasamples=("unassalpha",))
    return {
        "png8": pil_bytes(rgb, "PNG"),
        "png16": codecs.encode(Image(pattern(24, 32, 4, np.uint16)), "png"),
        "tiff16": buf.getvalue(),
        "tiff_deflate": deflate.getvalue(),
        "tiff_lzw": pil_bytes(rgb, "TIFF", compression="tiff_lzw"),
        "jpeg": pil_bytes(rgb, "JPEG", quality=90),
        "jpeg_progressive": pil_bytes(rgb, "JPEG", quality=90, progressive=True),
        "webp": pil_bytes(rgb, "WEBP", lossless=True),
        "webp_lossy": pil_bytes(rgb, "WEBP", quality=80),
    }


FILES = valid_files()


def test_the_valid_files_decode() -> None:
    for name, data in FILES.items():
        assert codecs.decode(data).extent.pixels == 24 * 32, name


# -- unknown and empty -----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_an_unsupported_format(seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(UnsupportedFormat) as err:
        codecs.decode(data)
    assert err.value.status == 415 and "PNG, TIFF, JPEG or WebP" in err.value.message
    with pytest.raises(UnsupportedFormat):
        codecs.probe(data)


def test_empty_data_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        codecs.decode(b"")


@pytest.mark.parametrize(("data", "name"), [
    (b"GIF89a" + bytes(40), "GIF"), (b"BM" + bytes(40), "BMP"), (b"8BPS" + bytes(40), "PSD"),
    (b"\0\0\0\x20ftypheic" + bytes(40), "HEIF"),
])
def test_known_other_formats_are_named(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedFormat, match=name):
        codecs.decode(data)


# -- truncation ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FILES))
def test_truncated_files_are_invalid_input(name: str) -> None:
    data = FILES[name]
    cuts = sorted({4, 12, 20, 30, 40, 60, len(data) // 3, len(data) // 2, len(data) - 20,
                   len(data) - 5, len(data) - 1})
    for cut in cuts:
        start = time.perf_counter()
        with pytest.raises(BridgeError) as err:
            codecs.decode(data[:cut])
        assert err.value.status in (400, 415), (name, cut, err.value)
        assert err.value.message
        assert time.perf_counter() - start < 2


def test_truncated_png_says_so() -> None:
    with pytest.raises(InvalidInput, match="truncated"):
        codecs.decode(FILES["png16"][:-30])


def test_truncated_tiff_says_how_much_is_missing() -> None:
    data = FILES["tiff16"]
    cut = data[: len(data) // 2]
    with pytest.raises(InvalidInput, match="truncated") as err:
        codecs.decode(cut)
    assert f"{len(cut):,}" in err.value.message


def test_truncated_header_fails_in_probe_too() -> None:
    for name in ("png8", "jpeg", "tiff16", "webp"):
        with pytest.raises(InvalidInput):
            codecs.probe(FILES[name][:20])


# -- sizes claimed by headers ------------------------------------------------------------
HUGE = {
    "png": png_header_only(100_000, 100_000),
    "tiff": tiff_header_only(100_000, 100_000),
    "jpeg": jpeg_header_only(65_535, 65_535),  # a JPEG side is at most 65535
    "webp": webp_header_only(16_384, 16_384),  # a WebP side is at most 16384
}


@pytest.mark.parametrize("fmt", sorted(HUGE))
def test_huge_header_fails_fast_with_too_large(fmt: str) -> None:
    data = HUGE[fmt]
    name, extent = codecs.probe(data)
    assert name == fmt
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(TooLarge) as err:
            codecs.decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1
    assert peak < 4 << 20  # nothing near the claimed size was allocated
    assert err.value.status == 413
    assert str(extent) in err.value.message and "200,000,000" in err.value.message
    assert err.value.details["pixels"] == extent.pixels


def test_limit_given_by_the_caller_is_named() -> None:
    data = pil_bytes(pattern(30, 40, 3), "PNG")
    with pytest.raises(TooLarge, match="40x30 = 1,200 pixels; the limit is 1,000"):
        codecs.decode(data, max_pixels=1000)
    assert codecs.decode(data, max_pixels=1200).extent.pixels == 1200


@pytest.mark.parametrize("data", [png_header_only(0, 0), png_header_only(0, 10),
                                  tiff_header_only(0, 0), jpeg_header_only(10, 0)],
                         ids=["png0x0", "png0x10", "tiff0x0", "jpeg10x0"])
def test_zero_size_header_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="it has no pixels"):
        codecs.decode(data)


# -- corrupt content ---------------------------------------------------------------------
def test_png_with_a_bad_header_crc() -> None:
    data = bytearray(FILES["png8"])
    data[29] ^= 0xFF
    with pytest.raises(InvalidInput, match="CRC"):
        codecs.decode(bytes(data))


def test_png_with_corrupt_pixel_data() -> None:
    data = bytearray(FILES["png8"])
    start = data.index(b"IDAT") + 8
    data[start: start + 40] = bytes(40)
    with pytest.raises(InvalidInput):
        codecs.decode(bytes(data))


def test_cmyk_jpeg_is_refused_clearly() -> None:
    data = pil_bytes(np.zeros((8, 8, 4), np.uint8), "JPEG", mode="CMYK")
    with pytest.raises(UnsupportedFormat, match="CMYK"):
        codecs.decode(data)


def test_cmyk_tiff_is_refused_clearly() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((8, 8, 4), np.uint8), photometric="separated")
    with pytest.raises(UnsupportedFormat, match="CMYK"):
        codecs.decode(buf.getvalue())


def test_signed_integer_tiff_is_refused_clearly() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((8, 8), np.int16))
    with pytest.raises(UnsupportedFormat, match="int16"):
        codecs.decode(buf.getvalue())


def test_animated_webp_is_refused_clearly() -> None:
    frames = [PILImage.fromarray(pattern(8, 8, 3, seed=k)) for k in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    with pytest.raises(UnsupportedFormat, match="animated"):
        codecs.decode(buf.getvalue())


# -- fuzzing ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FILES)), st.data())
def test_mutated_files_never_crash(name: str, data: st.DataObject) -> None:
    """Flipped bytes anywhere (headers included): an Image or a 4xx error, nothing else."""
    blob = bytearray(FILES[name])
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(1, len(blob) - 1)):]
    try:
        image = codecs.decode(bytes(blob), max_pixels=4_000_000)
    except BridgeError as e:
        assert e.status in (400, 413, 415)
        assert e.message
    else:
        assert image.pixels.size > 0
