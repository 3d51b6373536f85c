"""Which device a model runs on, and how many working pixels it may take there.

The per-pixel costs are deliberate over-estimates of peak activation memory
(weights not included): being wrong means a smaller working size, not a crash.
"""

from __future__ import annotations

from bridge.device import pick_device, system_memory

# Share of the free memory a single job may plan to use.
_GPU_SHARE = 0.6
_CPU_SHARE = 0.35
# Never plan below this: a model at 256x256 still runs everywhere.
_FLOOR = 256 * 256


def free_bytes(device: str) -> int | None:
    """Free memory on the device (CUDA: what the driver reports; else system RAM available)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * _GPU_SHARE)
    mem = system_memory()
    return None if mem is None else int(mem["available"] * _CPU_SHARE)


def pixel_cap(device: str, bytes_per_pixel: int) -> int | None:
    """The most working pixels that fit, or None when the memory is unknown."""
    free = free_bytes(device)
    if free is None:
        return None
    return max(_FLOOR, free // max(1, bytes_per_pixel))


def configured_device() -> str:
    """The device the settings ask for (RB_DEVICE / config; 'auto': cuda > mps > cpu)."""
    from bridge.config import load_settings

    return pick_device(load_settings().device)
