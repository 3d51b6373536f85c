"""Which compute device to use, and what it has. Imports torch only when asked."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
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
                            "memory": system_memory(), "torch": None, "probed": True}
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


# -- facts without importing torch ----------------------------------------------------
# The panel asks for capabilities as soon as it connects; importing torch for that would
# cost seconds and leave libtorch resident in a bridge that may never run a model.
NVIDIA_SMI_TIMEOUT_S = 3.0


def torch_loaded() -> bool:
    return "torch" in sys.modules


def torch_build() -> tuple[str | None, str | None]:
    """(torch version, CUDA version it was built for or None), read from torch/version.py."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except (OSError, StopIteration):
        return None, None
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return (version[1] if version else None), (cuda[1] if cuda else None)


def nvidia_gpus() -> list[dict[str, Any]]:
    """GPUs the NVIDIA driver reports (name, memory), through nvidia-smi; [] without one."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append({"name": parts[0], "gpu_memory": {"total": int(parts[1]) << 20,
                                                          "free": int(parts[2]) << 20}})
    return gpus


def device_facts(preference: str = "auto") -> dict[str, Any]:
    """What device_info would say, as far as it is known without importing torch.

    `probed` is False: the kind is the likely one (torch's CUDA build and the NVIDIA
    driver's GPUs; Apple silicon for mps), not one torch has confirmed, and details only
    torch knows (bf16) are absent. Once torch is loaded, device_info tells the rest.
    """
    info: dict[str, Any] = {"platform": sys.platform, "cpu_count": os.cpu_count(),
                            "memory": system_memory(), "probed": False}
    version, cuda = torch_build()
    info["torch"] = version
    if version is None:
        info.update(kind="cpu", name="cpu (torch not installed)", probed=True)
        return info
    pref = preference or "auto"
    if pref.startswith("cpu"):
        info.update(kind="cpu", device="cpu", name="cpu", fp16=False, probed=True)
        return info
    wants_cuda = pref == "auto" or pref.startswith("cuda")
    gpus = nvidia_gpus() if cuda and wants_cuda else []  # a CPU-only torch never uses one
    index = int(pref.split(":")[1]) if pref.startswith("cuda:") else 0
    if index < len(gpus):
        gpu = gpus[index]
        info.update(kind="cuda", device=pref if pref != "auto" else "cuda", name=gpu["name"],
                    gpu_memory=gpu["gpu_memory"], fp16=True)
    elif pref.startswith("cuda"):
        info.update(kind="cpu", name="cpu",
                    warning=f"device '{pref}' was requested but CUDA is not available" if not gpus
                    else f"device '{pref}' was requested but there are {len(gpus)} GPUs")
    elif pref == "mps" or (pref == "auto" and sys.platform == "darwin"
                           and platform.machine() == "arm64"):  # as pick_device: honoured
        info.update(kind="mps", device="mps", name="mps", fp16=False)
    else:
        info.update(kind="cpu", device="cpu", name="cpu", fp16=False)
    return info
