"""Imported at start-up by a bridge the fault tests launch with this folder on PYTHONPATH.

RB_FAULT_OOM_FILE=PATH: a device that runs out of memory for any model input larger
than the number of pixels written in PATH (read at every forward, so a test can change
it while the server runs; no file or an empty one: no limit). Simulated where a real
GPU fails, inside torch: a global forward pre-hook raises torch.OutOfMemoryError, as
CUDA's allocator would. Nothing of the bridge is replaced; the server, the model
manager, the runtime and the tiling engine all run as they do for a user.

RB_FAULT_RAISE_FILE=PATH: a model that raises mid-image. When PATH holds a number N, the
N-th model forward from then on (a network's top-level call: one per tile) raises
RuntimeError, and PATH is emptied (one fault per number written). Counted by a global
forward pre-hook too; the network's own submodules are not counted.
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


_raise_file = os.environ.get("RB_FAULT_RAISE_FILE")
if _raise_file:
    import threading

    import torch

    _top = threading.local()  # the network whose forward runs now, and its submodules

    def _is_top_level(module) -> bool:
        current = getattr(_top, "module", None)
        if current is not None and module is not current and id(module) in _top.inner:
            return False
        _top.module, _top.inner = module, {id(m) for m in module.modules()}
        return True

    def _raise_at_the_nth_forward(module, args):
        if not _is_top_level(module):
            return
        try:
            with open(_raise_file) as f:
                text = f.read().strip()
        except OSError:
            return
        if not text:
            return
        left = int(text) - 1
        with open(_raise_file, "w") as f:
            f.write(str(left) if left > 0 else "")
        if left <= 0:
            raise RuntimeError("simulated fault: the model raised in the middle of the image")

    torch.nn.modules.module.register_module_forward_pre_hook(_raise_at_the_nth_forward)
