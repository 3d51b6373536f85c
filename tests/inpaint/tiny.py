"""Tiny real models built in code: diffusers inpainting pipelines, LaMa, a u2net-shaped ONNX.

The architectures are the real ones (diffusers' UNet2DConditionModel with 9 input
channels, AutoencoderKL with 8x downsampling, CLIP text encoders, a CLIP BPE
tokenizer from vocab/merges files written here; spandrel's LaMa), only smaller
and with random weights, so tests run the real code paths in seconds and never
touch a hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def write_clip_tokenizer_files(folder: Path) -> tuple[Path, Path, dict[str, int]]:
    """A small but complete CLIP BPE vocabulary: every byte, word ends, a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for ch in _byte_alphabet():
        vocab[ch] = len(vocab)
    for ch in _byte_alphabet():
        vocab[ch + "</w>"] = len(vocab)
    merges = ["t h", "th e</w>", "s k", "sk y</w>", "r e", "re d</w>"]
    for m in merges:
        vocab["".join(m.split())] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file, vocab


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    vocab_file, merges_file, vocab = write_clip_tokenizer_files(folder)
    return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77), vocab


def _text_encoder(vocab: dict[str, int], with_projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"], vocab_size=len(vocab), hidden_size=32,
        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32,
        hidden_act="gelu",
    )
    return CLIPTextModelWithProjection(config) if with_projection else CLIPTextModel(config)


def _vae():
    from diffusers import AutoencoderKL

    # Four blocks: the same 8x downsampling as the real SD VAE, in a few kilobytes.
    return AutoencoderKL(
        block_out_channels=(8, 8, 8, 8), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=4, sample_size=64,
    )


def build_sd15_inpaint(folder: Path, seed: int = 0) -> Path:
    """A tiny SD 1.5-style inpainting pipeline saved with save_pretrained; returns the folder."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer, vocab = _tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=8,
        attention_head_dim=4,
    )
    pipe = StableDiffusionInpaintPipeline(
        unet=unet, vae=_vae(), text_encoder=_text_encoder(vocab), tokenizer=tokenizer,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_sdxl_inpaint(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL-style inpainting pipeline (two text encoders, text_time conditioning)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer, vocab = _tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    tokenizer_2, _ = _tokenizer(folder.parent / f"{folder.name}-tokenizer-2-src")
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        # six size/crop numbers of 8 each, plus the pooled text embedding (32)
        projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64, norm_num_groups=8,
    )
    pipe = StableDiffusionXLInpaintPipeline(
        unet=unet, vae=_vae(), text_encoder=_text_encoder(vocab),
        text_encoder_2=_text_encoder(vocab, with_projection=True), tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, scheduler=EulerDiscreteScheduler(steps_offset=1),
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def write_peft_lora(pipe_folder: Path, out: Path, rank: int = 4, seed: int = 1,
                    scale: float = 0.5) -> Path:
    """A diffusers/PEFT-style LoRA (lora_A/lora_B) for every attention projection of the tiny UNet."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(pipe_folder, subfolder="unet", local_files_only=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in unet.named_modules():
        if name.endswith(("attn1.to_q", "attn1.to_v", "attn2.to_k", "attn2.to_out.0")):
            out_f, in_f = module.weight.shape
            tensors[f"unet.{name}.lora_A.weight"] = torch.randn(rank, in_f, generator=gen) * scale
            tensors[f"unet.{name}.lora_B.weight"] = torch.randn(out_f, rank, generator=gen) * scale
    save_file(tensors, str(out))
    return out


def write_kohya_lora(pipe_folder: Path, out: Path, rank: int = 4, seed: int = 2) -> Path:
    """A kohya-ss style LoRA (lora_unet_*_to_q.lora_down/up + alpha) for the tiny SD 1.5 UNet."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(pipe_folder, subfolder="unet", local_files_only=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in unet.named_modules():
        if name.endswith(("attn1.to_q", "attn2.to_v")):
            out_f, in_f = module.weight.shape
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"] = torch.randn(rank, in_f, generator=gen)
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_f, rank, generator=gen)
            tensors[f"{key}.alpha"] = torch.tensor(float(rank) / 2)
    save_file(tensors, str(out))
    return out


def write_tiny_lama(out: Path, seed: int = 0) -> Path:
    """spandrel's LaMa (its constructor has no size knobs: the full 51M-parameter net), random
    weights, stored in fp16 under LaMa's official key names so spandrel detects it."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(seed)
    model = LaMa(in_nc=4, out_nc=3)
    state = {f"generator.{k[len('model.'):]}" if k.startswith("model.") else k:
             (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    save_file(state, str(out))
    return out


def write_u2net_like_onnx(out: Path, size: int = 320, seed: int = 0) -> Path:
    """A small conv net with u2net's interface: input (1, 3, S, S) float, first output (1, 1, S, S).

    Its matte is a smooth function of brightness, so bright objects on a dark ground
    come out as foreground, which tests can check.
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 3, padding=1)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[:, :, 1, 1] = 2.0
                self.conv.bias.fill_(0.0)

        def forward(self, x):
            d0 = torch.sigmoid(self.conv(x))
            return d0, d0

    torch.manual_seed(seed)
    net = Net().eval()
    # Height and width are dynamic so the file also serves sessions that feed 1024x1024.
    axes = {"input.1": {2: "h", 3: "w"}, "d0": {2: "h", 3: "w"}, "d1": {2: "h", 3: "w"}}
    torch.onnx.export(net, (torch.rand(1, 3, size, size),), str(out), input_names=["input.1"],
                      output_names=["d0", "d1"], opset_version=17, dynamo=False, dynamic_axes=axes)
    return out


def photo_like(height: int, width: int, depth: int = 8, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: a cheap picture whose every pixel differs from its neighbours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(1, width - 1), yy / max(1, height - 1),
                     0.5 + 0.5 * np.sin(xx / 37.0) * np.cos(yy / 23.0),
                     np.full_like(xx, 0.8)], axis=-1)[:, :, :channels]
    noisy = np.clip(base * 0.9 + rng.random(base.shape, dtype=np.float32) * 0.1, 0, 1)
    top = 255 if depth == 8 else 65535
    return np.rint(noisy * top).astype(np.uint8 if depth == 8 else np.uint16)
