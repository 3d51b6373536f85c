"""Which compute device to use, and what it has. Imports torch only when asked."""

from __future__ import annotations

import os
import sys
from typing import Any


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def pick_device(preference: str = "auto") -> str:
    """'auto' -> cuda, else mps, else cpu. An explicit choice is honoured if it exists."""
    if not torch_available():
        return "cpu"
    import torch

    if preference and preference != "auto":
        if preference.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device '{preference}' was requested but CUDA is not available")
        return preference
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def system_memory() -> dict[str, int] | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        avail = os.sysconf("SC_AVPHYS_PAGES")
        return {"total": pages * size, "available": avail * size}
    except (ValueError, OSError, AttributeError):
        return None


def device_info(preference: str = "auto") -> dict[str, Any]:
    info: dict[str, Any] = {"platform": sys.platform, "cpu_count": os.cpu_count(),
                            "memory": system_memory(), "torch": None}
    if not torch_available():
        info.update(kind="cpu", name="cpu (torch not installed)")
        return info
    import torch

    info["torch"] = torch.__version__
    try:
        kind = pick_device(preference)
    except RuntimeError as e:
        info.update(kind="cpu", name="cpu", warning=str(e))
        return info
    info["kind"] = kind.split(":")[0]
    info["device"] = kind
    if kind.startswith("cuda"):
        idx = torch.device(kind).index or 0
        props = torch.cuda.get_device_properties(idx)
        free, total = torch.cuda.mem_get_info(idx)
        info.update(name=props.name, gpu_memory={"total": total, "free": free},
                    fp16=True, bf16=torch.cuda.is_bf16_supported())
    else:
        info.update(name=kind, fp16=False)
    return info
