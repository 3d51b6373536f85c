"""What a header makes the decoder allocate, refused before decoding: not just pixels.

A small TIFF can declare hundreds of samples per pixel, 64-bit samples, tiles far
larger than the image, or a strip that inflates far past its size; a PSD can declare
56 channels. Each is bounded from the header (or, for a strip, as it inflates), and the
memory a refusal costs is measured with tracemalloc (numpy reports its buffers to it).
The handmade files are built here without ever holding their decoded size.
"""

from __future__ import annotations

import io
import lzma
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import BridgeError, InvalidInput, TooLarge, UnsupportedFormat
from bridge.imaging import codecs
from tests.imaging.test_codec_bad_input import valid_files

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus" / "image"
SHORT, LONG = 3, 4


def zeros_deflated(n: int) -> bytes:
    """zlib-compressed zeros, made a megabyte at a time."""
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(n >> 20)]
    parts.append(packer.compress(bytes(n & ((1 << 20) - 1))))
    return b"".join(parts) + packer.flush()


def handmade_tiff(width: int, height: int, *, samples: int = 1, bits: int = 8,
                  compression: int = 8, segment: bytes = b"", tile: tuple[int, int] | None = None,
                  sampleformat: int = 1, photometric: int = 1) -> bytes:
    """A little-endian TIFF with one strip (or one tile) holding `segment` as it is."""
    tags: list[tuple[int, int, list[int]]] = [
        (256, LONG, [width]), (257, LONG, [height]), (258, SHORT, [bits] * samples),
        (259, SHORT, [compression]), (262, SHORT, [photometric]), (277, SHORT, [samples]),
        (284, SHORT, [1]), (339, SHORT, [sampleformat] * samples),
    ]
    color = 3 if photometric == 2 else 1
    if samples > color:
        tags.append((338, SHORT, [0] * (samples - color)))  # unspecified extra samples
    if tile is None:
        tags += [(273, LONG, [0]), (278, LONG, [height]), (279, LONG, [len(segment)])]
    else:
        tags += [(322, LONG, [tile[1]]), (323, LONG, [tile[0]]), (324, LONG, [0]),
                 (325, LONG, [len(segment)])]
    tags.sort()
    ifd_size = 2 + 12 * len(tags) + 4
    extra = bytearray()
    entries = []
    data_at = 8 + ifd_size
    values_size = sum(len(v) * (2 if t == SHORT else 4) for _, t, v in tags
                      if len(v) * (2 if t == SHORT else 4) > 4)
    segment_at = data_at + values_size
    for code, kind, values in tags:
        if code in (273, 324):
            values = [segment_at]
        packed = struct.pack(f"<{len(values)}{'H' if kind == SHORT else 'I'}", *values)
        if len(packed) <= 4:
            entries.append(struct.pack("<HHI", code, kind, len(values)) + packed.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", code, kind, len(values), data_at + len(extra)))
            extra += packed
    ifd = struct.pack("<H", len(tags)) + b"".join(entries) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + bytes(extra) + segment


def peak_while(fn: Callable[[], object]) -> tuple[object, int]:
    """What fn returned or raised, and the most memory it held at once (bytes)."""
    tracemalloc.start()
    try:
        try:
            result: object = fn()
        except BridgeError as e:
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_handmade_tiff_is_a_real_tiff():
    pixels = np.arange(6 * 4, dtype=np.uint8).reshape(4, 6)
    data = handmade_tiff(6, 4, segment=zlib.compress(pixels.tobytes()))
    assert np.array_equal(codecs.decode(data).pixels[:, :, 0], pixels)
    rgb = np.arange(16 * 16 * 3, dtype=np.uint16).reshape(16, 16, 3)
    data = handmade_tiff(16, 16, samples=3, bits=16, photometric=2, tile=(16, 16),
                         segment=zlib.compress(rgb.tobytes()))
    assert np.array_equal(codecs.decode(data).pixels, rgb)


def test_hundreds_of_extra_samples_are_refused_before_decoding():
    # 512x512 with 400 samples: 105 MB of samples in a 100 KB file.
    data = (CORPUS / "tiff-400-samples.tif").read_bytes()
    assert len(data) < 150_000
    error, peak = peak_while(lambda: codecs.decode(data))
    assert isinstance(error, UnsupportedFormat) and error.status == 415, error
    assert "400 samples per pixel" in error.message and "at most 10" in error.message
    assert peak < 8 << 20, f"held {peak / 1e6:.0f} MB before refusing"


def test_a_few_extra_samples_still_decode():
    # Photoshop saves selections as extra samples: RGB + alpha + 8 of them is fine.
    rgba_plus = np.zeros((8, 8, 12), np.uint8)
    rgba_plus[:, :, :3] = 200
    data = handmade_tiff(8, 8, samples=12, photometric=2, segment=zlib.compress(rgba_plus.tobytes()))
    image = codecs.decode(data)
    assert image.pixels.shape == (8, 8, 3) and int(image.pixels.max()) == 200


def test_samples_times_depth_over_the_limit_is_413_from_the_header():
    # 1000x1000 is within 2 MP, but 12 float64 samples a pixel are 96 MB: over 2 MP x 16 bytes.
    data = handmade_tiff(1000, 1000, samples=12, bits=64, sampleformat=3, segment=b"x" * 64)
    error, peak = peak_while(lambda: codecs.decode(data, max_pixels=2_000_000))
    assert isinstance(error, TooLarge) and error.status == 413, error
    assert "96 bytes per pixel" in error.message and "12 samples of 64 bits" in error.message
    assert peak < 1 << 20
    # The same layout at a size the limit allows goes on to decoding (and to its own error).
    small = handmade_tiff(100, 100, samples=12, bits=64, sampleformat=3, segment=b"x" * 64)
    assert not isinstance(peak_while(lambda: codecs.decode(small, max_pixels=2_000_000))[0],
                          TooLarge)


def test_the_limit_allows_rgba_float_at_the_pixel_limit():
    from bridge.imaging.formats import DECODED_BYTES_PER_PIXEL

    rgba = np.zeros((20, 50, 4), np.float32)
    data = handmade_tiff(50, 20, samples=4, bits=32, sampleformat=3, photometric=2,
                         segment=zlib.compress(rgba.tobytes()))
    assert DECODED_BYTES_PER_PIXEL == 16
    assert codecs.decode(data, max_pixels=1000).pixels.dtype == np.float32


def test_a_strip_that_inflates_past_its_size_is_refused_as_it_inflates():
    # A 16x16 image whose one strip inflates to 64 MB.
    data = handmade_tiff(16, 16, segment=zeros_deflated(64 << 20))
    assert len(data) < 100_000
    error, peak = peak_while(lambda: codecs.decode(data))
    assert isinstance(error, InvalidInput) and error.status == 400, error
    assert "inflates to more than" in error.message
    assert peak < 4 << 20, f"held {peak / 1e6:.0f} MB before refusing"


def test_lzma_strips_are_bounded_too():
    from bridge.imaging.tiff_inflate import lzma_decode

    bomb = lzma.compress(bytes(4 << 20))
    assert lzma_decode(lzma.compress(bytes(256)), out=256) == bytes(256)
    with pytest.raises(ValueError, match="inflates to more than its 256 bytes"):
        lzma_decode(bomb, out=256)
    # tifffile writes LZMA strips; they still decode.
    import tifffile

    buf = io.BytesIO()
    pixels = np.arange(300, dtype=np.uint16).reshape(15, 20)
    tifffile.imwrite(buf, pixels, compression="lzma")
    assert np.array_equal(codecs.decode(buf.getvalue()).pixels[:, :, 0], pixels)


def test_tiles_larger_than_the_image_and_16_mb_are_refused():
    # 16x16 pixels stored in one 4096x4096 tile: 50 MB of tile for 768 bytes of image.
    data = handmade_tiff(16, 16, samples=3, photometric=2, tile=(4096, 4096),
                         segment=zeros_deflated(4096 * 4096 * 3))
    error, peak = peak_while(lambda: codecs.decode(data))
    assert isinstance(error, TooLarge) and "tiles of 50 MB" in error.message, error
    assert peak < 1 << 20
    # A tile larger than a small image but of a sane size is normal.
    ok = handmade_tiff(100, 100, tile=(256, 256), segment=zlib.compress(bytes(256 * 256)))
    assert codecs.decode(ok).extent.pixels == 10_000


def test_every_format_declares_at_least_what_it_decodes():
    # The header's bytes per pixel is what the limit is checked against: it must not
    # under-count what decoding really produces, for any format or layout we read.
    for name, data in valid_files().items():
        head = codecs._header(codecs.sniff(data), data)
        image = codecs.decode(data)
        assert image.pixels.nbytes <= head.bytes_per_pixel * image.extent.pixels, name


def channel_bomb(width: int, height: int, channels: int, depth: int) -> bytes:
    """An RGB PSD whose zip-compressed merged image has `channels` channels of zeros."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, channels, height, width, depth, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers: empty
    merged = zeros_deflated(width * height * channels * depth // 8)
    return header + sections + struct.pack(">H", 2) + merged


def test_a_psd_with_many_channels_is_refused_from_its_header(tmp_path: Path):
    from bridge.ops.base import OpContext
    from bridge.psd.apply import apply_to_psd

    # 600x600 is within 1 MP, but 56 channels of 16 bits are 40 MB: over 1 MP x 16 bytes.
    src = tmp_path / "doc.psd"
    src.write_bytes(channel_bomb(600, 600, 56, 16))
    assert src.stat().st_size < 100_000
    with pytest.raises(TooLarge, match=r"56 channels of 16 bits"):
        apply_to_psd(src, tmp_path / "out.psd", "passthrough", composite=True,
                     ctx=OpContext(max_pixels=1_000_000))
    assert not (tmp_path / "out.psd").exists()
    data = bytearray(src.read_bytes())
    struct.pack_into(">H", data, 12, 400)  # more channels than the format has
    src.write_bytes(bytes(data))
    with pytest.raises(UnsupportedFormat, match="declares 400 channels"):
        apply_to_psd(src, tmp_path / "out.psd", "passthrough", composite=True)
