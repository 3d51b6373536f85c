"""LoRA files merged into the pipeline's weights, and taken out again exactly.

diffusers' own LoRA loading needs the `peft` package; merging needs nothing but
torch: W += weight * (alpha / rank) * up @ down. The original tensors of every
touched layer are kept (on the CPU) and put back before the next job's LoRAs, so
a job never sees another job's LoRA and the base weights never drift.

Accepted files: diffusers/PEFT LoRAs (lora_A/lora_B), older diffusers attention-
processor LoRAs, and kohya-ss / A1111 LoRAs (lora_unet_*, lora_te_*), through
diffusers' key conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.errors import InvalidParams

COMPONENTS = ("unet", "text_encoder", "text_encoder_2")

_ROLE = re.compile(r"\.(?:lora_A|lora\.down|lora_down|lora_linear_layer\.down|down)\.weight$|"
                   r"\.(?:lora_B|lora\.up|lora_up|lora_linear_layer\.up|up)\.weight$")
_UP = re.compile(r"(?:lora_B|lora\.up|lora_up|lora_linear_layer\.up|\.up)\.weight$")
# Old attention-processor names -> the layers they patch.
_RENAMES = (
    (".processor.to_q_lora", ".to_q"), (".processor.to_k_lora", ".to_k"),
    (".processor.to_v_lora", ".to_v"), (".processor.to_out_lora", ".to_out.0"),
    ("self_attn.to_q_lora", "self_attn.q_proj"), ("self_attn.to_k_lora", "self_attn.k_proj"),
    ("self_attn.to_v_lora", "self_attn.v_proj"), ("self_attn.to_out_lora", "self_attn.out_proj"),
    ("_lora", ""),
)


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    weight: float
    label: str

    def key(self) -> tuple[str, float, float]:
        return (str(self.path), self.path.stat().st_mtime, self.weight)


def parse_lora(text: str) -> tuple[str, float]:
    """'path-or-id:weight' -> (ref, weight); the weight is optional (1.0).

    Only a last ':' followed by a number is a weight, so 'C:\\loras\\x.safetensors'
    stays a path.
    """
    ref, sep, tail = text.rpartition(":")
    if sep:
        try:
            return ref, float(tail)
        except ValueError:
            pass
    return text, 1.0


def _module_name(key: str) -> str:
    name = _ROLE.sub("", key)
    for old, new in _RENAMES:
        if name.endswith(old):
            return name[: -len(old)] + new
    return name


@dataclass
class LoraState:
    """What is merged into one pipeline now, and the originals to restore."""

    applied: tuple[Any, ...] = ()
    originals: dict[tuple[str, str], Any] = field(default_factory=dict)


def restore(pipe: Any, state: LoraState) -> None:
    import torch

    with torch.no_grad():
        for (component, name), tensor in state.originals.items():
            param = getattr(pipe, component).get_submodule(name).weight
            param.copy_(tensor.to(param.device, param.dtype))
    state.originals.clear()
    state.applied = ()


def _pairs(state_dict: dict[str, Any], alphas: dict[str, float] | None) -> dict[tuple[str, str], dict]:
    """(component, module) -> {'down', 'up', 'alpha'} from a converted LoRA state dict."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, tensor in state_dict.items():
        component, _, rest = key.partition(".")
        if component not in COMPONENTS:
            continue
        if rest.endswith(".alpha"):
            entry = out.setdefault((component, _module_name(rest[: -len(".alpha")])), {})
            entry["alpha"] = float(tensor)
            continue
        if not _ROLE.search(rest):
            continue
        role = "up" if _UP.search(rest) else "down"
        out.setdefault((component, _module_name(rest)), {})[role] = tensor
    for key, value in (alphas or {}).items():
        component, _, rest = key.partition(".")
        name = _module_name(rest[: -len(".alpha")] if rest.endswith(".alpha") else rest)
        if (component, name) in out:
            out[(component, name)]["alpha"] = float(value)
    return out


def _merge_one(pipe: Any, component: str, name: str, parts: dict[str, Any], weight: float,
               state: LoraState) -> bool:
    import torch

    model = getattr(pipe, component, None)
    if model is None or "down" not in parts or "up" not in parts:
        return False
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        return False
    target = getattr(layer, "weight", None)
    if target is None:
        return False
    down, up = parts["down"].float(), parts["up"].float()
    rank = down.shape[0]
    scale = weight * (parts["alpha"] / rank if "alpha" in parts else 1.0)
    delta = (up.reshape(up.shape[0], -1) @ down.reshape(rank, -1)).reshape(target.shape)
    key = (component, name)
    if key not in state.originals:
        state.originals[key] = target.detach().to("cpu", copy=True)
    with torch.no_grad():
        target.add_((delta * scale).to(target.device, target.dtype))
    return True


def apply_loras(pipe: Any, specs: list[LoraSpec], state: LoraState) -> list[str]:
    """Make exactly `specs` merged into `pipe`; returns warnings about layers not found."""
    wanted = tuple(s.key() for s in specs)
    if wanted == state.applied:
        return []
    restore(pipe, state)
    warnings: list[str] = []
    unet_config = getattr(getattr(pipe, "unet", None), "config", None)
    for spec in specs:
        try:
            state_dict, alphas = type(pipe).lora_state_dict(str(spec.path), unet_config=unet_config)
        except Exception as e:
            restore(pipe, state)
            raise InvalidParams(f"LoRA '{spec.label}' could not be read: {e}", param="loras") from e
        pairs = _pairs(state_dict, alphas)
        merged = sum(_merge_one(pipe, c, n, parts, spec.weight, state)
                     for (c, n), parts in pairs.items())
        if merged == 0:
            restore(pipe, state)
            raise InvalidParams(f"LoRA '{spec.label}' matches no layer of this model (is it made "
                                "for another base model, SD 1.5 vs SDXL?)", param="loras")
        if merged < len(pairs):
            warnings.append(f"LoRA '{spec.label}': {len(pairs) - merged} of {len(pairs)} layers "
                            "did not match this model and were skipped")
    state.applied = wanted
    return warnings
