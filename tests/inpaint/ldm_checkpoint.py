"""Write a diffusers SD 1.x pipeline as one original-layout (LDM) checkpoint, as A1111/civitai
files are laid out, so tests can load a single-file model through from_single_file.

Written here from the layout of the original Stable Diffusion code (input_blocks /
middle_block / output_blocks, first_stage_model, cond_stage_model); it covers the
block types SD 1.x uses, which is all the tiny test models use.
"""

from __future__ import annotations

import json
from pathlib import Path

_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_UNET_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"),
                ("conv_shortcut", "skip_connection"))
_VAE_FIXED = {"conv_norm_out": "norm_out"}
_VAE_ATTENTION = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                  ("to_out.0", "proj_out"))


def _resnet(rest: str, renames: tuple[tuple[str, str], ...]) -> str:
    head, _, leaf = rest.rpartition(".")
    for new, old in renames:
        if head == new:
            return f"{old}.{leaf}"
    return rest


def unet_key(key: str, per_block: int, up_attention: dict[int, bool]) -> str:
    parts = key.split(".")
    head, leaf = ".".join(parts[:-1]), parts[-1]
    if head in _UNET_FIXED:
        return f"{_UNET_FIXED[head]}.{leaf}"
    if parts[0] == "down_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * (per_block + 1)}.0.op.{leaf}"
        index = 1 + block * (per_block + 1) + int(parts[3])
        rest = ".".join(parts[4:])
        return (f"input_blocks.{index}.0.{_resnet(rest, _UNET_RESNET)}" if kind == "resnets"
                else f"input_blocks.{index}.1.{rest}")
    if parts[0] == "mid_block":
        rest = ".".join(parts[3:])
        if parts[1] == "resnets":
            return f"middle_block.{0 if parts[2] == '0' else 2}.{_resnet(rest, _UNET_RESNET)}"
        return f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":
            index = block * (per_block + 1) + per_block
            return f"output_blocks.{index}.{2 if up_attention[block] else 1}.conv.{leaf}"
        index = block * (per_block + 1) + int(parts[3])
        rest = ".".join(parts[4:])
        return (f"output_blocks.{index}.0.{_resnet(rest, _UNET_RESNET)}" if kind == "resnets"
                else f"output_blocks.{index}.1.{rest}")
    raise KeyError(f"no original-layout name for UNet key {key}")


def vae_key(key: str, blocks: int) -> str:
    parts = key.split(".")
    side = parts[0]
    if side not in ("encoder", "decoder"):
        return key  # quant_conv, post_quant_conv
    head, leaf = ".".join(parts[1:-1]), parts[-1]
    if len(parts) == 3:
        return f"{side}.{_VAE_FIXED.get(head, head)}.{leaf}"
    kind = parts[1]
    if kind in ("down_blocks", "up_blocks"):
        block = int(parts[2])
        level = block if kind == "down_blocks" else blocks - 1 - block
        name = "down" if kind == "down_blocks" else "up"
        if parts[3] in ("downsamplers", "upsamplers"):
            return f"{side}.{name}.{level}.{'downsample' if name == 'down' else 'upsample'}.conv.{leaf}"
        rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
        return f"{side}.{name}.{level}.block.{parts[4]}.{rest}"
    if kind == "mid_block":
        if parts[2] == "resnets":
            rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[3]) + 1}.{rest}"
        rest = ".".join(parts[4:])
        for new, old in _VAE_ATTENTION:
            if rest.startswith(new + "."):
                rest = old + rest[len(new):]
        return f"{side}.mid.attn_1.{rest}"
    raise KeyError(f"no original-layout name for VAE key {key}")


def write_sd15_single_file(pipe_folder: Path, out: Path) -> Path:
    """The folder's UNet, VAE and text encoder in one .safetensors, original key names."""
    import torch
    from safetensors.torch import load_file, save_file

    config = json.loads((pipe_folder / "unet" / "config.json").read_text())
    per_block = config["layers_per_block"]
    up_attention = {i: t.startswith("CrossAttn") for i, t in enumerate(config["up_block_types"])}
    vae_blocks = len(json.loads((pipe_folder / "vae" / "config.json").read_text())["down_block_types"])
    tensors: dict[str, torch.Tensor] = {}
    for key, value in load_file(str(pipe_folder / "unet" / "diffusion_pytorch_model.safetensors")).items():
        tensors["model.diffusion_model." + unet_key(key, per_block, up_attention)] = value
    for key, value in load_file(str(pipe_folder / "vae" / "diffusion_pytorch_model.safetensors")).items():
        name = vae_key(key, vae_blocks)
        if ".mid.attn_1." in name and name.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            value = value[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        tensors["first_stage_model." + name] = value
    for key, value in load_file(str(pipe_folder / "text_encoder" / "model.safetensors")).items():
        # transformers 5 saves CLIPTextModel without its `text_model.` level; originals have it
        name = key if key.startswith("text_model.") else "text_model." + key
        tensors["cond_stage_model.transformer." + name] = value
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out))
    return out
