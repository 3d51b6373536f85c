"""The tiling engine: seamless (tiled == full frame), bounded memory, OOM halving."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.imaging.tiling import (
    TilesExhausted,
    TileTooLarge,
    input_side,
    plan_tiles,
    split_axis,
    tile_process,
)

RNG = np.random.default_rng(7)


def quantise(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    top = 255.0 if dtype == np.uint8 else 65535.0
    return np.rint(np.clip(values, 0, 1) * top).astype(dtype)


def full_frame(fn, src: np.ndarray) -> np.ndarray:
    top = 255.0 if src.dtype == np.uint8 else 65535.0
    return quantise(fn(src.astype(np.float32) / top), src.dtype)


def nearest(scale: int):
    return lambda t: np.repeat(np.repeat(t, scale, axis=0), scale, axis=1)


def box_blur(radius: int, scale: int = 1):
    """A local filter with zero padding at the borders, like a conv layer."""

    def fn(t: np.ndarray) -> np.ndarray:
        padded = np.pad(t, ((radius, radius), (radius, radius), (0, 0)))
        acc = np.zeros_like(t)
        h, w = t.shape[:2]
        for dy in range(2 * radius + 1):
            for dx in range(2 * radius + 1):
                acc += padded[dy:dy + h, dx:dx + w]
        return nearest(scale)(acc / (2 * radius + 1) ** 2 * 0.9 + 0.05)

    return fn


def torch_fn(module):
    import torch

    module.eval()

    def fn(t: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(t.transpose(2, 0, 1)))[None]
        with torch.inference_mode():
            y = module(x).clamp(0, 1)
        return y[0].permute(1, 2, 0).numpy()

    return fn


# -- planning -------------------------------------------------------------------------
@given(st.integers(1, 5000), st.integers(1, 700))
def test_split_axis_covers_with_nearly_equal_cores(length: int, tile: int) -> None:
    cores = split_axis(length, tile)
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cores))
    sizes = [b - a for a, b in cores]
    assert max(sizes) <= tile and max(sizes) - min(sizes) <= 1
    assert len(cores) == -(-length // tile)


def test_plan_and_input_side() -> None:
    rows, cols = plan_tiles(100, 250, 64)
    assert len(rows) == 2 and len(cols) == 4
    assert input_side(512, 18, 4) == 556


# -- exactness ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("scale", [1, 3])
def test_pointwise_model_is_bit_exact_in_any_tiling(dtype, scale: int) -> None:
    src = (RNG.random((41, 67, 3)) * np.iinfo(dtype).max).astype(dtype)
    want = full_frame(nearest(scale), src)
    for tile in (7, 16, 40, 100):
        out, _ = tile_process(src, nearest(scale), scale, tile=tile, pad=0, blend=3)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, want)


def test_blend_weights_sum_to_one_everywhere() -> None:
    # A model that outputs 1 everywhere: any weight error shows up, corners included.
    src = np.zeros((50, 70, 1), np.float32)
    ones = lambda t: np.ones((t.shape[0] * 2, t.shape[1] * 2, 1), np.float32)  # noqa: E731
    out, stats = tile_process(src, ones, 2, tile=13, pad=3, blend=5)
    assert stats.tiles == 4 * 6
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_local_filter_matches_full_frame_when_pad_covers_the_field(dtype) -> None:
    src = (RNG.random((45, 59, 3)) * np.iinfo(dtype).max).astype(dtype)
    fn = box_blur(2, scale=2)
    want = full_frame(fn, src)
    lsb = 1 if dtype == np.uint8 else 256
    for tile in (9, 17, 30):
        out, _ = tile_process(src, fn, 2, tile=tile, pad=2, blend=2)
        assert np.abs(out.astype(np.int64) - want).max() <= lsb
    # Without context the seams are visible: the check above can fail.
    out, _ = tile_process(src, fn, 2, tile=9, pad=0, blend=0)
    assert np.abs(out.astype(np.int64) - want).max() > lsb


def test_tiny_compact_tiled_equals_full_frame() -> None:
    import torch
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(1)
    model = Compact(num_feat=8, num_conv=3, upscale=4)
    fn = torch_fn(model)
    for dtype, lsb in ((np.uint8, 1), (np.uint16, 256)):
        src = (RNG.random((38, 53, 3)) * np.iinfo(dtype).max).astype(dtype)
        want = full_frame(fn, src)
        assert want.std() > 0.05 * np.iinfo(dtype).max  # the model does something
        for tile in (11, 24):
            out, stats = tile_process(src, fn, 4, tile=tile, pad=3 + 2, blend=4)
            assert stats.tiles > 1
            assert np.abs(out.astype(np.int64) - want).max() <= lsb


def test_tiny_rrdb_tiled_equals_full_frame() -> None:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(2)
    model = ESRGAN(num_filters=8, num_blocks=1, scale=4)
    with torch.no_grad():
        model.model[10].weight.mul_(4.0)
        model.model[10].bias.fill_(0.5)
    fn = torch_fn(model)
    src = (RNG.random((30, 37, 3)) * 255).astype(np.uint8)
    want = full_frame(fn, src)
    assert want.std() > 5
    out, stats = tile_process(src, fn, 4, tile=13, pad=20, blend=4)
    assert stats.tiles == 9
    assert np.abs(out.astype(np.int64) - want).max() <= 1


def test_real_animevideov3_tiled_equals_full_frame(shared_models) -> None:
    from skimage import data

    from bridge.models import runtime

    descriptor = runtime.describe_state_dict(
        runtime.read_state_dict(shared_models / "realesr-animevideov3.pth")).eval()
    pad, blend = runtime.tile_context(descriptor)
    assert pad == 18  # 16 convs + first and last
    fn = torch_fn(descriptor.model)
    src = np.ascontiguousarray(data.astronaut()[40:136, 150:230])
    want = full_frame(fn, src)
    out, stats = tile_process(src, fn, 4, tile=37, pad=pad, blend=blend)
    assert stats.tiles == 9
    assert np.abs(out.astype(np.int64) - want).max() <= 1


# -- output handling ------------------------------------------------------------------
def test_writes_into_a_channel_view_and_leaves_the_rest() -> None:
    src = (RNG.random((20, 30, 3)) * 255).astype(np.uint8)
    out = np.full((40, 60, 4), 77, np.uint8)
    tile_process(src, nearest(2), 2, out=out[:, :, :3], tile=8, pad=0, blend=2)
    np.testing.assert_array_equal(out[:, :, 3], 77)
    np.testing.assert_array_equal(out[:, :, :3], full_frame(nearest(2), src))


def test_rejects_a_tile_function_of_the_wrong_scale() -> None:
    src = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="expected"):
        tile_process(src, nearest(2), 3, tile=5)


def test_never_holds_a_float_copy_of_the_image() -> None:
    # 512x512 RGB x4: the uint8 output is 12 MB, a float32 copy of it would be 50 MB and
    # of the input 3 MB. With 64 px tiles the engine holds one tile's output and its
    # weighted copy (1.2 MB each), the model's own temporaries and the band carries.
    src = (RNG.random((512, 512, 3)) * 255).astype(np.uint8)
    out = np.empty((2048, 2048, 3), np.uint8)
    tracemalloc.start()
    try:
        tile_process(src, nearest(4), 4, out=out, tile=64, pad=4, blend=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 1e6:.1f} MB"
    np.testing.assert_array_equal(out[::4, ::4], src)


# -- out of memory, progress, cancellation ----------------------------------------------
def test_too_large_tiles_are_redone_smaller_from_scratch() -> None:
    src = (RNG.random((96, 128, 3)) * 255).astype(np.uint8)
    fn = box_blur(1, scale=2)
    want = full_frame(fn, src)
    seen: list[int] = []

    def limited(t: np.ndarray) -> np.ndarray:
        seen.append(max(t.shape[:2]))
        if max(t.shape[:2]) > 60:
            # Scribble on a shared buffer first, like a model dying half-way: the engine
            # must not use anything from a failed call.
            t[:] = 1.0
            raise TileTooLarge()
        return fn(t)

    out, stats = tile_process(src, limited, 2, tile=80, pad=2, blend=2)
    assert stats.tiles == 4 and stats.retries == 1 and stats.smallest_input <= 60
    assert np.abs(out.astype(np.int64) - want).max() <= 1
    # After the first failure, no later tile tried a size known not to fit.
    first_fail = next(i for i, s in enumerate(seen) if s > 60)
    assert all(s < seen[first_fail] for s in seen[first_fail + 1:])


def test_gives_up_below_the_smallest_tile() -> None:
    src = np.zeros((40, 40, 3), np.uint8)

    def never(t: np.ndarray) -> np.ndarray:
        raise TileTooLarge()

    with pytest.raises(TilesExhausted):
        tile_process(src, never, 1, tile=32, pad=2, blend=2, min_tile=8)


def test_progress_per_tile_and_cancel_between_tiles() -> None:
    src = np.zeros((30, 30, 3), np.uint8)
    calls: list[tuple[int, int]] = []
    tile_process(src, nearest(1), 1, tile=10, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 9) for i in range(1, 10)]

    class Stop(Exception):
        pass

    done: list[int] = []

    def cancel_after_four() -> None:
        if len(done) == 4:
            raise Stop()

    with pytest.raises(Stop):
        tile_process(src, nearest(1), 1, tile=10, progress=lambda d, t: done.append(d),
                     check_cancel=cancel_after_four)
    assert done == [1, 2, 3, 4]


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), tile=st.integers(1, 25),
       blend=st.integers(0, 6), scale=st.integers(1, 3))
def test_any_geometry_reproduces_a_pointwise_model(h, w, tile, blend, scale) -> None:
    src = (np.arange(h * w * 2).reshape(h, w, 2) % 251).astype(np.uint8)
    out, _ = tile_process(src, nearest(scale), scale, tile=tile, pad=1, blend=blend)
    np.testing.assert_array_equal(out, full_frame(nearest(scale), src))
