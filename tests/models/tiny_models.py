"""Tiny, randomly initialised models of the real architectures, saved like the real files.

Each builder returns the checkpoint dict exactly as the official release lays it out
(Real-ESRGAN's basicsr key names under `params_ema` / `params`, KAIR's bare state dicts,
...), so loading them exercises the same detection path as the real weights.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def compact(num_conv: int = 2, num_feat: int = 8, scale: int = 4, seed: int = 0,
            in_ch: int = 3) -> dict[str, Any]:
    """SRVGGNetCompact like realesr-animevideov3.pth: weights under 'params'."""
    from spandrel.architectures.Compact import Compact

    _seeded(seed)
    model = Compact(num_in_ch=in_ch, num_out_ch=in_ch, num_feat=num_feat, num_conv=num_conv,
                    upscale=scale)
    with torch.no_grad():
        # Small residual on top of the nearest-upsampled input: outputs stay in range.
        last = model.body[-1]
        last.weight.mul_(0.3)
    return {"params": {k: v.clone() for k, v in model.state_dict().items()}}


_RRDB_NAMES = [
    (re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$"),
     r"body.\1.rdb\2.conv\3.\4"),
    (re.compile(r"^model\.0\.(weight|bias)$"), r"conv_first.\1"),
    (re.compile(r"^model\.3\.(weight|bias)$"), r"conv_up1.\1"),
    (re.compile(r"^model\.6\.(weight|bias)$"), r"conv_up2.\1"),
    (re.compile(r"^model\.8\.(weight|bias)$"), r"conv_hr.\1"),
    (re.compile(r"^model\.10\.(weight|bias)$"), r"conv_last.\1"),
]


def rrdb(num_blocks: int = 1, num_feat: int = 8, scale: int = 4, seed: int = 0) -> dict[str, Any]:
    """RRDBNet like RealESRGAN_x4plus.pth / x2plus.pth: basicsr names under 'params_ema'.

    x2 models, as in Real-ESRGAN, pixel-unshuffle the input (12 input channels) and
    upsample 4x inside.
    """
    from spandrel.architectures.ESRGAN import ESRGAN

    _seeded(seed)
    shuffle = {4: None, 2: 2, 1: 4}[scale]
    model = ESRGAN(in_nc=3 * (shuffle or 1) ** 2, num_filters=num_feat, num_blocks=num_blocks,
                   scale=4, shuffle_factor=shuffle)
    with torch.no_grad():
        # Random init gives an almost flat output: widen it, centred on mid-grey.
        model.model[10].weight.mul_(4.0)
        model.model[10].bias.fill_(0.5)
    old = model.state_dict()
    new: dict[str, Any] = {}
    for key, value in old.items():
        if key == f"model.1.sub.{num_blocks}.weight":
            new["conv_body.weight"] = value.clone()
            continue
        if key == f"model.1.sub.{num_blocks}.bias":
            new["conv_body.bias"] = value.clone()
            continue
        for pattern, repl in _RRDB_NAMES:
            if pattern.match(key):
                new[pattern.sub(repl, key)] = value.clone()
                break
        else:
            raise AssertionError(f"unmapped RRDB key {key}")
    return {"params_ema": new}


def scunet(seed: int = 0) -> dict[str, Any]:
    """SCUNet like scunet_color_real_psnr.pth (a bare state dict)."""
    from spandrel.architectures.SCUNet import SCUNet

    _seeded(seed)
    return dict(SCUNet(config=[1, 1, 1, 1, 1, 1, 1], dim=64).state_dict())


def fbcnn(seed: int = 0, nc: tuple[int, ...] = (8, 16, 32, 64), nb: int = 2) -> dict[str, Any]:
    """FBCNN like fbcnn_color.pth (a bare state dict).

    The default loads but cannot run: the quality-factor head has 512 features built
    in, so a runnable FBCNN needs nc[3] == 512, e.g. `fbcnn(nc=(8, 16, 32, 512))`
    (with nb=2: spandrel does not detect nb=1; 30M parameters, stored as fp16).
    """
    from spandrel.architectures.FBCNN import FBCNN

    _seeded(seed)
    state = FBCNN(nc=list(nc), nb=nb).state_dict()
    if nc[3] < 512:
        return dict(state)
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def restoreformer(seed: int = 0, ch_mult: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """RestoreFormer with small channel counts (no attention levels by default).

    Its middle attention runs over the whole lowest level: to run on 512x512 faces it
    needs the real model's six levels (ch_mult of length 6: attention over 16x16),
    `restoreformer(ch_mult=(1,) * 6)`. 32 channels is the least (GroupNorm of 32 groups).
    """
    from spandrel.architectures.RestoreFormer import RestoreFormer

    _seeded(seed)
    model = RestoreFormer(n_embed=32, embed_dim=32, ch=32, ch_mult=ch_mult, num_res_blocks=1,
                          z_channels=32, head_size=2)
    return dict(model.state_dict())


def gfpgan(seed: int = 0) -> dict[str, Any]:
    """GFPGAN v1.4's layout (GFPGANv1Clean under 'params_ema'), randomly initialised.

    Not tiny: spandrel builds GFPGAN with fixed hyper-parameters (512 px, 87M
    parameters), so only a full-size state dict loads. Stored as fp16 (175 MB) like
    `codeformer`; a forward takes seconds on a CPU.
    """
    from spandrel.architectures.GFPGAN import GFPGAN

    _seeded(seed)
    model = GFPGAN()
    with torch.no_grad():
        # StyleGAN2 starts with its noise switched off (strength 0 in every layer);
        # trained models have learnt some: give it some, so the sampled noise shows.
        for name, param in model.named_parameters():
            if name.startswith("stylegan_decoder.style_conv") and param.shape == (1,):
                param.fill_(0.2)
    return {"params_ema": {k: v.half() if v.is_floating_point() else v
                           for k, v in model.state_dict().items()}}


def codeformer(seed: int = 0) -> dict[str, Any]:
    """CodeFormer with a one-layer transformer, under 'params_ema' like codeformer.pth.

    Its VQGAN generator has a fixed size in spandrel (~74M parameters): stored as fp16.
    """
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    _seeded(seed)
    model = CodeFormer(dim_embd=32, n_head=2, n_layers=1, codebook_size=32, latent_size=256)
    return {"params_ema": {k: v.half() if v.is_floating_point() else v
                           for k, v in model.state_dict().items()}}


def flat(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a checkpoint without its wrapper key (for .safetensors)."""
    if len(checkpoint) == 1:
        (inner,) = checkpoint.values()
        if isinstance(inner, dict):
            return inner
    return checkpoint


def save(checkpoint: dict[str, Any], path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in flat(checkpoint).items()}, str(path))
    else:
        torch.save(checkpoint, str(path))
    return path
