"""Does AI Fill cost what the selection costs, whatever the document size?

Runs `fill` on the same 512x512 selection in an 8000x6000 document and in a
1024x768 one, interleaved, in one process, and prints the time ratio (target:
at most 1.3) and the peak Python-heap ratio.

The model is a tiny random SD 1.5-style inpainting pipeline built here (real
diffusers code, random weights), because the point is where the time goes
around the model — crop, resize, colour match, paste-back — not the model's own
speed, which is the same in both cases. Run from the repository root:

    python bench/fill.py [--repeats 3] [--steps 4] [--depth 8|16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.registry import run_operation
from tests.inpaint.tiny import build_sd15_inpaint, photo_like


def document(width: int, height: int, depth: int) -> Image:
    """A photo-like document made by tiling a small one (cheap to build at 48 MP)."""
    tile = photo_like(750, 1000, depth=depth)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1)
    return Image(np.ascontiguousarray(np.tile(tile, reps)[:height, :width]))


def timed(image: Image, selection: Mask, params: dict) -> tuple[float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        run_operation("fill", image, selection, params)
        return time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--depth", type=int, choices=(8, 16), default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        print("model: a tiny random SD 1.5-style inpainting pipeline built for this bench "
              "(real diffusers code, random weights): it measures the work around the model")
        model = build_sd15_inpaint(Path(tmp) / "tiny-sd15")
        params = {"model": str(model), "steps": args.steps, "seed": 1, "preview_every": 0}
        small = document(1024, 768, args.depth)
        large = document(8000, 6000, args.depth)
        sel_small = Mask.rectangle(Bounds(256, 128, 512, 512))
        sel_large = Mask.rectangle(Bounds(3744, 2744, 512, 512))
        timed(small, sel_small, params)  # load the pipeline once, outside the measurement

        times: dict[str, list[float]] = {"small": [], "large": []}
        peaks: dict[str, list[int]] = {"small": [], "large": []}
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
            for name, image, sel in (("small", small, sel_small), ("large", large, sel_large)):
                seconds, peak = timed(image, sel, params)
                times[name].append(seconds)
                peaks[name].append(peak)

    t_small, t_large = statistics.median(times["small"]), statistics.median(times["large"])
    p_small, p_large = max(peaks["small"]), max(peaks["large"])
    print(f"selection 512x512, {args.depth}-bit, {args.steps} steps, median of {args.repeats}")
    print(f"  1024x768  document: {t_small:7.3f} s   peak heap {p_small / 1e6:7.1f} MB")
    print(f"  8000x6000 document: {t_large:7.3f} s   peak heap {p_large / 1e6:7.1f} MB")
    ratio = t_large / t_small
    print(f"time ratio 8000x6000 / 1024x768: {ratio:.2f} (target <= 1.3) "
          f"{'OK' if ratio <= 1.3 else 'OVER TARGET'}")
    print(f"peak heap ratio: {p_large / p_small:.2f}")
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
