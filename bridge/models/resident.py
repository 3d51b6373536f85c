"""Every model loaded in this process, whatever loaded it, under one memory budget.

Four caches load models: the model manager's spandrel models (runtime.ModelCache), the
diffusers inpainting pipeline (diffusion.loader), LaMa files (inpaint.engines) and rembg
ONNX sessions (inpaint.matte). Each is a `KeyedCache`: its own map from its key to the
loaded object, with every object registered here as a `Resident` (kind, label, device,
bytes, an evict callback). One least-recently-used order and one budget
(RB_MEMORY_BUDGET_MB, else a share of the device) then govern them all: loading an SD
pipeline evicts idle upscalers, loading upscalers evicts an idle pipeline.

Why ModelCache is a KeyedCache and not the registry itself: the registry must also
hold objects ModelCache knows nothing about (pipelines, sessions), and the manager
needs a lookup by its own keys; the same small class serves all four caches, and the
registry stays free of any one kind's keys.

In use: an operation holds every model it fetches until it returns (`holding()`, which
`run_operation` enters), and a held model is never evicted; whatever it blocked is
evicted when it is released. The one-at-a-time caches (pipeline, LaMa, rembg) keep
that rule: fetching one retires the others of the same cache, at once when idle, else
when their operation ends.

Sizes: torch modules by their parameters and buffers, ONNX sessions by their model
file. Loaders read weights into CPU memory first; room is made for the model's size at
its working precision there, before it moves to the device, so a GPU never has to hold
the new model and the ones it replaces at once. A model larger than the whole budget
still loads, alone. After evicting, Python's garbage and the CUDA/MPS allocator's
cached blocks are freed so the memory really goes back.

Locks: the registry's lock and a cache's item lock are never held while calling out;
evict callbacks only take their cache's item lock. So no two locks wait on each other.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

@dataclass(eq=False)
class Resident:
    """One loaded model as the registry sees it."""

    key: Hashable
    kind: str
    label: str
    device: str
    nbytes: int
    evict: Callable[[], None]
    owner: object = None
    id: str = ""
    uses: int = 0
    retired: bool = False  # to go as soon as nothing uses it
    last_used: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "device": self.device,
                "bytes": self.nbytes, "in_use": self.uses > 0, "last_used": round(self.last_used, 3)}


# -- holding models for the length of an operation -------------------------------------
_scopes = threading.local()


@contextlib.contextmanager
def holding() -> Iterator[None]:
    """Models fetched inside (on this thread) stay held, never evicted, until it ends."""
    stack: list[list[tuple[ResidentModels, Resident]]] = _scopes.__dict__.setdefault("stack", [])
    held: list[tuple[ResidentModels, Resident]] = []
    stack.append(held)
    try:
        yield
    finally:
        stack.pop()
        for registry, entry in held:
            registry.release(entry)


def _current_scope() -> list[tuple[ResidentModels, Resident]] | None:
    stack = getattr(_scopes, "stack", None)
    return stack[-1] if stack else None


# -- the registry ------------------------------------------------------------------------
class ResidentModels:
    """Resident models of every kind in least-recently-used order, evicted past a budget."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, Resident] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # The budget the latest load enforced; releases trim to it. Every cache asks
        # for the same setting, so in practice it never changes within a process.
        self.budget_bytes: int | None = None

    def admit(self, entry: Resident, budget: int) -> list[Resident]:
        """Register a loaded model (held, inside an operation); evict others past the budget."""
        with self._lock:
            entry.id = f"m{next(self._ids)}"
            self._entries[entry.id] = entry
            self._hold(entry)
            self.budget_bytes = budget
            evicted = self._over_budget(0, keep=entry)
        self._finish(evicted)
        return evicted

    def make_room(self, nbytes: int, budget: int) -> list[Resident]:
        """Before a load of about `nbytes`: evict idle models until it would fit."""
        with self._lock:
            self.budget_bytes = budget
            evicted = self._over_budget(nbytes)
        self._finish(evicted)
        return evicted

    def acquire(self, entry: Resident) -> bool:
        """A cache hit: most recently used now (held, inside an operation). False: evicted."""
        with self._lock:
            if self._entries.get(entry.id) is not entry:
                return False
            self._entries.move_to_end(entry.id)
            entry.retired = False
            entry.last_used = time.time()
            self._hold(entry)
            return True

    def retire(self, entries: Iterable[Resident]) -> list[Resident]:
        """Evict these now where idle; the ones in use go when released."""
        with self._lock:
            evicted = []
            for entry in entries:
                if self._entries.get(entry.id) is not entry:
                    continue
                if entry.uses:
                    entry.retired = True
                else:
                    evicted.append(self._remove(entry))
        self._finish(evicted)
        return evicted

    def resize(self, entry: Resident, nbytes: int) -> list[Resident]:
        """A resident model now takes `nbytes` (an fp16 model reloaded in fp32): evict
        idle others past the budget."""
        with self._lock:
            if self._entries.get(entry.id) is not entry:
                return []
            entry.nbytes = int(nbytes)
            evicted = self._over_budget(0, keep=entry)
        self._finish(evicted)
        return evicted

    def release(self, entry: Resident) -> None:
        with self._lock:
            entry.uses -= 1
            evicted = []
            if entry.uses == 0 and entry.retired and self._entries.get(entry.id) is entry:
                evicted.append(self._remove(entry))
            evicted += self._over_budget(0)
        self._finish(evicted)

    def unload(self, ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Unload these models (all without ids): `unloaded` now, `pending` when their
        operation ends."""
        with self._lock:
            wanted = list(self._entries.values()) if ids is None else [
                self._entries[i] for i in ids if i in self._entries]
        evicted = self.retire(wanted)
        gone = {e.id for e in evicted}
        return {"unloaded": sorted(gone), "pending": sorted(e.id for e in wanted if e.id not in gone)}

    def entries(self) -> list[Resident]:
        """Least recently used first: the order of eviction."""
        with self._lock:
            return list(self._entries.values())

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def snapshot(self) -> dict[str, Any]:
        """What the server reports: the budget, the total and each model, LRU first."""
        with self._lock:
            models = [e.describe() for e in self._entries.values()]
            budget = self.budget_bytes
        return {"budget_bytes": budget, "total_bytes": sum(m["bytes"] for m in models),
                "models": models}

    # -- under the lock ----------------------------------------------------------------
    def _hold(self, entry: Resident) -> None:
        scope = _current_scope()
        if scope is not None and not any(e is entry for _, e in scope):
            entry.uses += 1
            scope.append((self, entry))

    def _remove(self, entry: Resident) -> Resident:
        del self._entries[entry.id]
        return entry

    def _over_budget(self, incoming: int, keep: Resident | None = None) -> list[Resident]:
        if self.budget_bytes is None:
            return []
        total = sum(e.nbytes for e in self._entries.values()) + incoming
        evicted = []
        for entry in list(self._entries.values()):
            if total <= self.budget_bytes:
                break
            if entry is keep or entry.uses:
                continue
            total -= entry.nbytes
            evicted.append(self._remove(entry))
        return evicted

    # -- outside the lock ---------------------------------------------------------------
    def _finish(self, evicted: list[Resident]) -> None:
        if not evicted:
            return
        for entry in evicted:
            log.info("unloading %s %s (%.1f MB) from %s", entry.kind, entry.label,
                     entry.nbytes / (1 << 20), entry.device)
            entry.evict()
        free_memory({e.device for e in evicted})


def free_memory(devices: Iterable[str]) -> None:
    """Collect the dropped objects, then hand the allocator's cached blocks back."""
    gc.collect()
    torch = sys.modules.get("torch")  # nothing on a GPU without torch loaded already
    if torch is None:
        return
    kinds = {d.split(":")[0] for d in devices}
    if "cuda" in kinds and torch.cuda.is_available():
        torch.cuda.empty_cache()
    if "mps" in kinds:
        with contextlib.suppress(Exception):
            torch.mps.empty_cache()


_process_registry = ResidentModels()


def resident_models() -> ResidentModels:
    """The registry of this process: every cache registers here unless given another."""
    return _process_registry


# -- a cache's own view ------------------------------------------------------------------
class KeyedCache:
    """One loader's models by its own keys, each registered in a ResidentModels.

    `budget` is bytes, or a function of the device giving them. With `one_at_a_time`,
    fetching or loading one model retires the cache's others (see the module docstring).
    """

    def __init__(self, kind: str, budget: int | Callable[[str], int], *,
                 registry: ResidentModels | None = None, one_at_a_time: bool = False) -> None:
        self.kind = kind
        self.registry = registry or resident_models()
        self.one_at_a_time = one_at_a_time
        self._budget = budget
        self._items: dict[Hashable, tuple[Resident, Any]] = {}
        self._items_lock = threading.Lock()
        # Serialises loads: two jobs asking for one model load it once.
        self.load_lock = threading.Lock()

    def budget_for(self, device: str) -> int:
        return self._budget(device) if callable(self._budget) else self._budget

    def get(self, key: Hashable) -> Any | None:
        with self._items_lock:
            found = self._items.get(key)
        if found is None:
            return None
        entry, value = found
        if not self.registry.acquire(entry):
            self._forget(key, entry)
            return None
        if self.one_at_a_time:
            self.registry.retire(e for e in self._entries() if e is not entry)
        return value

    def add(self, key: Hashable, value: Any, *, label: str, device: Any,
            nbytes: int) -> list[Hashable]:
        """Register a loaded model; returns this cache's keys evicted to make room."""
        # (The callback reads `entry` when it runs, by which time it is bound.)
        entry = Resident(key, self.kind, label, str(device), int(nbytes),
                         evict=lambda: self._forget(key, entry), owner=self)
        with self._items_lock:
            replaced = self._items.get(key)
            stale = [e for e, _ in self._items.values()] if self.one_at_a_time else []
        self.registry.retire(stale + ([replaced[0]] if replaced else []))
        # Registered before the cache hands it out, so a concurrent get() finds it known.
        evicted = self.registry.admit(entry, self.budget_for(str(device)))
        with self._items_lock:
            self._items[key] = (entry, value)
        return [e.key for e in evicted if e.owner is self]

    def load(self, key: Hashable, build: Callable[[], Any], *, label: str, device: str,
             measure: Callable[[Any], int]) -> Any:
        """The cached model for `key`, else `build()` it; `measure(model)` gives its size.
        `build` calls `make_room` once it knows the size, before the model goes to the device."""
        found = self.get(key)
        if found is not None:
            return found
        with self.load_lock:
            found = self.get(key)
            if found is not None:
                return found
            if self.one_at_a_time:  # free the previous model before loading the next
                self.registry.retire(self._entries())
            value = build()
            self.add(key, value, label=label, device=device, nbytes=measure(value))
            return value

    def resize(self, key: Hashable, nbytes: int) -> None:
        """The model under `key` now takes `nbytes` on its device."""
        with self._items_lock:
            found = self._items.get(key)
        if found is not None:
            self.registry.resize(found[0], nbytes)

    def make_room(self, nbytes: int, device: Any) -> None:
        """Before `nbytes` more go on the device: evict idle models (of any kind) past the budget."""
        self.registry.make_room(nbytes, self.budget_for(str(device)))

    def drop(self, predicate: Callable[[Hashable], bool]) -> None:
        """Forget the models whose keys match (files changed or went): never handed out
        again, unloaded now or when their operation ends."""
        with self._items_lock:
            keys = [k for k in self._items if predicate(k)]
            gone = [self._items.pop(k)[0] for k in keys]
        self.registry.retire(gone)

    def loaded(self) -> list[Hashable]:
        """Keys of this cache's resident models, least recently used first."""
        return [e.key for e in self.registry.entries() if e.owner is self]

    def values(self) -> list[Any]:
        with self._items_lock:
            return [value for _, value in self._items.values()]

    @property
    def total_bytes(self) -> int:
        return sum(e.nbytes for e in self.registry.entries() if e.owner is self)

    def _entries(self) -> list[Resident]:
        with self._items_lock:
            return [entry for entry, _ in self._items.values()]

    def _forget(self, key: Hashable, entry: Resident) -> None:
        with self._items_lock:
            found = self._items.get(key)
            if found is not None and found[0] is entry:
                del self._items[key]


# -- sizes and the budget ----------------------------------------------------------------
def module_bytes(*modules: Any, dtype: Any = None) -> int:
    """Bytes of torch modules' parameters and buffers; with `dtype`, as if their floating
    point tensors were cast to it (what they will take once moved at that precision)."""
    total = 0
    for module in modules:
        for t in [*module.parameters(), *module.buffers()]:
            size = dtype.itemsize if dtype is not None and t.is_floating_point() else t.element_size()
            total += t.numel() * size
    return total


def configured_budget(device: str) -> int:
    """The model manager's budget for this device: RB_MEMORY_BUDGET_MB (or config.toml's
    memory_budget_mb), else a share of the device's memory."""
    from bridge.config import load_settings
    from bridge.models.runtime import default_budget_bytes

    return default_budget_bytes(device, load_settings().memory_budget_mb)
