"""Depth narrowing (exact rounding, every 16-bit value) and the buffer-as-file reader."""

from __future__ import annotations

import io

import numpy as np
import pytest

from bridge.imaging import depth
from bridge.imaging.codec_util import BufferFile
from bridge.imaging.depth import to_uint8, to_uint16


def test_16_to_8_bit_is_rounded_for_every_value() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5)
    assert np.array_equal(to_uint8(values), expected.astype(np.uint8))


def test_8_bit_passes_through_and_widens_exactly() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    assert to_uint8(pixels) is pixels
    assert np.array_equal(to_uint16(pixels), pixels.astype(np.uint32) * 257)
    assert np.array_equal(to_uint8(to_uint16(pixels)), pixels)


def test_float_is_clipped_rounded_and_nan_safe() -> None:
    pixels = np.array([[[0.0], [1.0], [0.5], [-3.0], [7.0], [np.nan], [np.inf], [0.2]]],
                      np.float32)
    assert to_uint8(pixels)[0, :, 0].tolist() == [0, 255, 128, 0, 255, 0, 255, 51]
    assert to_uint16(pixels)[0, :, 0].tolist() == [0, 65535, 32768, 0, 65535, 0, 65535, 13107]


def test_float_conversion_works_in_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(depth, "_STRIP_BYTES", 64)  # force many strips
    pixels = np.random.default_rng(0).random((37, 5, 3), dtype=np.float32)
    expected = np.clip(np.rint(pixels.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(to_uint8(pixels), expected)


def test_buffer_file_reads_like_bytesio() -> None:
    data = bytes(range(200))
    ours, ref = BufferFile(bytearray(data)), io.BytesIO(data)
    for f in (ours, ref):
        f.seek(10)
    assert ours.read(5) == ref.read(5)
    assert ours.tell() == ref.tell() == 15
    assert ours.seek(-10, io.SEEK_END) == 190
    assert ours.read() == data[190:]
    assert ours.read(3) == b""
    ours.seek(0)
    target = np.zeros(4, np.uint16)  # a typed buffer: len() counts items, not bytes
    assert ours.readinto(target) == 8
    assert target.tobytes() == data[:8]
