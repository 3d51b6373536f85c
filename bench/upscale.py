"""Upscale benchmark: our tiled `upscale` against a full-frame forward, side by side.

Prints, measured in one run on this machine:
  (a) time and peak RSS of the tiled `upscale` operation vs one full-frame forward of the
      same model on the same input (how RealESRGANer with tile=0 and most scripts do it),
      as ratios, for realesr-animevideov3 (real weights from ../shared/models) and a
      random-weight RRDBNet with RealESRGAN_x4plus's shape (23 blocks, 64 features);
  (b) peak RSS of a 6000x4000 image upscaled x4 with the Compact model (target < 2.5 GB;
      the 8-bit output alone is 1.15 GB), and how long it took;
  (c) output megapixels per second of every run.

Every measurement runs in a fresh Python process that reports its own peak RSS (VmHWM)
and wall time, so one case cannot inflate another's figures. The baseline RSS (torch,
spandrel and the model loaded, input in memory) is printed too.

    python bench/upscale.py                 # full run (the 6000x4000 case takes long on CPU)
    python bench/upscale.py --quick         # small sizes, a minute or two
    python bench/upscale.py --big 3000x2000 # another size for (b)
    python bench/upscale.py --skip-big
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RB_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def make_input(width: int, height: int):
    import cv2
    import numpy as np
    from skimage import data

    photo = data.astronaut()
    return np.ascontiguousarray(cv2.resize(photo, (width, height),
                                           interpolation=cv2.INTER_CUBIC))


# -- child: one measurement ------------------------------------------------------------------
def child(spec: dict) -> dict:
    import numpy as np
    import torch

    from bridge.config import load_settings
    from bridge.imaging.image import Image
    from bridge.models.manager import ModelManager
    from bridge.ops.base import OpContext
    from bridge.ops.registry import run_operation

    manager = ModelManager(load_settings())
    loaded = manager.load(spec["model"])
    pixels = make_input(spec["width"], spec["height"])
    baseline = status_kb("VmRSS")
    start = time.perf_counter()
    if spec["mode"] == "tiled":
        result = run_operation("upscale", Image(pixels), None,
                               {"model": spec["model"], "scale": 4, "tile": spec["tile"]},
                               OpContext(models=manager))
        out = result.primary.image.pixels
        extra = {"tile": result.metadata["tile"], "tiles": result.metadata["tiles"]}
    else:
        # What RealESRGANer does with tile=0: the whole image as one float tensor.
        x = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255.0)[None]
        with torch.inference_mode():
            y = loaded.descriptor(x)
            y = y.squeeze(0).float().clamp_(0, 1).numpy().transpose(1, 2, 0)
        out = (y * 255.0).round().astype(np.uint8)
        extra = {}
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_kb": status_kb("VmHWM"), "baseline_kb": baseline,
            "out_pixels": int(out.shape[0] * out.shape[1]),
            "out_shape": list(out.shape), **extra}


# -- parent ---------------------------------------------------------------------------------
def prepare(home: Path) -> None:
    """Install both models into a scratch RB_HOME (done in a child: keeps us light)."""
    code = r"""
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from spandrel.architectures.ESRGAN import ESRGAN
from bridge.config import load_settings
from bridge.models.manager import ModelManager
m = ModelManager(load_settings())
m.import_file(Path(sys.argv[1]), as_id="realesr-animevideov3")
torch.manual_seed(0)
rrdb = ESRGAN(num_filters=64, num_blocks=23, scale=4)  # RealESRGAN_x4plus's shape
path = Path(sys.argv[2])
save_file({k: v.contiguous() for k, v in rrdb.state_dict().items()}, str(path))
m.import_file(path, as_id="RealESRGAN_x4plus")
"""
    env = {**os.environ, "RB_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", code, str(SHARED / "models" / "realesr-animevideov3.pth"),
                    str(home / "random-rrdb.safetensors")], check=True, env=env, cwd=ROOT)


def measure(home: Path, **spec) -> dict:
    env = {**os.environ, "RB_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"measurement {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mb(kb: int) -> str:
    return f"{kb / 1024:7.0f} MB"


def line(label: str, r: dict) -> str:
    mps = r["out_pixels"] / 1e6 / r["seconds"]
    tiles = f"  tile {r['tile']} ({r['tiles']} tiles)" if "tile" in r else ""
    return (f"  {label:<11} {r['seconds']:8.1f} s  peak RSS {mb(r['peak_kb'])}  "
            f"(baseline {mb(r['baseline_kb'])}, +{mb(r['peak_kb'] - r['baseline_kb']).strip()})"
            f"  {mps:6.3f} output MP/s{tiles}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--big", default="6000x4000", help="size for (b), WxH")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if not (SHARED / "models" / "realesr-animevideov3.pth").exists():
        raise SystemExit(f"needs {SHARED}/models/realesr-animevideov3.pth")
    compact_size = (256, 192) if args.quick else (1024, 768)
    # RRDB tiles carry 56 px of context a side (see runtime.DEEP_PAD): the full run uses
    # the automatic tile size on an image a little larger than one tile.
    rrdb_size, rrdb_tile = ((128, 96), 64) if args.quick else ((400, 300), 0)
    big = (1500, 1000) if args.quick and args.big == "6000x4000" else tuple(
        int(v) for v in args.big.lower().split("x"))

    print(f"upscale benchmark  cpu cores: {os.cpu_count()}  load average at start: "
          f"{os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="rb-bench-") as tmp:
        home = Path(tmp)
        prepare(home)
        print("\n(a) tiled `upscale` vs a full-frame forward, same model, same input, x4")
        cases = [("realesr-animevideov3 (real weights)", "realesr-animevideov3", compact_size, 0),
                 ("random RRDB, RealESRGAN_x4plus shape", "RealESRGAN_x4plus", rrdb_size,
                  rrdb_tile)]
        for title, model, (w, h), tile in cases:
            print(f" {title}, {w}x{h} -> {4 * w}x{4 * h}")
            full = measure(home, model=model, mode="full", width=w, height=h, tile=tile)
            print(line("full frame", full))
            tiled = measure(home, model=model, mode="tiled", width=w, height=h, tile=tile)
            print(line("tiled", tiled))
            working = ((tiled["peak_kb"] - tiled["baseline_kb"])
                       / max(1, full["peak_kb"] - full["baseline_kb"]))
            print(f"  ratio tiled/full: time {tiled['seconds'] / full['seconds']:.2f}x, "
                  f"peak RSS {tiled['peak_kb'] / full['peak_kb']:.2f}x, "
                  f"working memory (peak - baseline) {working:.2f}x")
        if not args.skip_big:
            w, h = big
            print(f"\n(b) {w}x{h} -> {4 * w}x{4 * h} with realesr-animevideov3 (Compact), "
                  "tiled `upscale`, automatic tile size")
            r = measure(home, model="realesr-animevideov3", mode="tiled", width=w, height=h,
                        tile=0)
            out_gb = r["out_pixels"] * 3 / 1e9
            print(line("tiled", r))
            print(f"  peak RSS {r['peak_kb'] * 1024 / 1e9:.2f} GB (target < 2.5 GB for "
                  f"6000x4000; the 8-bit output alone is {out_gb:.2f} GB); took "
                  f"{r['seconds'] / 60:.1f} min")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f} (other work on this machine "
          "slows every figure alike; compare the ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
