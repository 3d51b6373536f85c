"""Loading weights through spandrel and running them safely on the best device.

* Files: `.safetensors` are read with safetensors (no code can run). Pickled
  checkpoints (`.pth`, `.pt`, `.ckpt`) are read only with
  `torch.load(weights_only=True)`, torch's restricted unpickler that admits tensors and
  plain containers, never arbitrary classes; a file that needs more is refused with a
  hint to convert it. (spandrel's own `ModelLoader` uses a similar allow-list
  unpickler; we read the state dict ourselves so the rule is explicit and tested.) A
  TorchScript archive (big-lama.pt) is opened with `torch.jit.load` only when the caller
  vouches for it, i.e. its official checksum matched.
* Architectures: spandrel detects the architecture and hyper-parameters from the state
  dict; `spandrel_extra_arches` (CodeFormer and friends) is installed into spandrel's
  MAIN_REGISTRY once, on first use.
* Device: `resolve_device("auto")` picks cuda, then mps, then cpu; "cpu", "cuda",
  "cuda:1", "mps" force one (an unavailable one is an error, not a silent fallback).
* Precision: fp16 only on CUDA and only where spandrel's descriptor says
  `supports_half`; never on CPU or MPS. Every output is checked finite; a non-finite
  fp16 result reloads the model in fp32 and reruns the tile (and stays fp32).
* Memory: `ModelCache` keeps loaded models in LRU order under a byte budget, shared
  with every other kind of model (bridge.models.resident). `LoadedModel.__call__` turns
  CUDA/MPS out-of-memory into `TileTooLarge` after freeing the cache, so the tiling
  engine retries with smaller tiles; any other exception from a forward (the process's
  own MemoryError aside) becomes a `ModelError` naming the model and the tile size.

The tile function contract (see bridge.imaging.tiling): `LoadedModel(tile)` takes a
float32 HxWxC array in [0, 1] with C == input_channels and returns float32
(H*scale)x(W*scale)x output_channels in [0, 1].
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import BridgeError, ModelError, is_out_of_memory
from bridge.imaging.tiling import TileTooLarge
from bridge.models.resident import KeyedCache, ResidentModels, module_bytes

log = logging.getLogger(__name__)

_extra_lock = threading.Lock()
_extra_installed: bool | None = None


# -- device ---------------------------------------------------------------------------
def resolve_device(preference: str = "auto") -> Any:
    """A torch.device from "auto" | "cpu" | "cuda" | "cuda:N" | "mps"."""
    import torch

    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(pref)
    except (RuntimeError, ValueError) as e:
        raise ModelError(f"unknown device {preference!r}; use auto, cpu, cuda or mps") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {preference!r} was asked for (RB_DEVICE) but CUDA "
                             "is not available; set RB_DEVICE=auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"device {preference!r} does not exist; "
                             f"{torch.cuda.device_count()} CUDA device(s) found")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ModelError(f"device {preference!r} was asked for but MPS is not available")
    elif device.type != "cpu":
        raise ModelError(f"unsupported device {preference!r}; use auto, cpu, cuda or mps")
    return device


def system_memory_bytes() -> int:
    """Physical memory of this machine (8 GiB assumed where the OS will not say)."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if os.name == "nt":  # pragma: no cover - Windows only
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong),
                        ("total", ctypes.c_ulonglong), ("avail", ctypes.c_ulonglong),
                        ("a", ctypes.c_ulonglong), ("b", ctypes.c_ulonglong),
                        ("c", ctypes.c_ulonglong), ("d", ctypes.c_ulonglong),
                        ("e", ctypes.c_ulonglong)]

        status = _Status()
        status.length = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.total)
    return 8 << 30


def device_memory_bytes(device: Any) -> int:
    """Memory of a device (a torch.device or its name); torch is imported only for CUDA."""
    if str(device).startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(str(device))).total_memory)
    return system_memory_bytes()


def default_budget_bytes(device: Any, budget_mb: int = 0) -> int:
    """What loaded models may occupy: the configured MB, else a share of the device."""
    if budget_mb > 0:
        return budget_mb << 20
    share = 0.5 if str(device).startswith("cuda") else 0.25
    return max(1 << 30, int(device_memory_bytes(device) * share))


# -- reading files ----------------------------------------------------------------------
def install_extra_arches() -> bool:
    """Register spandrel_extra_arches in spandrel's MAIN_REGISTRY, once per process."""
    global _extra_installed
    with _extra_lock:
        if _extra_installed is None:
            try:
                import spandrel_extra_arches
            except ImportError:
                log.warning("spandrel_extra_arches is not installed: CodeFormer and other "
                            "extra architectures cannot be loaded")
                _extra_installed = False
            else:
                spandrel_extra_arches.install(ignore_duplicates=True)
                _extra_installed = True
        return _extra_installed


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except zipfile.BadZipFile as e:  # a zip end record, but a broken directory
        raise ModelError(f"{path.name} is damaged ({e}); pull or import it again") from None


def read_state_dict(path: Path, allow_torchscript: bool = False) -> dict[str, Any]:
    """Tensors of a weight file, without running code from it (see module docstring)."""
    import pickle

    import torch

    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as e:
            raise ModelError(f"{path.name} is not a readable safetensors file: {e}") from e
    if suffix not in (".pth", ".pt", ".ckpt", ".bin"):
        raise ModelError(f"{path.name}: unsupported weight file type {suffix!r}; "
                         "use .safetensors or .pth")
    if _is_torchscript(path):
        # TorchScript archives carry code; torch.load(weights_only=True) refuses them.
        if not allow_torchscript:
            raise ModelError(
                f"refusing to load {path.name}: it is a TorchScript archive, which is only "
                "opened for registry models whose official checksum matched")
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "torchscript" in str(e).lower():
                raise
            # Legacy (pre-zip) checkpoints and re-zipped ones with unaligned or compressed
            # entries cannot be memory-mapped: read them into memory instead.
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise ModelError(
                f"refusing to load {path.name}: it holds Python objects ({found.group(1)}), "
                "not just tensors, and unpickling them could run code. Convert it to "
                ".safetensors with a tool you trust.", reason=found.group(1)) from e
        raise ModelError(f"{path.name} is not a readable PyTorch checkpoint "
                         "(damaged, or not a model file)") from e
    except RuntimeError as e:
        raise ModelError(f"{path.name} is not a readable PyTorch checkpoint: {e}") from e
    except (EOFError, OSError, ValueError) as e:
        raise ModelError(f"{path.name} is not a readable PyTorch checkpoint: {e}") from e


def describe_state_dict(state: dict[str, Any]) -> Any:
    """A spandrel descriptor (on CPU, fp32) for a state dict, or ModelError."""
    import spandrel

    install_extra_arches()
    state = spandrel.canonicalize_state_dict(state)
    try:
        return spandrel.MAIN_REGISTRY.load(state)
    except spandrel.UnsupportedModelError as e:
        raise ModelError("the file is not a model architecture spandrel supports") from e
    except (RuntimeError, KeyError, ValueError, AssertionError) as e:
        raise ModelError(f"the weights do not fit their detected architecture: {e}") from e


def blend_state_dicts(a: dict[str, Any], b: dict[str, Any], weight_a: float) -> dict[str, Any]:
    """Network interpolation: weight_a * a + (1 - weight_a) * b, tensor by tensor."""
    import spandrel

    a = spandrel.canonicalize_state_dict(a)
    b = spandrel.canonicalize_state_dict(b)
    if a.keys() != b.keys():
        raise ModelError("cannot blend two models with different layers")
    out = {}
    for k, va in a.items():
        vb = b[k]
        if va.shape != vb.shape:
            raise ModelError(f"cannot blend: layer {k} differs in shape")
        out[k] = va * weight_a + vb * (1.0 - weight_a) if va.is_floating_point() else va
    return out


# -- receptive field ----------------------------------------------------------------
# Context and feather band (input pixels) for tiles of models whose receptive field is
# too large to cover. Measured on RealESRGAN_x4plus (real weights, 128x128 crop, 40 px
# tiles, 8-bit): pad 16 + blend 8 leaves errors up to 20 LSB; pad 32 + blend 16 up to
# 2 LSB on 0.005% of pixels; pad 48 + blend 8 at most 1 LSB.
DEEP_PAD, DEEP_BLEND = 48, 8
# When the pad covers the whole field, tiles already agree; a narrow band only smooths
# float rounding.
EXACT_BLEND = 4


def receptive_radius(descriptor: Any) -> int | None:
    """Exact receptive-field radius in input pixels, for architectures where it is known."""
    arch = descriptor.architecture.id
    model = descriptor.model
    if arch == "Compact":
        # A stack of 3x3 convolutions at input resolution, then pixel shuffle.
        return int(model.num_conv) + 2
    if arch == "ESRGAN":
        # 15 3x3 convs per RRDB block, 1 before and after, the rest at higher resolution
        # (under 3 input pixels together); pixel-unshuffled inputs (x2plus) double it.
        blocks = sum(1 for m in model.modules() if type(m).__name__ == "RRDB")
        return (15 * blocks + 5) * int(getattr(model, "shuffle_factor", None) or 1)
    return None


def tile_context(descriptor: Any) -> tuple[int, int]:
    """(pad, blend) for tiling this model: exact where the field is small enough."""
    radius = receptive_radius(descriptor)
    if radius is not None and radius <= DEEP_PAD:
        return radius, EXACT_BLEND
    return DEEP_PAD, DEEP_BLEND


# -- a loaded model ---------------------------------------------------------------------
def _is_oom(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _finite(out: Any) -> bool:
    import torch

    # spandrel clamps outputs to [0, 1] (NaN passes a clamp): one sum finds any NaN or
    # inf without a tile-sized boolean tensor.
    return bool(out.sum(dtype=torch.float32).isfinite())


def free_device_memory(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        with contextlib.suppress(Exception):
            torch.mps.empty_cache()


@dataclass
class LoadedModel:
    """A spandrel descriptor on its device, callable as a tile function."""

    model_id: str
    descriptor: Any
    device: Any
    dtype: Any
    reload_fp32: Callable[[], Any] | None = None
    fell_back_to_fp32: bool = False
    warnings: list[str] = field(default_factory=list)
    # Told the new size when the fp32 fallback doubles it (the cache re-measures it).
    on_resize: Callable[[int], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def architecture(self) -> str:
        return str(self.descriptor.architecture.id)

    @property
    def scale(self) -> int:
        return int(self.descriptor.scale)

    @property
    def input_channels(self) -> int:
        return int(self.descriptor.input_channels)

    @property
    def output_channels(self) -> int:
        return int(self.descriptor.output_channels)

    @property
    def purpose(self) -> str:
        return str(self.descriptor.purpose)

    @property
    def precision(self) -> str:
        return str(self.dtype).replace("torch.", "")

    @property
    def nbytes(self) -> int:
        return module_bytes(self.descriptor.model)

    @property
    def context(self) -> tuple[int, int]:
        """(pad, blend) for tiling, see tile_context."""
        return tile_context(self.descriptor)

    @property
    def size_requirements(self) -> Any:
        return self.descriptor.size_requirements

    def __call__(self, tile: np.ndarray, call: Callable[[Any, Any], Any] | None = None) -> np.ndarray:
        """`call(descriptor, x)` replaces the plain `descriptor(x)` for models whose own
        forward takes more (CodeFormer's fidelity weight, FBCNN's quality factor) or another
        value range (GFPGAN works in [-1, 1]); it must return a (1, C, H, W) tensor."""
        import torch

        # One tile at a time per model: descriptors are not re-entrant on one device.
        with self._lock:
            try:
                out = self._forward(tile, call)
                if not _finite(out):
                    if self.dtype != torch.float32 and self.reload_fp32 is not None:
                        self._switch_to_fp32()
                        out = self._forward(tile, call)
                    if not _finite(out):
                        raise ModelError(f"model {self.model_id} produced non-finite values")
                return out[0].permute(1, 2, 0).float().cpu().numpy()
            except BridgeError:
                raise
            except Exception as e:
                if _is_oom(e):
                    del e
                    free_device_memory(self.device)
                    raise TileTooLarge() from None
                if is_out_of_memory(e):  # the process's own memory: the job says so
                    raise
                # A model that fails mid-image fails its job as the model's error, named,
                # not as an anonymous internal error.
                h, w = tile.shape[:2]
                log.warning("model %s failed on a %dx%d tile", self.model_id, h, w,
                            exc_info=True)
                raise ModelError(f"model {self.model_id} failed on a {w}x{h} px tile: "
                                 f"{type(e).__name__}: {e}", model=self.model_id,
                                 tile=[w, h]) from e

    def _forward(self, tile: np.ndarray, call: Callable[[Any, Any], Any] | None = None) -> Any:
        import torch

        if uses_channels_last(self.descriptor):
            # HxWxC is already channels-last memory: a view, no copy.
            x = torch.from_numpy(np.ascontiguousarray(tile))[None].permute(0, 3, 1, 2)
        else:
            x = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None]
        x = x.to(self.device, self.dtype)
        if call is None:
            return self.descriptor(x)
        with torch.inference_mode():
            return call(self.descriptor, x)

    def _switch_to_fp32(self) -> None:
        import torch

        assert self.reload_fp32 is not None
        message = (f"{self.model_id}: half precision gave non-finite values; "
                   "continuing in full precision")
        log.warning(message)
        self.warnings.append(message)
        self.descriptor = None
        free_device_memory(self.device)
        self.descriptor = self.reload_fp32()
        self.dtype = torch.float32
        self.fell_back_to_fp32 = True
        if self.on_resize is not None:
            self.on_resize(self.nbytes)

    def auto_tile(self, budget_bytes: int) -> int:
        """A core tile size whose forward fits in budget_bytes (rough, conservative)."""
        pad, blend = self.context
        per_px = estimated_bytes_per_pixel(self)
        side = int(math.sqrt(max(1, budget_bytes) / per_px)) - 2 * (pad + blend)
        cap = 1024 if self.device.type == "cuda" else 512
        side = max(64, min(cap, side))
        return side - side % 8


def estimated_bytes_per_pixel(model: LoadedModel) -> float:
    """Peak working memory per input pixel of one forward (activations, fp32)."""
    arch = model.architecture
    s2 = model.scale * model.scale
    # Measured on CPU with torch 2.x (peak RSS over one forward, see bench/upscale.py),
    # rounded up: Compact keeps ~3 feature maps at input resolution plus the upsampled
    # output; RRDB concatenates up to 192 channels and convolves 64 channels at 2x and 4x.
    per = {"Compact": 1200 + 100 * s2, "ESRGAN": 3000 + 900 * s2}.get(arch, 4000 + 400 * s2)
    return per * (0.5 if model.dtype is not None and "16" in str(model.dtype) else 1.0)


# -- loading ------------------------------------------------------------------------
# Plain convolution stacks run markedly faster with channels-last memory (measured on CPU
# with oneDNN: realesr-animevideov3 1.5-2x), and our tiles are HxWxC already. Only for
# architectures known to use no stride-sensitive views.
CHANNELS_LAST = frozenset({"Compact", "ESRGAN"})


def uses_channels_last(descriptor: Any) -> bool:
    return descriptor.architecture.id in CHANNELS_LAST


def choose_dtype(descriptor: Any, device: Any) -> Any:
    import torch

    if device.type == "cuda" and descriptor.supports_half:
        return torch.float16
    return torch.float32


def load_model(
    model_id: str,
    read: Callable[[], dict[str, Any]],
    device: Any,
    expect_architecture: str | None = None,
    allow_half: bool = True,
    make_room: Callable[[int], None] | None = None,
) -> LoadedModel:
    """Build a LoadedModel from a state-dict reader (called again for an fp32 reload).
    `make_room(nbytes)` is told the model's size on the device before it moves there."""
    import torch

    def build(dtype: Any | None) -> Any:
        descriptor = describe_state_dict(read())
        if expect_architecture and descriptor.architecture.id != expect_architecture:
            raise ModelError(
                f"{model_id}: the file holds a {descriptor.architecture.id} model, "
                f"not the {expect_architecture} the registry lists",
                model=model_id)
        chosen = dtype or (choose_dtype(descriptor, device) if allow_half else torch.float32)
        if make_room is not None:
            make_room(module_bytes(descriptor.model, dtype=chosen))
        descriptor.eval()
        descriptor.to(device, chosen)
        if uses_channels_last(descriptor):
            descriptor.model.to(memory_format=torch.channels_last)
        return descriptor

    try:
        descriptor = build(None)
    except BridgeError:
        raise
    except Exception as e:
        if _is_oom(e):
            free_device_memory(device)
            raise ModelError(f"not enough memory on {device} to load {model_id}") from e
        raise ModelError(f"could not load {model_id}: {e}", model=model_id) from e
    return LoadedModel(model_id, descriptor, device, descriptor.dtype,
                       reload_fp32=lambda: build(torch.float32))


class ModelCache(KeyedCache):
    """The manager's loaded spandrel models, by (id, twin, denoise) key.

    A KeyedCache: the models sit in the process's resident-model registry with every
    other kind (pipelines, LaMa, rembg sessions), in one least-recently-used order
    under one budget (bridge.models.resident). A model larger than the whole budget
    still loads (alone); a model an operation holds is not evicted until it returns.
    """

    def __init__(self, budget_bytes: int, registry: ResidentModels | None = None) -> None:
        super().__init__("spandrel", budget_bytes, registry=registry)
        self.budget_bytes = budget_bytes

    def put(self, key: Any, model: LoadedModel) -> list[Any]:
        """Insert; returns this cache's keys evicted to make room."""
        model.on_resize = lambda nbytes: self.resize(key, nbytes)
        return self.add(key, model, label=model_label(key), device=model.device,
                        nbytes=model.nbytes)


def model_label(key: Any) -> str:
    """How a cache key reads: the id, and the blend with its denoise twin if any."""
    if isinstance(key, tuple) and len(key) == 3 and key[1] is not None:
        return f"{key[0]} + {key[1]} (denoise {key[2]})"
    return str(key[0] if isinstance(key, tuple) else key)


def working_budget(loaded: Any, manager: Any = None) -> int:
    """Bytes one tile's forward may use: a share of what the device has free, and never
    more than the manager's configured memory budget (RB_MEMORY_BUDGET_MB)."""
    import torch

    settings = getattr(manager, "settings", None)
    budget_mb = int(getattr(settings, "memory_budget_mb", 0) or 0)
    if loaded.device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(loaded.device)
        budget = int(free * 0.6)
    else:
        budget = int(min(4 << 30, max(1 << 30, system_memory_bytes() // 8)))
    return min(budget, budget_mb << 20) if budget_mb > 0 else budget


def run_tiles(loaded: Any, ctx: Any, src: np.ndarray, fn: Callable[[np.ndarray], np.ndarray],
              scale: int, **options: Any) -> Any:
    """`tile_process` through a loaded model for an operation: running out of memory even
    at the smallest tile becomes OutOfMemory (507) with what to do, and the model's own
    warnings (an fp16 fallback, say) reach the result. Returns the TileStats."""
    from bridge.errors import OutOfMemory
    from bridge.imaging.tiling import TilesExhausted, tile_process

    try:
        _, stats = tile_process(src, fn, scale, check_cancel=ctx.check_cancelled, **options)
    except TilesExhausted as e:
        raise OutOfMemory(
            f"not enough {loaded.device.type.upper()} memory for {loaded.model_id} even in "
            f"{e.side}px tiles; close other GPU applications or set RB_DEVICE=cpu") from e
    for message in loaded.warnings:
        if message not in ctx.warnings:
            ctx.warn(message)
    return stats
