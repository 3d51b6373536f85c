"""Tiny random SD inpainting pipelines laid out as their Hugging Face repositories are:
plain and fp16 safetensors side by side, pickled copies, a safety checker, ONNX and Flax
leftovers, top-level single-file checkpoints. Only the safetensors are real weights;
the rest is junk bytes the bridge must never fetch.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

# What the bridge's pipelines need from each layout, listed by hand (tokenizer files are
# whatever the tokenizer saved, added by `needed_files`).
SD15_NEEDED = {
    "model_index.json", "feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json", "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors", "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
}
SDXL_NEEDED = {
    "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors", "text_encoder_2/config.json",
    "text_encoder_2/model.fp16.safetensors", "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
}


def needed_files(layout: Path, needed: set[str]) -> set[str]:
    tokenizers = {p.relative_to(layout).as_posix() for name in ("tokenizer", "tokenizer_2")
                  for p in (layout / name).glob("*") if p.is_file()}
    return needed | tokenizers


def _junk(path: Path, size: int = 2048) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def _add_fp16_variants(folder: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    for path in sorted(folder.rglob("*.safetensors")):
        tensors = load_file(str(path))
        half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(half, str(path.with_name(path.name.replace(".safetensors", ".fp16.safetensors"))))


def sd15_hub_layout(pipeline: Path, target: Path) -> Path:
    """stable-diffusion-v1-5/stable-diffusion-inpainting's layout around a tiny pipeline."""
    from transformers import CLIPImageProcessor

    shutil.copytree(pipeline, target)
    _add_fp16_variants(target)
    index = json.loads((target / "model_index.json").read_text())
    index.update(safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"],
                 feature_extractor=["transformers", "CLIPImageProcessor"],
                 requires_safety_checker=True)
    (target / "model_index.json").write_text(json.dumps(index, indent=2))
    CLIPImageProcessor().save_pretrained(target / "feature_extractor")
    (target / "safety_checker").mkdir()
    (target / "safety_checker" / "config.json").write_text("{}")
    for name in ("safety_checker/model.safetensors", "safety_checker/model.fp16.safetensors",
                 "safety_checker/pytorch_model.bin", "unet/diffusion_pytorch_model.bin",
                 "unet/diffusion_pytorch_model.fp16.bin",
                 "unet/diffusion_pytorch_model.non_ema.safetensors",
                 "vae/diffusion_pytorch_model.bin", "text_encoder/pytorch_model.bin",
                 "text_encoder/flax_model.msgpack", "onnx/unet/model.onnx",
                 "sd-v1-5-inpainting.ckpt", "sd-v1-5-inpainting.safetensors"):
        _junk(target / name)
    (target / "README.md").write_text("# model card\n")
    (target / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return target


def sdxl_hub_layout(pipeline: Path, target: Path) -> Path:
    """diffusers/stable-diffusion-xl-1.0-inpainting-0.1's layout around a tiny pipeline."""
    shutil.copytree(pipeline, target)
    _add_fp16_variants(target)
    for name in ("unet/diffusion_pytorch_model.bin", "text_encoder_2/pytorch_model.bin",
                 "sd_xl_base_1.0_inpainting_0.1.safetensors"):
        _junk(target / name)
    (target / "README.md").write_text("# model card\n")
    return target
