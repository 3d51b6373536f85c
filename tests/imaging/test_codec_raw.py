"""Raw interleaved buffers: exact layout checks, little-endian samples, no copies."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bridge.errors import InvalidInput, TooLarge
from bridge.imaging import codecs
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from tests.imaging.helpers import pattern


def test_16_bit_samples_are_little_endian_full_range() -> None:
    data = struct.pack("<6H", 0, 1, 65535, 256, 4660, 32768)  # one row, two RGB pixels
    image = codecs.decode_raw(data, 2, 1, 3, 16)
    assert image.pixels.dtype == np.uint16
    assert image.pixels.tolist() == [[[0, 1, 65535], [256, 4660, 32768]]]
    assert image.source_format == "raw"


def test_float32_and_8_bit() -> None:
    data = struct.pack("<4f", 0.0, 0.25, 1.0, 7.5)
    assert codecs.decode_raw(data, 2, 2, 1, 32).pixels[:, :, 0].tolist() == [[0, 0.25], [1, 7.5]]
    assert codecs.decode_raw(bytes([1, 2, 3, 4]), 1, 1, 4, 8).pixels.tolist() == [[[1, 2, 3, 4]]]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("depth", [8, 16, 32])
def test_round_trip_through_encode_raw(channels: int, depth: int) -> None:
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[depth]
    pixels = pattern(7, 5, channels, dtype)
    view = codecs.encode_raw(Image(pixels))
    assert view.nbytes == pixels.nbytes and view.format == "B" and view.ndim == 1
    back = codecs.decode_raw(view, 5, 7, channels, depth)
    assert np.array_equal(back.pixels, pixels)


def test_decode_raw_is_zero_copy() -> None:
    buf = bytearray(pattern(40, 30, 4, np.uint16).tobytes())
    image = codecs.decode_raw(buf, 30, 40, 4, 16)
    assert np.shares_memory(image.pixels, np.frombuffer(buf, np.uint8))
    assert image.pixels.flags.writeable  # a bytearray gives a writable array
    buf[0:2] = b"\x34\x12"
    assert image.pixels[0, 0, 0] == 0x1234  # the same memory, not a copy


def test_decode_raw_of_bytes_is_read_only_and_shares_memory() -> None:
    data = bytes(range(24))
    image = codecs.decode_raw(memoryview(data), 2, 3, 4, 8)
    assert not image.pixels.flags.writeable
    assert np.shares_memory(image.pixels, np.frombuffer(data, np.uint8))


def test_encode_raw_is_zero_copy_for_contiguous_pixels() -> None:
    pixels = pattern(10, 12, 4, np.uint16)
    view = codecs.encode_raw(Image(pixels))
    assert np.shares_memory(np.frombuffer(view, np.uint8), pixels)
    assert bytes(view) == pixels.astype("<u2").tobytes()


def test_encode_raw_of_a_crop_copies_only_the_crop() -> None:
    pixels = pattern(10, 12, 3, np.uint16)
    crop = Image(pixels).crop(Bounds(2, 3, 5, 4))
    view = codecs.encode_raw(crop)
    assert view.nbytes == 5 * 4 * 3 * 2
    assert bytes(view) == np.ascontiguousarray(pixels[3:7, 2:7]).tobytes()


@pytest.mark.parametrize("delta", [-1, 1, -4000])
def test_wrong_length_names_expected_and_received(delta: int) -> None:
    expected = 100 * 50 * 4 * 2
    data = bytes(expected + delta)
    with pytest.raises(InvalidInput) as err:
        codecs.decode_raw(data, 100, 50, 4, 16)
    assert f"{expected:,}" in err.value.message and f"{expected + delta:,}" in err.value.message
    assert err.value.details == {"expected_bytes": expected, "received_bytes": expected + delta}


@pytest.mark.parametrize(("width", "height", "channels", "depth", "match"), [
    (0, 10, 3, 8, "no pixels"), (10, 0, 3, 8, "no pixels"), (-1, 10, 3, 8, "negative|no pixels"),
    (10, 10, 0, 8, "channels"), (10, 10, 5, 8, "channels"), (10, 10, 3, 12, "depth"),
    (10, 10, 3, 64, "depth"), (10.0, 10, 3, 8, "width"), (10, True, 3, 8, "height"),
])
def test_bad_layouts_are_refused(width: object, height: object, channels: object, depth: object,
                                 match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        codecs.decode_raw(b"", width, height, channels, depth)  # type: ignore[arg-type]


def test_pixel_limit_is_checked_before_the_length() -> None:
    with pytest.raises(TooLarge, match="100000x100000"):
        codecs.decode_raw(b"tiny", 100_000, 100_000, 4, 16)
    with pytest.raises(TooLarge):
        codecs.decode_raw(bytes(12), 2, 2, 3, 8, max_pixels=3)


def test_a_large_buffer_goes_through_without_copies() -> None:
    """16 MB of 16-bit RGBA in and out: the only allocations are small bookkeeping."""
    import tracemalloc

    buf = bytearray(1000 * 2000 * 4 * 2)
    tracemalloc.start()
    try:
        image = codecs.decode_raw(buf, 2000, 1000, 4, 16, max_pixels=10**9)
        view = codecs.encode_raw(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert view.nbytes == len(buf)
    assert peak < 1 << 20


def test_raw_mask_follows_the_image_limit_not_the_default() -> None:
    """A mask for an image above the default limit (the server may allow more) decodes."""
    from bridge.imaging.formats import DEFAULT_MAX_PIXELS

    width = DEFAULT_MAX_PIXELS // 1000 + 1
    with pytest.raises(InvalidInput, match="needs"):  # the length check, not TooLarge
        codecs.decode_mask(b"", Extent(width, 1000),
                           raw={"width": width, "height": 1000, "depth": 8})
