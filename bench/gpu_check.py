"""GPU check: fp16 paths, forced out-of-memory paths and timings, on a CUDA machine.

Run through `bench/gpu_check.sh` (one call, well under ten minutes on a current GPU).
Every section is independent: one that fails prints why and the others still run.
It prints its figures as it goes and, with --json PATH, writes them all as JSON.

Sections:
  env        torch, the device, its memory; what the bridge picks ("auto")
  fp16       Real-ESRGAN Compact (the real realesr-animevideov3 weights when found,
             else the same architecture with random weights) and RRDBNet with
             RealESRGAN_x4plus's shape (random weights): the bridge loads them in fp16 on
             CUDA; fp16 vs fp32 agreement on one tile and forward throughput of each
  upscale    the `upscale` operation end to end (tiling, feathered blending, 8-bit out):
             output megapixels per second for both models at auto-sized tiles
  oom        the tile-halving path forced for real: the process's CUDA memory capped
             (torch.cuda.set_per_process_memory_fraction) under what a 2048 px tile
             needs, so the first tiles raise CUDA out-of-memory and are redone in
             halves; the output must match the uncapped run. Then a cap under what even
             the smallest tile needs: a clean 507 out_of_memory, and the bridge works
             again once the cap is lifted. And a tiny RB_MEMORY_BUDGET_MB: smaller tiles.
  fill       AI Fill with the full-size SD 1.5 inpainting architecture (random weights,
             fp16): a 512x512 selection in a 1024x768 and in a 6000x4000 document
             (time follows the selection), steps per second; a tiny memory budget turns
             the memory savers on; a real CUDA out-of-memory in the model retries once
             with the savers on
  sdxl       the same with the full-size SDXL inpainting architecture at 1024x1024

Weights are random where the real ones cannot travel: the point is the code paths
(dtype, memory, tiling) and the time per pixel, which do not depend on the weights.

    python bench/gpu_check.py [--quick] [--json out.json] [--only fp16,oom] [--models DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECTIONS = ("env", "fp16", "upscale", "oom", "fill", "sdxl")
FIGURES: dict[str, Any] = {}
STARTED = time.perf_counter()


def say(section: str, key: str, value: Any, note: str = "") -> None:
    FIGURES.setdefault(section, {})[key] = value
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"  {key:<34} {shown}{'  ' + note if note else ''}", flush=True)


def check(section: str, name: str, ok: bool, detail: str = "") -> None:
    FIGURES.setdefault(section, {}).setdefault("checks", {})[name] = ok
    print(f"  [{'PASS' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best of `repeat` wall times (the device synchronised around each), and the last value."""
    best, value = float("inf"), None
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        value = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, value


def photo(width: int, height: int, depth: int = 8) -> Any:
    """A real photograph (scikit-image's astronaut) resized: SR models see real structure."""
    import cv2
    import numpy as np
    from skimage import data

    pixels = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    if depth == 16:
        pixels = pixels.astype(np.uint16) * 257
    return np.ascontiguousarray(pixels)


def psnr(a: Any, b: Any, peak: float = 255.0) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(peak * peak / mse))


# -- setup ----------------------------------------------------------------------------------
class Setup:
    """A scratch RB_HOME with both SR models imported through the manager, as users do."""

    def __init__(self, home: Path, models_dir: Path | None, quick: bool) -> None:
        import torch
        from safetensors.torch import save_file
        from spandrel.architectures.Compact import Compact
        from spandrel.architectures.ESRGAN import ESRGAN

        from bridge.config import load_settings
        from bridge.models.manager import ModelManager

        os.environ["RB_HOME"] = str(home)
        self.quick = quick
        self.manager = ModelManager(load_settings())
        real = models_dir / "realesr-animevideov3.pth" if models_dir else None
        if real is not None and real.is_file():
            self.manager.import_file(real, as_id="realesr-animevideov3")
            self.compact_weights = "real (realesr-animevideov3.pth)"
        else:
            torch.manual_seed(0)
            net = Compact(num_feat=64, num_conv=16, upscale=4)  # animevideov3's shape
            path = home / "compact-random.safetensors"
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
            self.manager.import_file(path, as_id="realesr-animevideov3")
            self.compact_weights = "random, realesr-animevideov3's shape"
        torch.manual_seed(0)
        blocks, feats = (2, 16) if quick else (23, 64)
        rrdb = ESRGAN(num_filters=feats, num_blocks=blocks, scale=4)
        with torch.no_grad():  # random init is nearly flat: widen it around mid-grey
            rrdb.model[10].weight.mul_(4.0)
            rrdb.model[10].bias.fill_(0.5)
        path = home / "rrdb-random.safetensors"
        save_file({k: v.contiguous() for k, v in rrdb.state_dict().items()}, str(path))
        self.manager.import_file(path, as_id="RealESRGAN_x4plus")
        self.rrdb_weights = f"random, {blocks} blocks x {feats} features"

    def fresh_manager(self) -> Any:
        from bridge.config import load_settings
        from bridge.models.manager import ModelManager

        return ModelManager(load_settings())


def upscale(manager: Any, pixels: Any, model: str, tile: int = 0) -> Any:
    from bridge.imaging.image import Image
    from bridge.ops.base import OpContext
    from bridge.ops.registry import run_operation

    ctx = OpContext(models=manager)
    result = run_operation("upscale", Image(pixels), None,
                           {"model": model, "scale": 4, "tile": tile}, ctx)
    return result, ctx


# -- sections -------------------------------------------------------------------------------
def section_env(setup: Setup) -> None:
    import torch

    from bridge.device import device_info

    say("env", "torch", torch.__version__)
    say("env", "cuda available", torch.cuda.is_available())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        say("env", "device", props.name)
        say("env", "memory GiB", round(props.total_memory / 2**30, 1))
        say("env", "compute capability", f"{props.major}.{props.minor}")
    info = device_info("auto")
    say("env", "bridge picks", f"{info.get('device')} ({info.get('name')})")
    if torch.cuda.is_available():
        check("env", "the bridge picks CUDA when there is one", info.get("kind") == "cuda")
        check("env", "capabilities report fp16", info.get("fp16") is True)


def section_fp16(setup: Setup) -> None:
    import numpy as np
    import torch

    from bridge.models import runtime

    cuda = torch.cuda.is_available()
    side = 128 if setup.quick else 512
    tile = photo(side, side).astype(np.float32) / 255.0
    for model_id, weights in (("realesr-animevideov3", setup.compact_weights),
                              ("RealESRGAN_x4plus", setup.rrdb_weights)):
        print(f" {model_id} ({weights})")
        half = setup.manager.load(model_id)
        path = setup.manager.require(model_id)
        full = runtime.load_model(model_id, lambda p=path: runtime.read_state_dict(p),
                                  setup.manager.device, allow_half=False)
        say("fp16", f"{model_id} precision", half.precision)
        if cuda:
            check("fp16", f"{model_id} loads in fp16 on CUDA", half.precision == "float16")
        else:
            check("fp16", f"{model_id} stays fp32 off CUDA", half.precision == "float32")
        half(tile), full(tile)  # warm-up (cuDNN picks its kernels)
        t_half, out_half = timed(lambda m=half: m(tile), repeat=3)
        t_full, out_full = timed(lambda m=full: m(tile), repeat=3)
        a = np.clip(np.rint(out_half * 255), 0, 255)
        b = np.clip(np.rint(out_full * 255), 0, 255)
        agreement = psnr(a, b)
        mpix = out_full.shape[0] * out_full.shape[1] / 1e6
        say("fp16", f"{model_id} fp16 vs fp32 PSNR dB", round(agreement, 1),
            f"max |diff| {int(np.abs(a - b).max())} of 255")
        say("fp16", f"{model_id} fp16 output MP/s", round(mpix / t_half, 2))
        say("fp16", f"{model_id} fp32 output MP/s", round(mpix / t_full, 2))
        say("fp16", f"{model_id} fp16 speed-up", round(t_full / t_half, 2))
        check("fp16", f"{model_id} fp16 output finite and agrees with fp32 (PSNR > 40 dB)",
              bool(np.isfinite(out_half).all()) and agreement > 40)
        check("fp16", f"{model_id} kept its precision (no NaN fallback)",
              not half.fell_back_to_fp32)
        del full
        runtime.free_device_memory(setup.manager.device)


def section_upscale(setup: Setup) -> None:
    import numpy as np

    sizes = {"realesr-animevideov3": (320, 240) if setup.quick else (2000, 1500),
             "RealESRGAN_x4plus": (160, 120) if setup.quick else (1000, 750)}
    for model_id, (w, h) in sizes.items():
        pixels = photo(w, h)
        upscale(setup.manager, photo(96, 64), model_id)  # warm-up at the same precision
        seconds, (result, _) = timed(lambda p=pixels, m=model_id: upscale(setup.manager, p, m))
        out = result.primary.image.pixels
        meta = result.metadata
        mp = out.shape[0] * out.shape[1] / 1e6
        print(f" {model_id}: {w}x{h} -> {out.shape[1]}x{out.shape[0]} ({mp:.1f} MP), "
              f"tile {meta['tile']}, {meta['tiles']} tiles, {meta['precision']} on {meta['device']}")
        say("upscale", f"{model_id} seconds", round(seconds, 2))
        say("upscale", f"{model_id} output MP/s", round(mp / seconds, 2))
        check("upscale", f"{model_id} output is {4 * w}x{4 * h} uint8",
              out.shape == (4 * h, 4 * w, 3) and out.dtype == np.uint8)
        # 16-bit in, 16-bit out, through the same fp16 model
        deep, _ = upscale(setup.manager, photo(64, 48, depth=16), model_id)
        check("upscale", f"{model_id} 16-bit stays 16-bit",
              deep.primary.image.pixels.dtype == np.uint16)


def section_oom(setup: Setup) -> None:
    import numpy as np
    import torch

    from bridge.errors import OutOfMemory

    if not torch.cuda.is_available():
        print("  (skipped: needs CUDA to cap device memory)")
        return
    model_id = "RealESRGAN_x4plus"
    manager = setup.fresh_manager()
    side = 1024
    pixels = photo(side, side)
    reference, _ = upscale(manager, pixels, model_id, tile=256)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    # What a 2048 px tile would need is many GB; leave ~2.5 GB over what is held now.
    held = torch.cuda.memory_reserved()
    cap = held + (5 << 29)
    torch.cuda.set_per_process_memory_fraction(cap / total)
    try:
        seconds, (result, _) = timed(lambda: upscale(manager, pixels, model_id, tile=2048))
        meta = result.metadata
        say("oom", "capped at GiB", round(cap / 2**30, 2))
        say("oom", "tile asked", 2048)
        say("oom", "tiles run", meta["tiles"])
        say("oom", "out-of-memory retries", meta["oom_retries"])
        say("oom", "seconds", round(seconds, 2))
        out, ref = result.primary.image.pixels, reference.primary.image.pixels
        diff = int(np.abs(out.astype(np.int16) - ref.astype(np.int16)).max())
        check("oom", "real CUDA out-of-memory was hit and tiles were halved",
              meta["oom_retries"] > 0)
        # Tile edges move, so fp16 rounding differs there: seamless means within a few
        # levels (fp16 vs fp32 alone differs by up to 5 on this model), not bit-equal.
        close = diff <= 6 and psnr(out, ref) >= 50
        check("oom", "halved tiles give the same picture (max diff <= 6, PSNR >= 50 dB)", close,
              f"max diff {diff}, PSNR {psnr(out, ref):.1f} dB")
        # Under what even the smallest tile needs: a clean 507, nothing left behind.
        torch.cuda.empty_cache()
        floor = torch.cuda.memory_allocated() + (1 << 20)
        torch.cuda.set_per_process_memory_fraction(floor / total)
        try:
            upscale(manager, photo(512, 512), model_id, tile=2048)
            check("oom", "no memory at all is a clean out_of_memory (507)", False, "it ran")
        except OutOfMemory as e:
            check("oom", "no memory at all is a clean out_of_memory (507)", e.status == 507,
                  str(e)[:120])
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    again, _ = upscale(manager, photo(256, 256), model_id)
    check("oom", "works again once memory is back", again.primary.image.pixels.shape[0] == 1024)
    # A tiny configured budget: the bridge plans small tiles instead of failing.
    os.environ["RB_MEMORY_BUDGET_MB"] = "64"
    try:
        small, _ = upscale(setup.fresh_manager(), photo(512, 512), model_id)
    finally:
        del os.environ["RB_MEMORY_BUDGET_MB"]
    free, _ = upscale(setup.fresh_manager(), photo(512, 512), model_id)
    say("oom", "auto tile, free memory", free.metadata["tile"])
    say("oom", "auto tile, 64 MB budget", small.metadata["tile"])
    check("oom", "a 64 MB budget plans smaller tiles",
          small.metadata["tile"] < free.metadata["tile"])


# -- fill -----------------------------------------------------------------------------------
def build_pipeline(folder: Path, family: str, quick: bool) -> Path:
    """The real SD 1.5 / SDXL inpainting architecture with random weights, saved in fp16."""
    if quick:
        from tests.inpaint.tiny import build_sd15_inpaint, build_sdxl_inpaint

        return (build_sd15_inpaint if family == "sd15" else build_sdxl_inpaint)(folder)
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from tests.inpaint.tiny import _tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    tokenizer, vocab = _tokenizer(folder.parent / f"{folder.name}-tokenizer")
    ids = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
           "pad_token_id": vocab["<|endoftext|>"]}
    clip_l = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                            num_hidden_layers=12, num_attention_heads=12, projection_dim=768,
                            hidden_act="quick_gelu", **ids)
    vae_blocks = {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2,
                  "down_block_types": ("DownEncoderBlock2D",) * 4,
                  "up_block_types": ("UpDecoderBlock2D",) * 4, "latent_channels": 4}
    with torch.device(device):
        if family == "sd15":
            unet = diffusers.UNet2DConditionModel(sample_size=64, in_channels=9,
                                                  cross_attention_dim=768)
            pipe = diffusers.StableDiffusionInpaintPipeline(
                unet=unet, vae=diffusers.AutoencoderKL(sample_size=512, **vae_blocks),
                text_encoder=CLIPTextModel(clip_l), tokenizer=tokenizer,
                scheduler=diffusers.DDIMScheduler(steps_offset=1), safety_checker=None,
                feature_extractor=None, requires_safety_checker=False)
        else:
            tokenizer_2, _ = _tokenizer(folder.parent / f"{folder.name}-tokenizer-2")
            clip_g = CLIPTextConfig(vocab_size=49408, hidden_size=1280, intermediate_size=5120,
                                    num_hidden_layers=32, num_attention_heads=20,
                                    projection_dim=1280, hidden_act="gelu", **ids)
            unet = diffusers.UNet2DConditionModel(
                sample_size=128, in_channels=9, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                cross_attention_dim=2048, use_linear_projection=True,
                addition_embed_type="text_time", addition_time_embed_dim=256,
                projection_class_embeddings_input_dim=2816)
            pipe = diffusers.StableDiffusionXLInpaintPipeline(
                unet=unet, vae=diffusers.AutoencoderKL(sample_size=1024, **vae_blocks),
                text_encoder=CLIPTextModel(clip_l),
                text_encoder_2=CLIPTextModelWithProjection(clip_g), tokenizer=tokenizer,
                tokenizer_2=tokenizer_2, scheduler=diffusers.EulerDiscreteScheduler(steps_offset=1),
                requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
    pipe.to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True, variant="fp16")
    del pipe, unet
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return folder


def fill(model: Path, image: Any, selection: Any, steps: int, **extra: Any) -> tuple[Any, Any]:
    from bridge.config import load_settings
    from bridge.models.manager import ModelManager
    from bridge.ops.base import OpContext
    from bridge.ops.registry import run_operation

    ctx = OpContext(models=ModelManager(load_settings()))
    params = {"model": str(model), "steps": steps, "seed": 3, "preview_every": 0,
              "prompt": "clear blue sky", **extra}
    return run_operation("fill", image, selection, params, ctx), ctx


def run_fill(family: str, setup: Setup, tmp: Path) -> None:
    import numpy as np
    import torch

    from bridge.diffusion import loader
    from bridge.imaging.geometry import Bounds
    from bridge.imaging.image import Image
    from bridge.imaging.mask import Mask

    section = family if family == "sdxl" else "fill"
    build_s, folder = timed(lambda: build_pipeline(tmp / f"{family}-random", family, setup.quick))
    say(section, "build + save seconds", round(build_s, 1))
    steps = 4 if setup.quick else 20
    sel = 128 if setup.quick else (512 if family == "sd15" else 1024)
    small = Image(photo(1024, 768) if sel < 768 else photo(1600, 1200))
    big_w, big_h = (1600, 1200) if setup.quick else (6000, 4000)
    big = Image(np.ascontiguousarray(np.tile(small.pixels, (-(-big_h // small.height),
                                                            -(-big_w // small.width), 1))
                                     [:big_h, :big_w]))
    s_small = Mask.rectangle(Bounds(200, 150, sel, sel))
    s_big = Mask.rectangle(Bounds(big_w // 2, big_h // 2, sel, sel))
    fill(folder, small, s_small, 2)  # load, and a first run at each shape
    fill(folder, big, s_big, 2)
    (cached,) = loader._cached.values()
    say(section, "pipeline dtype", str(cached.dtype).replace("torch.", ""))
    if torch.cuda.is_available():
        check(section, "the pipeline runs in fp16 on CUDA", cached.dtype == torch.float16)
        torch.cuda.reset_peak_memory_stats()
    runs: dict[str, list[float]] = {"small": [], "big": []}
    for _ in range(1 if setup.quick else 3):  # interleaved: drift hits both alike
        t_small, (r_small, _) = timed(lambda: fill(folder, small, s_small, steps))
        t_big, (r_big, _) = timed(lambda: fill(folder, big, s_big, steps))
        runs["small"].append(t_small)
        runs["big"].append(t_big)
    t_small, t_big = statistics.median(runs["small"]), statistics.median(runs["big"])
    w, h = r_small.metadata["working_size"]
    wb, hb = r_big.metadata["working_size"]
    say(section, "working size", f"{w}x{h} (big document: {wb}x{hb})")
    say(section, f"{small.width}x{small.height} doc seconds", round(t_small, 2))
    say(section, f"{big_w}x{big_h} doc seconds", round(t_big, 2))
    say(section, "steps per second", round(steps / t_small, 2))
    say(section, "time ratio big/small document", round(t_big / t_small, 2), "(target <= 1.3)")
    if torch.cuda.is_available():
        say(section, "peak CUDA memory GiB", round(torch.cuda.max_memory_allocated() / 2**30, 2))
    layer = r_big.primary
    pixels = layer.image.pixels
    check(section, "fill output finite and placed at the selection",
          bool(np.isfinite(pixels.astype(np.float32)).all())
          and layer.bounds.contains(s_big.bounds))
    check(section, "time follows the selection (ratio <= 1.3)", t_big / t_small <= 1.3)
    if family != "sd15":
        return
    # A tiny budget: attention slicing and VAE tiling on, working size down.
    os.environ["RB_MEMORY_BUDGET_MB"] = "256"
    try:
        t_saving, (r_saving, _) = timed(lambda: fill(folder, small, s_small, steps))
    finally:
        del os.environ["RB_MEMORY_BUDGET_MB"]
    w2, h2 = r_saving.metadata["working_size"]
    say(section, "256 MB budget: working size", f"{w2}x{h2}")
    say(section, "256 MB budget: seconds", round(t_saving, 2))
    check(section, "a tiny budget turns the memory savers on", r_saving.metadata["memory_saving"])
    if not torch.cuda.is_available():
        return
    # A real CUDA out-of-memory inside the model: memory capped 1.5 GB over the weights,
    # a 1536x1536 working size (its VAE decode alone needs more), then the retry at a
    # quarter of the pixels with VAE tiling and attention slicing must fit.
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    cap = torch.cuda.memory_allocated() + (3 << 29)
    torch.cuda.set_per_process_memory_fraction(cap / total)
    try:
        (r_oom, ctx) = fill(folder, small, s_small, steps, working_size=1536)
        retried = any("ran out of memory" in w for w in ctx.warnings)
        w3, h3 = r_oom.metadata["working_size"]
        say(section, "capped: working size after retry", f"{w3}x{h3}")
        check(section, "a CUDA out-of-memory in the model retries with the savers on",
              retried and r_oom.metadata["memory_saving"])
    except Exception as e:  # reported, not fatal: the cap may be too tight for the retry
        check(section, "a CUDA out-of-memory in the model retries with the savers on", False,
              f"{type(e).__name__}: {str(e)[:160]}")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def section_fill(setup: Setup, tmp: Path) -> None:
    run_fill("sd15", setup, tmp)


def section_sdxl(setup: Setup, tmp: Path) -> None:
    from bridge.diffusion import loader

    loader.unload_all()
    run_fill("sdxl", setup, tmp)
    loader.unload_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (try it on a CPU)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--models", type=Path, default=Path(os.environ.get(
        "RB_GPU_MODELS", ROOT.parent / "shared" / "models")),
        help="folder with realesr-animevideov3.pth (else random weights)")
    parser.add_argument("--deadline", type=float, default=540,
                        help="seconds after which remaining sections are skipped")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(SECTIONS)
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        setup = Setup(tmp / "home", args.models, args.quick)
        runners: dict[str, Callable[[], None]] = {
            "env": lambda: section_env(setup), "fp16": lambda: section_fp16(setup),
            "upscale": lambda: section_upscale(setup), "oom": lambda: section_oom(setup),
            "fill": lambda: section_fill(setup, tmp), "sdxl": lambda: section_sdxl(setup, tmp)}
        for name in wanted:
            elapsed = time.perf_counter() - STARTED
            if elapsed > args.deadline:
                print(f"== {name}: skipped, {elapsed:.0f} s past the deadline", flush=True)
                continue
            print(f"== {name}", flush=True)
            start = time.perf_counter()
            try:
                runners[name]()
            except Exception:
                failed.append(name)
                print(f"  section {name} FAILED:\n{traceback.format_exc()[-2500:]}", flush=True)
            FIGURES.setdefault(name, {})["seconds"] = round(time.perf_counter() - start, 1)
    bad = [f"{s}: {c}" for s, figs in FIGURES.items()
           for c, ok in figs.get("checks", {}).items() if not ok]
    print(f"== done in {time.perf_counter() - STARTED:.0f} s; "
          f"{len(bad)} failed checks, {len(failed)} failed sections", flush=True)
    for line in bad:
        print(f"  FAIL {line}")
    if args.json:
        args.json.write_text(json.dumps(FIGURES, indent=2, default=str))
    return 1 if bad or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
