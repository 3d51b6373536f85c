"""Which device a model runs on, and how many working pixels it may take there.

The per-pixel costs are deliberate over-estimates of peak activation memory
(weights not included): being wrong means a smaller working size, not a crash.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bridge.device import pick_device, system_memory

# Share of the free memory a single job may plan to use.
_GPU_SHARE = 0.6
_CPU_SHARE = 0.35
# Never plan below this: a model at 256x256 still runs everywhere.
_FLOOR = 256 * 256


def free_bytes(device: str, budget_mb: int = 0) -> int | None:
    """Free memory on the device (CUDA: what the driver reports; else system RAM available),
    never more than the configured memory budget (`budget_mb`, 0: none)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        share: int | None = int(free * _GPU_SHARE)
    else:
        mem = system_memory()
        share = None if mem is None else int(mem["available"] * _CPU_SHARE)
    if budget_mb > 0:
        return min(share, budget_mb << 20) if share is not None else budget_mb << 20
    return share


def pixel_cap(device: str, bytes_per_pixel: int, budget_mb: int = 0) -> int | None:
    """The most working pixels that fit, or None when the memory is unknown."""
    free = free_bytes(device, budget_mb)
    if free is None:
        return None
    return max(_FLOOR, free // max(1, bytes_per_pixel))


def job_settings(ctx: Any = None) -> Any:
    """The settings a job runs under: its model manager's (the server's own, `serve
    --device` included), else RB_* / config.toml. Never creates the default manager."""
    if ctx is not None and ctx.has_models:
        with contextlib.suppress(ImportError):  # a build without the model manager
            settings = getattr(ctx.models, "settings", None)
            if settings is not None:
                return settings
    from bridge.config import load_settings

    return load_settings()


def configured_device(ctx: Any = None) -> str:
    """The device the job's settings ask for ('auto': cuda > mps > cpu)."""
    return pick_device(job_settings(ctx).device)


def configured_budget_mb(ctx: Any = None) -> int:
    """The memory budget the job's settings set (RB_MEMORY_BUDGET_MB; 0: none)."""
    return int(getattr(job_settings(ctx), "memory_budget_mb", 0) or 0)


def after_out_of_memory(ctx: Any, device: str, budget: int, also: str = "") -> int:
    """The working pixels to retry with after an out-of-memory error (fill, remove): the
    per-pixel estimates are guesses and other programs share the GPU, so one retry at a
    quarter of the pixels (not below the floor), cached memory freed first."""
    release(device)
    smaller = max(_FLOOR, budget // 4)
    ctx.warn(f"ran out of memory on {device} at {budget} working pixels; "
             f"retried with {also}{smaller} working pixels")
    return smaller


def release(device: str) -> None:
    """Give cached device memory back after an out-of-memory error, before a retry."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
