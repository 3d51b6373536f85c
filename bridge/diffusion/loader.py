"""Build an inpainting pipeline from local files, on the right device and precision; keep one.

Every diffusers call passes local_files_only=True, and single files always get an
explicit local `config` folder: without one, diffusers' from_single_file would go
and fetch configs from the hub even when told to stay local.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.diffusion.lora import LoraState
from bridge.diffusion.source import DiffusionSource
from bridge.errors import ModelError
from bridge.models.resident import KeyedCache, configured_budget, module_bytes

PIPELINE_CLASS = {"sd15": "StableDiffusionInpaintPipeline", "sdxl": "StableDiffusionXLInpaintPipeline"}
# Native working side of each family (its pixel budget is this squared).
NATIVE_SIDE = {"sd15": 512, "sdxl": 1024}
# Peak activation bytes per working pixel at fp16, without and with memory savers
# (VAE tiling); fp32 doubles them. Deliberate over-estimates.
BYTES_PER_PIXEL = {"sd15": (6_000, 2_500), "sdxl": (8_000, 3_000)}


@dataclass
class LoadedPipeline:
    pipe: Any
    source: DiffusionSource
    device: str
    dtype: Any
    base_scheduler: Any
    lora: LoraState = field(default_factory=LoraState)
    memory_saving: bool = False
    attention_sliced: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def family(self) -> str:
        return self.source.family

    def bytes_per_pixel(self, saving: bool) -> int:
        import torch

        full, saved = BYTES_PER_PIXEL[self.family]
        per = saved if saving else full
        return per if self.dtype == torch.float16 else per * 2

    def use_memory_saving(self, on: bool) -> None:
        """VAE tiling (and attention slicing where torch lacks fused attention): slower,
        much less peak memory.

        torch 2's scaled_dot_product_attention already runs in memory-efficient blocks;
        diffusers' attention slicing swaps it for a full score matrix per slice, which
        needs MORE memory (seen on an H200 capped at 1.5 GB: a 636 MB slice at 768x768
        ran out where fused attention fit), so it is used only without fused attention.
        """
        if on == self.memory_saving:
            return
        if on:
            if not fused_attention():
                self.pipe.enable_attention_slicing()
                self.attention_sliced = True
            self.pipe.vae.enable_tiling()
        else:
            if self.attention_sliced:
                self.pipe.disable_attention_slicing()
                self.attention_sliced = False
            self.pipe.vae.disable_tiling()
        self.memory_saving = on


def fused_attention() -> bool:
    import torch.nn.functional as F

    return hasattr(F, "scaled_dot_product_attention")


def torch_dtype_for(device: str) -> Any:
    import torch

    # fp16 where it is fast and well supported; the CPU (and MPS, to be safe) use fp32.
    return torch.float16 if device.startswith("cuda") else torch.float32


def _weights_variant(folder: Path) -> str | None:
    """'fp16' when a folder only has fp16-variant weights (a common hub layout)."""
    unet = folder / "unet"
    if not unet.is_dir():
        return None
    names = [p.name for p in unet.iterdir()]
    plain = any(n.startswith("diffusion_pytorch_model.") and ".fp16." not in n for n in names)
    fp16 = any(".fp16." in n for n in names)
    return "fp16" if fp16 and not plain else None


def _unet_in_channels(path: Path) -> int | None:
    """Input channels of a single-file checkpoint's UNet (9 for inpainting models, else 4)."""
    key = "model.diffusion_model.input_blocks.0.0.weight"
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            return f.get_slice(key).get_shape()[1] if key in names else None
    return None


def _build(source: DiffusionSource, dtype: Any) -> Any:
    import diffusers

    cls = getattr(diffusers, PIPELINE_CLASS[source.family])
    extra: dict[str, Any] = {}
    if source.family == "sd15":
        # A retouching tool edits the user's own photos; the NSFW checker would black them out.
        extra.update(safety_checker=None, requires_safety_checker=False)
    if not source.single_file:
        return cls.from_pretrained(str(source.path), torch_dtype=dtype, local_files_only=True,
                                   variant=_weights_variant(source.path), **extra)
    assert source.config_dir is not None
    config = str(source.config_dir)
    channels = _unet_in_channels(source.path)
    unet_config = diffusers.UNet2DConditionModel.load_config(config, subfolder="unet",
                                                             local_files_only=True)
    if channels is not None and channels != unet_config["in_channels"]:
        # An inpainting checkpoint with a plain model's configs, or the other way round.
        extra["unet"] = diffusers.UNet2DConditionModel.from_single_file(
            str(source.path), config=config, subfolder="unet", in_channels=channels,
            local_files_only=True, torch_dtype=dtype)
    return cls.from_single_file(str(source.path), config=config, local_files_only=True,
                                torch_dtype=dtype, **extra)


# One pipeline at a time (they take gigabytes), in the process's resident-model registry
# with every other kind, under the shared memory budget.
_cached = KeyedCache("diffusion", configured_budget, one_at_a_time=True)


def _cache_key(source: DiffusionSource, device: str) -> tuple[str, float, str, str]:
    return (str(source.path), source.path.stat().st_mtime, str(source.config_dir), device)


def pipeline_bytes(pipe: Any) -> int:
    """Weights of every torch module of a pipeline (UNet, VAE, text encoders)."""
    import torch

    return module_bytes(*[c for c in pipe.components.values() if isinstance(c, torch.nn.Module)])


def load_pipeline(source: DiffusionSource, device: str) -> LoadedPipeline:
    """The pipeline for these files on this device; the last one stays loaded (one at a time)."""

    def build() -> LoadedPipeline:
        dtype = torch_dtype_for(device)
        try:
            pipe = _build(source, dtype)  # in CPU memory, at its working precision
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            raise ModelError(f"could not load '{source.label or source.path}' as a "
                             f"{source.family.upper()} inpainting model: {e}") from e
        _cached.make_room(pipeline_bytes(pipe), device)
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return LoadedPipeline(pipe, source, device, dtype, pipe.scheduler)

    return _cached.load(_cache_key(source, device), build, label=source.label or source.path.name,
                        device=device, measure=lambda loaded: pipeline_bytes(loaded.pipe))


def unload_all() -> None:
    _cached.drop(lambda key: True)
