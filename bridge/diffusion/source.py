"""Which files a `model` parameter means, and which kind of pipeline they make.

Accepted, in this order:
  - a local diffusers folder (has model_index.json), e.g. a saved pipeline;
  - a local single-file checkpoint (.safetensors, .ckpt), which also needs the
    configs and tokenizers of its family (found in an installed registry model or
    the local Hugging Face cache; never fetched);
  - a Hugging Face hub id ("org/name") already in the local cache;
  - a registry id ("sd15-inpainting", "sdxl-inpainting"), through the model manager.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bridge.errors import InvalidParams, ModelMissing, NotFound
from bridge.inpaint import sources
from bridge.ops.base import OpContext

Family = Literal["sd15", "sdxl"]

# The registry model whose folder holds each family's configs and tokenizers, and
# the hub repositories whose cached copies can stand in for it.
FAMILY_REGISTRY_ID: dict[Family, str] = {"sd15": "sd15-inpainting", "sdxl": "sdxl-inpainting"}
FAMILY_HUB_IDS: dict[Family, tuple[str, ...]] = {
    "sd15": ("stable-diffusion-v1-5/stable-diffusion-inpainting", "runwayml/stable-diffusion-inpainting",
             "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    "sdxl": ("diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
             "stabilityai/stable-diffusion-xl-base-1.0"),
}
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class DiffusionSource:
    path: Path                     # a diffusers folder or a single checkpoint file
    family: Family
    config_dir: Path | None = None  # for single files: the family's diffusers configs
    label: str = ""

    @property
    def single_file(self) -> bool:
        return self.path.is_file()


def family_of_folder(folder: Path) -> Family:
    index = folder / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelMissing(f"{folder} is not a diffusers model folder (no readable model_index.json)",
                           model=str(folder), hint="point `model` at a folder saved by diffusers, "
                           "or at a single .safetensors checkpoint") from e
    name = str(data.get("_class_name", ""))
    return "sdxl" if "XL" in name or "text_encoder_2" in data else "sd15"


def checkpoint_keys(path: Path) -> list[str]:
    """Tensor names of a checkpoint without loading its weights."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    import pickle

    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        # weights_only refused a global: the file holds Python objects whose unpickling
        # could run code. Nothing of it was run.
        raise InvalidParams(f"refusing to load {path.name}: it holds Python objects, not just "
                            "tensors, and unpickling them could run code; convert it to "
                            ".safetensors with a tool you trust", param="model") from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise InvalidParams(f"{path.name} is not a readable checkpoint: {e}", param="model") from None
    data = data.get("state_dict", data) if isinstance(data, dict) else {}
    return list(data)


def family_of_checkpoint(path: Path) -> Family:
    keys = checkpoint_keys(path)
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith(("cond_stage_model.", "model.diffusion_model.")) for k in keys):
        return "sd15"
    raise InvalidParams(f"{path.name} is not a Stable Diffusion checkpoint (SD 1.x or SDXL) that "
                        "this bridge knows", param="model")


def cached_hub_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's copy of a repository, without any network access."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return path if (path / "model_index.json").exists() else None


def _installed(ctx: OpContext, model_id: str) -> Path | None:
    try:
        return sources.require(ctx, model_id)
    except (ModelMissing, NotFound):
        return None


def _models_dir(ctx: OpContext) -> str:
    try:
        return str(ctx.models.models_dir)
    except (ImportError, AttributeError):
        return "<models folder>"


def family_config(ctx: OpContext, family: Family) -> Path:
    """A local diffusers folder of the family, whose configs and tokenizers a single file needs."""
    found = _installed(ctx, FAMILY_REGISTRY_ID[family])
    if found is not None and found.is_dir():
        return found
    for repo in FAMILY_HUB_IDS[family]:
        snapshot = cached_hub_snapshot(repo)
        if snapshot is not None:
            return snapshot
    model_id = FAMILY_REGISTRY_ID[family]
    raise ModelMissing(
        f"a single-file {family.upper()} checkpoint needs the configs and tokenizers of "
        f"'{model_id}' (a diffusers folder), which is not installed", model=model_id,
        hint=(f"run `retouch-bridge models pull {model_id}`, or put a diffusers copy of "
              f"{FAMILY_HUB_IDS[family][0]} at {Path(_models_dir(ctx)) / model_id}, or keep it "
              "in the local Hugging Face cache"))


def from_path(ctx: OpContext, path: Path, label: str) -> DiffusionSource:
    if path.is_dir():
        return DiffusionSource(path, family_of_folder(path), label=label)
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise InvalidParams(f"{path.name}: a diffusion model is a diffusers folder or a "
                            ".safetensors/.ckpt checkpoint", param="model")
    family = family_of_checkpoint(path)
    return DiffusionSource(path, family, family_config(ctx, family), label=label)


def from_registry(ctx: OpContext, model_id: str) -> DiffusionSource:
    """A registry model: its installed folder or file, else its hub repository's cached copy."""
    manager = sources.manager_of(ctx, model_id)
    entry = manager.entry(model_id)  # NotFound for an unknown id
    if entry.task != "fill":
        raise InvalidParams(f"model '{model_id}' is a {entry.task} model, not a diffusion "
                            "inpainting model (sd15-inpainting, sdxl-inpainting)", param="model")
    try:
        return from_path(ctx, manager.require(model_id), model_id)
    except ModelMissing:
        repo = entry.extra.get("hub_repo")
        snapshot = cached_hub_snapshot(repo) if repo else None
        if snapshot is not None:
            return from_path(ctx, snapshot, model_id)
        folder = Path(manager.models_dir) / entry.filename
        raise ModelMissing(
            f"model '{model_id}' is not installed: it is a diffusers model ({repo}), which the "
            "bridge reads from its models folder or the local Hugging Face cache and never "
            "downloads while working", model=model_id,
            hint=(f"run `retouch-bridge models pull {model_id}` to download it, or put a "
                  f"diffusers copy of {repo} (the folder with model_index.json) at {folder} "
                  f"(`retouch-bridge models import FOLDER --as {model_id}`), or keep {repo} in "
                  "the local Hugging Face cache; a single-file checkpoint works too: "
                  f"retouch-bridge models import FILE --as {model_id}")) from None


def resolve(ctx: OpContext, value: str) -> DiffusionSource:
    if sources.looks_like_path(value):
        return from_path(ctx, sources.local_path(value, folder_ok=True), value)
    if sources.HUB_ID.fullmatch(value):
        snapshot = cached_hub_snapshot(value)
        if snapshot is None:
            raise ModelMissing(
                f"'{value}' is not in the local Hugging Face cache, and the bridge never downloads "
                "at run time", model=value,
                hint="use a registry id (retouch-bridge models list), or download the repository "
                     "with your own tools and pass its folder")
        return from_path(ctx, snapshot, value)
    return from_registry(ctx, value)
