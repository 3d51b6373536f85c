"""rembg's session classes without the rest of rembg.

`import rembg.sessions` runs rembg's own `__init__` first, which imports its whole
`remove()` pipeline: pymatting, scipy and scikit-image. pymatting compiles its numba
kernels when imported, and on the first import after an install that takes over a
minute of CPU (80 s on a 2-core machine), during which a user's first background
removal just says "loading the model". We use only the session classes (each
model's pre- and post-processing), which import nothing from the rest of rembg, so
their folder is loaded as a package of its own, under a private name: a plain
`import rembg` elsewhere in the process still gets the real, complete package.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "_retouch_bridge_rembg_sessions"
_lock = threading.Lock()


def _load() -> ModuleType:
    spec = importlib.util.find_spec("rembg")  # finds the folder; runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("rembg is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "sessions"
    sessions = importlib.util.spec_from_file_location(
        PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)])
    if sessions is None or sessions.loader is None:
        raise ImportError(f"rembg's sessions are not where expected: {folder}")
    module = importlib.util.module_from_spec(sessions)
    sys.modules[PACKAGE] = module  # its modules import each other relatively, through it
    try:
        sessions.loader.exec_module(module)
    except BaseException:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        raise
    return module


def session_classes() -> list[type[Any]]:
    """Every rembg session class (u2net, isnet, birefnet...), each knowing its `name()`."""
    with _lock:
        module = sys.modules.get(PACKAGE) or _load()
    return list(module.sessions_class)
