"""Imported at start-up by a bridge the fault tests launch with this folder on PYTHONPATH.

RB_FAULT_OOM_FILE=PATH: a device that runs out of memory for any model input larger
than the number of pixels written in PATH (read at every forward, so a test can change
it while the server runs; no file or an empty one: no limit). Simulated where a real
GPU fails, inside torch: a global forward pre-hook raises torch.OutOfMemoryError, as
CUDA's allocator would. Nothing of the bridge is replaced; the server, the model
manager, the runtime and the tiling engine all run as they do for a user.
"""

import os

_limit_file = os.environ.get("RB_FAULT_OOM_FILE")
if _limit_file:
    import torch

    def _limit() -> int | None:
        try:
            with open(_limit_file) as f:
                text = f.read().strip()
        except OSError:
            return None
        return int(text) if text else None

    def _out_of_memory_above(module, args):
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            return
        limit = _limit()
        if limit is not None and x.shape[-1] * x.shape[-2] > limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory (simulated: a {x.shape[-2]}x{x.shape[-1]} input, over {limit} px)")

    torch.nn.modules.module.register_module_forward_pre_hook(_out_of_memory_above)
