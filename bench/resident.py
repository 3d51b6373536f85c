"""Do evicted models give their device memory back?

Loads two spandrel models (~36 MB each in fp16 on CUDA, 72 MB in fp32) and a tiny SD
1.5 inpainting pipeline under a budget that holds the two models but not all three,
so the pipeline evicts one model and reloading that model evicts the pipeline; then
unloads everything. After each step it prints the registry and, on CUDA, torch's
allocated and reserved bytes, and checks that each eviction took its model's bytes
off the device and that nothing is left allocated (or cached by the allocator) at the
end. On the CPU it checks only the evictions (a dry run). Run from the repository root:

    python bench/resident.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.config import load_settings
from bridge.diffusion import loader, source
from bridge.models.manager import ModelManager
from bridge.models.resident import ResidentModels, resident_models
from bridge.ops.base import OpContext
from tests.inpaint.tiny import build_sd15_inpaint
from tests.models import tiny_models as tm

MB = 1 << 20
SLACK = MB  # allocator rounding


def allocated() -> tuple[int, int]:
    if not torch.cuda.is_available():
        return 0, 0
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


def show(step: str, registry: ResidentModels) -> int:
    used, reserved = allocated()
    kinds = ", ".join(f"{e.kind} {e.label[-24:]} {e.nbytes / MB:.1f} MB" for e in registry.entries())
    print(f"{step:28s} allocated {used / MB:7.1f} MB  reserved {reserved / MB:7.1f} MB  "
          f"resident {registry.total_bytes / MB:6.1f} MB: {kinds}", flush=True)
    return used


def main() -> int:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    home = Path(tempfile.mkdtemp(prefix="rb-resident-"))
    os.environ["RB_HOME"] = str(home)
    os.environ["RB_MEMORY_BUDGET_MB"] = "74" if cuda else "147"
    registry = resident_models()
    manager = ModelManager(load_settings(device=device))
    ids = ("realesr-animevideov3", "realesr-general-x4v3")
    for seed, model_id in enumerate(ids):
        weights = tm.save(tm.compact(num_feat=256, num_conv=32, seed=seed), home / f"{seed}.pth")
        manager.import_file(weights, as_id=model_id)
    pipeline_source = source.resolve(OpContext(), str(build_sd15_inpaint(home / "sd15")))

    start = show("start", registry)
    manager.load(ids[0])
    manager.load(ids[1])
    both = show("two spandrel models", registry)
    loader.load_pipeline(pipeline_source, device)
    with_pipeline = show("pipeline (evicts the first)", registry)
    after_pipeline = [e.label for e in registry.entries()]
    pipeline_bytes = registry.entries()[-1].nbytes
    manager.load(ids[1])
    manager.load(ids[0])
    back = show("first again (evicts pipeline)", registry)
    after_reload = [e.label for e in registry.entries()]
    registry.unload()
    end = show("unload all", registry)

    failures = []
    if after_pipeline != [ids[1], pipeline_source.label]:
        failures.append(f"the pipeline should have evicted {ids[0]} alone: {after_pipeline}")
    if after_reload != list(ids[::-1]):
        failures.append(f"{ids[0]} should have evicted the pipeline alone: {after_reload}")
    if cuda:
        # What one model really takes on the device: its tensors plus the allocator's
        # rounding of each (about 1.3 MB more than its bytes for these two, on an H200).
        model_alloc = (both - start) // 2
        if with_pipeline > both - model_alloc + pipeline_bytes + SLACK:
            failures.append("the evicted model's memory was not freed")
        if back > with_pipeline - pipeline_bytes + model_alloc + SLACK:
            failures.append("the evicted pipeline's memory was not freed")
        if end - start > SLACK or allocated()[1] > 8 * MB:
            failures.append("memory left allocated or cached after unloading everything")
    print("FAILED: " + "; ".join(failures) if failures else "ok", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
