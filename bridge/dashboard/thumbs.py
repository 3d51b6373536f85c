"""Small PNG thumbnails of results, cheap even for a 100-megapixel layer.

The layer is first sampled with a stride (a view, no copy) down to a few times the
thumbnail size; only that small sample is converted to 8 bits and filtered.
"""

from __future__ import annotations

import io
from collections import OrderedDict

import numpy as np

from bridge.imaging.depth import to_uint8

OVERSAMPLE = 4
CACHE_SIZE = 128


def thumbnail_png(pixels: np.ndarray, side: int) -> bytes:
    from PIL import Image as PILImage

    h, w = pixels.shape[:2]
    step = max(1, max(h, w) // (side * OVERSAMPLE))
    sample = to_uint8(np.ascontiguousarray(pixels[::step, ::step]))
    if sample.ndim == 3 and sample.shape[2] == 1:
        sample = sample[:, :, 0]
    pil = PILImage.fromarray(sample)  # 2 channels: LA, 3: RGB, 4: RGBA
    pil.thumbnail((side, side), PILImage.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


class ThumbnailCache:
    """Last thumbnails made, by (job, side): results do not change once done."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, key: tuple[str, int]) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        self._items[key] = data
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
