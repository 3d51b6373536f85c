"""The follow-the-selection path with a real engine (OpenCV): exact bits outside the mask at
every depth, bounds near the selection, alpha kept, and memory that follows the selection."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from bridge.errors import InvalidInput
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.inpaint.engines import OpenCVInpainter
from bridge.inpaint.pipeline import SelectionSettings, follow_selection
from bridge.inpaint.region import WorkingSize
from bridge.ops.base import OpContext
from bridge.ops.registry import run_operation
from tests.inpaint.support import composite, coverage_of
from tests.inpaint.tiny import photo_like

SELECTION = Bounds(1800, 1400, 300, 200)


def _soft_selection(bounds: Bounds) -> Mask:
    """An elliptic selection with a soft edge, like a feathered lasso."""
    yy, xx = np.mgrid[0:bounds.height, 0:bounds.width].astype(np.float32)
    r = np.hypot((xx - bounds.width / 2) / (bounds.width / 2), (yy - bounds.height / 2) / (bounds.height / 2))
    data = np.clip((1.0 - r) * 4 * 255, 0, 255).astype(np.uint8)
    return Mask(bounds, data)


@pytest.mark.parametrize("depth", [8, 16])
def test_big_document_small_selection_exact_outside_and_bounds_near(depth: int) -> None:
    pixels = photo_like(3000, 4000, depth=depth, channels=4)
    image = Image(pixels)
    result = run_operation("remove", image, _soft_selection(SELECTION), {"model": "opencv"})
    layer = result.primary
    assert result.extent == image.extent
    assert layer.image.pixels.dtype == pixels.dtype and layer.image.channels == 4
    # bounds follow the selection: they hold it, and are nowhere near the document's size
    assert layer.bounds.contains(SELECTION)
    assert layer.bounds.width < 3 * SELECTION.width and layer.bounds.height < 3 * SELECTION.height
    # the layer's own pixels are the document's where its mask is 0, alpha everywhere
    crop = pixels[layer.bounds.slices]
    outside = layer.mask == 0
    assert np.array_equal(layer.image.pixels[outside], crop[outside])
    assert np.array_equal(layer.image.pixels[:, :, 3], crop[:, :, 3])
    # composited as a host does: every pixel outside the feathered mask is bit-identical
    shown = composite(pixels, layer)
    cover = coverage_of(layer, 3000, 4000)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])
    inside = cover == 255
    assert inside.sum() > 0.5 * SELECTION.width * SELECTION.height
    assert (shown[inside][:, :3] != pixels[inside][:, :3]).mean() > 0.5


def test_layer_mask_is_the_feathered_selection_and_covers_it() -> None:
    image = Image(photo_like(400, 500))
    sel = Mask.rectangle(Bounds(200, 150, 60, 40))
    result = run_operation("remove", image, sel, {"model": "opencv", "grow": 0, "feather": 6})
    layer = result.primary
    cover = coverage_of(layer, 400, 500)
    assert (cover[150:190, 200:260] == 255).all()          # the selection itself is fully replaced
    assert 0 < cover[170, 197] < 255                       # a soft edge laid outside it
    assert cover[170, 180] == 0 and cover[100, 230] == 0   # and nothing beyond the feather


@pytest.mark.parametrize("channels,dtype", [(1, np.uint16), (2, np.uint8), (3, np.float32)])
def test_grey_alpha_and_float_documents(channels: int, dtype: type) -> None:
    base = photo_like(300, 400, depth=16, channels=max(channels, 1))
    pixels = (base.astype(np.float32) / 65535).astype(np.float32) if dtype == np.float32 else (
        base if dtype == np.uint16 else (base >> 8).astype(np.uint8))
    image = Image(pixels)
    result = run_operation("remove", image, Mask.rectangle(Bounds(150, 100, 50, 40)), {"model": "opencv"})
    layer = result.primary
    assert layer.image.pixels.dtype == pixels.dtype and layer.image.channels == channels
    shown = composite(pixels, layer)
    cover = coverage_of(layer, 300, 400)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])
    assert not np.array_equal(shown[cover == 255], pixels[cover == 255])


def test_empty_and_missing_masks_are_clear_client_errors() -> None:
    image = Image(photo_like(64, 64))
    empty = Mask(Bounds(0, 0, 64, 64), np.zeros((64, 64), np.uint8))
    for mask in (empty, None):
        with pytest.raises(InvalidInput) as caught:
            run_operation("remove", image, mask, {"model": "opencv"})
        assert caught.value.status == 400 and "remove" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        follow_selection(image, empty, OpenCVInpainter(), SelectionSettings(), OpContext())
    assert "select" in caught.value.message


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_follows_the_selection_not_the_document() -> None:
    """The same selection costs the same memory in a 12 MP document as in a 0.8 MP one."""
    sel = Mask.rectangle(Bounds(400, 300, 300, 200))
    small = Image(photo_like(768, 1024, depth=16))
    large = Image(photo_like(3000, 4000, depth=16))
    run_operation("remove", small, sel, {"model": "opencv"})  # warm up imports and caches
    peaks = [_peak_bytes(lambda im=im: run_operation("remove", im, sel, {"model": "opencv"}))
             for im in (small, large)]
    assert peaks[1] < 1.1 * peaks[0] + 1e6, f"peaks {[round(p / 1e6, 1) for p in peaks]} MB"
    assert peaks[1] < 0.5 * large.pixels.nbytes


def test_all_white_mask_on_a_large_document_works_without_a_float_copy() -> None:
    pixels = photo_like(3000, 4000, depth=16)
    image = Image(pixels)
    everything = Mask.rectangle(Bounds(0, 0, 4000, 3000))
    engine = OpenCVInpainter(working=WorkingSize(512, upscale=False))
    out: dict[str, object] = {}

    def work() -> None:
        out["result"] = follow_selection(image, everything, engine, SelectionSettings(), OpContext())

    peak = _peak_bytes(work)
    layers, plan = out["result"]  # type: ignore[misc]
    assert plan.crop == Bounds.of(Extent(4000, 3000))
    assert plan.working.pixels <= 512 * 512
    assert layers[0].image.pixels.dtype == np.uint16
    # A float32 copy of the colour alone would be 2x the document (144 MB); the layer
    # itself, the mask and a resized fill are what a full selection legitimately costs.
    float_copy = pixels.size * 4
    assert peak < float_copy, f"peak {peak / 1e6:.0f} MB"
