"""Run an image model tile by tile into a preallocated integer image, without seams.

The engine is generic: it knows nothing of torch or of any model. It takes

* `src`: an HxWxC uint8/uint16/float32 array (or any view of one, e.g. the colour
  channels of an RGBA image, or a memory map);
* `fn`: a *tile function* mapping a float32 tile (h, w, C) with values in [0, 1] to a
  float32 tile (h*scale, w*scale, C_out), i.e. a model with an integer scale
  (1 for denoisers and restorers). The engine owns both arrays: the input is a fresh
  copy the function may change, and the output may be overwritten by the engine;

and writes `fn(src)` into `out`, an (H*scale, W*scale, C_out) array of uint8, uint16 or
float32 (typically preallocated by the caller, possibly a view such as out[..., :3]).

How it stays seamless: every tile the model sees is its *core* plus `blend` pixels of
feather band on each side that has a neighbour, plus `pad` pixels of context beyond
that (clamped to the image). Only core + band is kept; with `pad` at least the model's
receptive-field radius, each kept pixel is what a full-frame forward would give (up to
float rounding). Neighbouring bands are cross-faded with weights that sum to exactly
one, which hides whatever difference a too-small `pad` leaves.

How it stays small: tiles are processed row by row, left to right. The float data held
at any time is one tile, the right band of the previous tile, and the bottom band of
the previous tile row (2*blend*scale rows of the output's width, twice): never a float
copy of the whole input or output. Finished pixels are quantised and written at once.

Out of memory: a tile function that cannot fit a tile raises `TileTooLarge`; the engine
then computes that tile's kept region again from scratch in smaller tiles (halved, and
halved again if needed, each with full context), and later tiles at least as large go
straight to the smaller size. Nothing of a failed attempt is ever used.

Progress and cancellation: `progress(done, total)` after every top-level tile and
`check_cancel()` before every tile (it raises to stop).

Reuse: `upscale` runs SR models through it; restore-faces' background upscale and
denoise (scale 1) use the same call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TileFn = Callable[[np.ndarray], np.ndarray]

_MAX_OF = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


class TileTooLarge(Exception):
    """Raised by a tile function when a tile does not fit (e.g. CUDA out of memory).

    The function must have released what it allocated; the engine retries the same
    region in smaller tiles.
    """


class TilesExhausted(Exception):
    """Even the smallest allowed tile did not fit."""

    def __init__(self, side: int) -> None:
        super().__init__(f"a {side}px tile still does not fit in memory")
        self.side = side


@dataclass(frozen=True)
class TileStats:
    tiles: int
    retries: int
    smallest_input: int


def split_axis(length: int, tile: int) -> list[tuple[int, int]]:
    """Cut [0, length) into ceil(length / tile) nearly equal cores (no tiny last tile)."""
    n = max(1, math.ceil(length / max(1, tile)))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


Spans = list[tuple[int, int]]


def plan_tiles(height: int, width: int, tile: int) -> tuple[Spans, Spans]:
    """Row and column cores for an image (pure: what `tile_process` will visit)."""
    return split_axis(height, tile), split_axis(width, tile)


def input_side(tile: int, pad: int, blend: int) -> int:
    """Largest side of what the model sees for a core of `tile` pixels."""
    return tile + 2 * (pad + blend)


def _ramp(n: int) -> np.ndarray:
    """Smoothstep from 0 to 1 over n pixels, sampled at pixel centres; ramp + ramp[::-1] == 1."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    s = t * t * (3.0 - 2.0 * t)
    # Force exact complementarity so weights of neighbours sum to 1 in float32 too.
    s = (s - s[::-1] + 1.0) / 2.0
    return s.astype(np.float32)


def _axis_weights(k0: int, k1: int, band: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(k1 - k0, np.float32)
    if band:
        ramp = _ramp(band)
        if not first:
            w[:band] = ramp
        if not last:
            w[-band:] = ramp[::-1]
    return w


def _quantise_inplace(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """values (a scratch float32 array, overwritten) as dtype, rounded and clipped."""
    if dtype == np.float32:
        return values
    np.clip(values, 0.0, 1.0, out=values)
    values *= np.float32(_MAX_OF[np.dtype(dtype)])
    np.rint(values, out=values)
    return values.astype(dtype)


class _Runner:
    def __init__(self, src: np.ndarray, fn: TileFn, scale: int, c_out: int, pad: int,
                 blend: int, min_tile: int, check_cancel: Callable[[], None] | None,
                 align: int = 1) -> None:
        self.src = src
        self.align = align
        self.fn = fn
        self.scale = scale
        self.c_out = c_out
        self.pad = pad
        self.blend = blend
        self.min_tile = min_tile
        self.check_cancel = check_cancel
        self.src_max = _MAX_OF[np.dtype(src.dtype)]
        self.retries = 0
        self.smallest = 0
        # Model inputs at least this large are known not to fit: split them at once.
        self.too_large: int | None = None

    # -- one region ------------------------------------------------------------
    def infer(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """fn over the kept region [y0,y1)x[x0,x1) (input coords), with `pad` context.

        Returns a fresh float32 array of the region's output; never a shared buffer.
        """
        iy0, iy1, ix0, ix1 = self._context(y0, y1, x0, x1)
        side = max(iy1 - iy0, ix1 - ix0)
        if self.too_large is None or side < self.too_large:
            tile = self.src[iy0:iy1, ix0:ix1]
            data = tile.astype(np.float32)
            if self.src_max != 1.0:
                data *= np.float32(1.0 / self.src_max)
            try:
                result = self.fn(data)
            except TileTooLarge:
                self.too_large = side if self.too_large is None else min(self.too_large, side)
                self.retries += 1
            else:
                self.smallest = side if not self.smallest else min(self.smallest, side)
                self._check_shape(result, iy1 - iy0, ix1 - ix0)
                s = self.scale
                return result[(y0 - iy0) * s:(y1 - iy0) * s, (x0 - ix0) * s:(x1 - ix0) * s]
        return self._infer_split(y0, y1, x0, x1, side)

    def _context(self, y0: int, y1: int, x0: int, x1: int) -> tuple[int, int, int, int]:
        """The input rows and columns the model sees for a kept region: `pad` around it,
        clamped to the image, the start moved back onto a multiple of `align`."""
        h, w = self.src.shape[:2]
        iy0, ix0 = max(0, y0 - self.pad), max(0, x0 - self.pad)
        return (iy0 - iy0 % self.align, min(h, y1 + self.pad),
                ix0 - ix0 % self.align, min(w, x1 + self.pad))

    def _infer_split(self, y0: int, y1: int, x0: int, x1: int, failed_side: int) -> np.ndarray:
        iy0, iy1, ix0, ix1 = self._context(y0, y1, x0, x1)
        # Half the core that failed (and less than half of this region, so the split
        # always makes progress); below min_tile there is nothing left to try.
        halved = (failed_side - 2 * (self.pad + self.blend)) // 2
        smaller = min(halved, max(iy1 - iy0, ix1 - ix0) // 2)
        if smaller < self.min_tile:
            raise TilesExhausted(failed_side)
        # The region and its context are an image of their own: run the engine on it
        # (blended sub-tiles, each with real context) into a fresh buffer; keep the middle.
        sub = _Runner(self.src[iy0:iy1, ix0:ix1], self.fn, self.scale, self.c_out, self.pad,
                      self.blend, self.min_tile, self.check_cancel, self.align)
        sub.too_large = self.too_large
        full = np.zeros(((iy1 - iy0) * self.scale, (ix1 - ix0) * self.scale, self.c_out),
                        np.float32)
        sub.run(full, smaller, None)
        self.retries += sub.retries
        self.smallest = min(self.smallest, sub.smallest) if self.smallest else sub.smallest
        self.too_large = sub.too_large
        s = self.scale
        return full[(y0 - iy0) * s:(y1 - iy0) * s, (x0 - ix0) * s:(x1 - ix0) * s]

    def _check_shape(self, result: np.ndarray, h: int, w: int) -> None:
        want = (h * self.scale, w * self.scale, self.c_out)
        if result.shape != want:
            raise ValueError(f"tile function returned {result.shape}, expected {want}")

    # -- the whole image -------------------------------------------------------
    def run(self, out: np.ndarray, tile: int,
            progress: Callable[[int, int], None] | None) -> int:
        h, w = self.src.shape[:2]
        s = self.scale
        rows, cols = plan_tiles(h, w, tile)
        smallest_core = min(min(b - a for a, b in rows), min(b - a for a, b in cols))
        blend = min(self.blend, smallest_core // 2) if len(rows) * len(cols) > 1 else 0
        band = 2 * blend * s
        w_out = w * s
        total = len(rows) * len(cols)
        carry_in = (np.zeros((band, w_out, self.c_out), np.float32)
                    if band and len(rows) > 1 else None)
        carry_out = np.zeros_like(carry_in) if carry_in is not None else None
        done = 0
        for r, (cy0, cy1) in enumerate(rows):
            first_row, last_row = r == 0, r == len(rows) - 1
            ky0 = cy0 - (0 if first_row else blend)
            ky1 = cy1 + (0 if last_row else blend)
            wy = _axis_weights(ky0 * s, ky1 * s, band, first_row, last_row)
            right_band: np.ndarray | None = None
            for c, (cx0, cx1) in enumerate(cols):
                if self.check_cancel is not None:
                    self.check_cancel()
                first_col, last_col = c == 0, c == len(cols) - 1
                kx0 = cx0 - (0 if first_col else blend)
                kx1 = cx1 + (0 if last_col else blend)
                acc = self.infer(ky0, ky1, kx0, kx1)
                if not acc.flags.writeable:
                    acc = acc.copy()
                # Weighted in place: the tile function's output is ours to overwrite.
                acc *= wy[:, None, None]
                acc *= _axis_weights(kx0 * s, kx1 * s, band, first_col, last_col)[None, :, None]
                kh, kw = acc.shape[:2]
                if right_band is not None:
                    acc[:, :band] += right_band
                ready_w = kw if last_col else kw - band
                right_band = None if last_col else acc[:, ready_w:].copy()
                cols_out = slice(kx0 * s, kx0 * s + ready_w)
                if not first_row and carry_in is not None:
                    acc[:band, :ready_w] += carry_in[:, cols_out]
                ready_h = kh if last_row else kh - band
                if not last_row and carry_out is not None:
                    carry_out[:, cols_out] = acc[ready_h:, :ready_w]
                out[ky0 * s:ky0 * s + ready_h, cols_out] = _quantise_inplace(
                    acc[:ready_h, :ready_w], out.dtype)
                del acc
                done += 1
                if progress is not None:
                    progress(done, total)
            carry_in, carry_out = carry_out, carry_in
        return total


def tile_process(
    src: np.ndarray,
    fn: TileFn,
    scale: int,
    *,
    out: np.ndarray | None = None,
    out_channels: int | None = None,
    tile: int = 512,
    pad: int = 16,
    blend: int = 8,
    min_tile: int = 16,
    progress: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
    align: int = 1,
) -> tuple[np.ndarray, TileStats]:
    """fn(src) computed in tiles of at most `tile` core pixels; returns (out, stats).

    `out` defaults to a new array of src's dtype with `out_channels` (default: src's).
    `pad` is the context each kept pixel gets (>= the model's receptive-field radius
    gives the full-frame result); `blend` is the half-width of the feather band between
    tiles. `min_tile` is the smallest core the out-of-memory fallback may use before
    giving up with `TilesExhausted`. `align` starts every model input on a multiple of
    it (in src coordinates): models with a fixed lattice (JPEG's 8x8 blocks, a UNet's
    stride-8 downsampling, 8x8 attention windows) then see every tile in the same phase
    as the whole image.
    """
    if src.ndim != 3:
        raise ValueError(f"src must be HxWxC, got shape {src.shape}")
    if np.dtype(src.dtype) not in _MAX_OF:
        raise ValueError(f"unsupported src type {src.dtype}")
    if scale < 1 or tile < 1 or pad < 0 or blend < 0 or align < 1:
        raise ValueError("scale, tile and align must be positive; pad and blend not negative")
    h, w = src.shape[:2]
    c_out = out_channels or (out.shape[2] if out is not None else src.shape[2])
    if out is None:
        out = np.empty((h * scale, w * scale, c_out), src.dtype)
    if out.shape != (h * scale, w * scale, c_out):
        raise ValueError(f"out has shape {out.shape}, expected {(h * scale, w * scale, c_out)}")
    if np.dtype(out.dtype) not in _MAX_OF:
        raise ValueError(f"unsupported out type {out.dtype}")
    runner = _Runner(src, fn, scale, c_out, pad, blend, max(1, min_tile), check_cancel, align)
    total = runner.run(out, tile, progress)
    return out, TileStats(total, runner.retries, runner.smallest)
