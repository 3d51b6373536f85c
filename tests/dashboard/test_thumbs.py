"""Thumbnails: every layout and depth a result can have becomes a small 8-bit PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from bridge.dashboard.thumbs import ThumbnailCache, thumbnail_png


@pytest.mark.parametrize("channels, mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)])
def test_layouts_and_depths(channels, mode, dtype, top):
    ramp = np.linspace(0, top, 500, dtype=np.float64)
    pixels = np.broadcast_to(ramp[None, :, None], (300, 500, channels)).astype(dtype)
    thumb = PILImage.open(io.BytesIO(thumbnail_png(pixels, 128)))
    assert thumb.mode == mode and thumb.size == (128, 77)
    row = np.asarray(thumb)[40]
    first = row[:, 0] if row.ndim == 2 else row
    assert first[0] <= 3 and first[-1] >= 252  # the ramp's ends survive the reduction


def test_huge_layer_is_sampled_not_copied():
    # A 12000x9000 view of one row: a full conversion would need ~300 MB; sampling needs little.
    row = np.arange(12000, dtype=np.uint16)[None, :, None]
    pixels = np.broadcast_to(row, (9000, 12000, 3))
    thumb = PILImage.open(io.BytesIO(thumbnail_png(pixels, 256)))
    assert thumb.size == (256, 192)


def test_cache_keeps_the_most_recent():
    cache = ThumbnailCache(size=2)
    cache.put(("a", 1), b"A")
    cache.put(("b", 1), b"B")
    assert cache.get(("a", 1)) == b"A"  # a is now the most recent
    cache.put(("c", 1), b"C")
    assert cache.get(("b", 1)) is None and cache.get(("a", 1)) == b"A"
