"""A `model` parameter -> files on disk: a local path, or a registry id through the manager.

Nothing here downloads. A registry id that is not installed is a ModelMissing
naming the model and the command that gets it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bridge.errors import InvalidParams, ModelMissing
from bridge.ops.base import OpContext
from bridge.paths import user_path

MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".onnx")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def install_hint(model_id: str) -> str:
    return (f"retouch-bridge models pull {model_id}   "
            f"(or, with the file at hand: retouch-bridge models import FILE)")


def looks_like_path(value: str) -> bool:
    """True for values meant as files: existing paths, absolute/relative/home paths, model files."""
    if not value.strip() or "\0" in value:
        return False  # "" would be the working folder; a NUL is never in a file name
    if user_path(value, "model").exists():
        return True
    if value.startswith(("/", "~", "./", "../", ".\\", "..\\")) or re.match(r"^[A-Za-z]:[\\/]", value):
        return True
    return value.lower().endswith(MODEL_FILE_SUFFIXES) or "\\" in value


def local_path(value: str, *, folder_ok: bool = False) -> Path:
    """An existing file (or, with folder_ok, folder) the user named, or ModelMissing saying
    it is not there. Devices, pipes and sockets are refused: reading /dev/zero or a FIFO
    as a model would never end."""
    path = user_path(value, "model")
    if not path.exists():
        raise ModelMissing(f"model file or folder not found: {value}", model=value,
                           hint="check the path, or use a model id from `retouch-bridge models list`")
    if path.is_dir():
        if not folder_ok:
            raise InvalidParams(f"{value} is a folder; name the model file in it", param="model")
    elif not path.is_file():
        raise InvalidParams(f"{value} is not a regular file", param="model")
    return path.resolve()


def manager_of(ctx: OpContext, model_id: str) -> Any:
    try:
        return ctx.models
    except ImportError:
        # A build without the model manager can still use explicit files.
        raise ModelMissing(
            f"model '{model_id}' is not available: this build has no model manager; "
            "pass a path to the model file or folder instead", model=model_id,
            hint=install_hint(model_id)) from None


def require(ctx: OpContext, model_id: str) -> Path:
    """The installed files of a registry model (a file or a folder), or ModelMissing."""
    path = manager_of(ctx, model_id).require(model_id)
    return Path(path)


def resolve(ctx: OpContext, value: str) -> Path:
    """A path (checked to exist) or a registry id (through the manager)."""
    return local_path(value, folder_ok=True) if looks_like_path(value) else require(ctx, value)
