"""Raw interleaved pixel buffers: what Photoshop's imaging API hands out and takes back.

Samples are little-endian, rows top to bottom, channels interleaved; 16-bit uses
the full 0..65535 range and 32 means float32. Both directions are zero-copy on
little-endian machines: the array IS the received buffer, and the answer IS the
array's memory.
"""

from __future__ import annotations

import numpy as np

from bridge.errors import InvalidInput
from bridge.imaging.formats import check_size
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image

_LITTLE = {8: np.dtype("u1"), 16: np.dtype("<u2"), 32: np.dtype("<f4")}


def raw_layout_error(width: object, height: object, channels: object, depth: object) -> str | None:
    """Why a raw layout is unusable, or None."""
    for name, v in (("width", width), ("height", height), ("channels", channels), ("depth", depth)):
        if not isinstance(v, int) or isinstance(v, bool):
            return f"raw {name} must be an integer, got {v!r}"
    if width < 0 or height < 0:  # type: ignore[operator]
        return f"raw width and height cannot be negative, got {width}x{height}"
    if depth not in _LITTLE:
        return f"raw depth must be 8, 16 or 32 (float), got {depth}"
    if not 1 <= channels <= 4:  # type: ignore[operator]
        return f"raw channels must be 1 to 4, got {channels}"
    return None


def decode_raw(data: bytes | bytearray | memoryview, width: int, height: int, channels: int,
               depth: int, *, max_pixels: int | None = None) -> Image:
    """Pixels over `data` without copying (a bytes buffer gives a read-only array).

    The length must be exactly width*height*channels*bytes per sample.
    """
    problem = raw_layout_error(width, height, channels, depth)
    if problem:
        raise InvalidInput(problem)
    check_size(Extent(width, height), max_pixels, "raw image")
    dtype = _LITTLE[depth]
    expected = width * height * channels * dtype.itemsize
    received = memoryview(data).nbytes
    if received != expected:
        raise InvalidInput(
            f"a raw {width}x{height} image with {channels} channel(s) at {depth} bits needs "
            f"{expected:,} bytes, but {received:,} were received",
            expected_bytes=expected, received_bytes=received)
    pixels = np.frombuffer(data, dtype=dtype).reshape(height, width, channels)
    if not dtype.isnative:  # big-endian machine: one swap is unavoidable
        pixels = pixels.astype(dtype.newbyteorder("="))
    return Image(pixels, source_format="raw")


def encode_raw(image: Image) -> memoryview:
    """The pixels' bytes as a flat view: no copy unless the array is strided or big-endian."""
    pixels = image.pixels
    little = _LITTLE[image.depth]
    if pixels.dtype != little:
        pixels = pixels.astype(little)
    pixels = np.ascontiguousarray(pixels)
    return memoryview(pixels).cast("B")
