"""Operations by name, discovered from the modules of this package.

Each operation lives in its own module of `bridge.ops` and exposes `OPERATION`;
adding one touches nothing central. Modules must stay light to import: torch,
diffusers and friends are imported inside `run`, when the work needs them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import bridge.ops
from bridge.errors import BridgeError, InvalidInput, UnknownOperation
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.resident import holding
from bridge.ops.base import OpContext, Operation, OpResult

_INFRASTRUCTURE = {"base", "params", "registry"}
_operations: dict[str, Operation] | None = None


def operations() -> dict[str, Operation]:
    global _operations
    if _operations is None:
        found: dict[str, Operation] = {}
        for info in sorted(pkgutil.iter_modules(bridge.ops.__path__), key=lambda m: m.name):
            if info.name in _INFRASTRUCTURE or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"bridge.ops.{info.name}")
            op = getattr(module, "OPERATION", None)
            if isinstance(op, Operation):
                if op.name in found:
                    raise RuntimeError(f"operation '{op.name}' registered twice")
                found[op.name] = op
        _operations = found
    return _operations


def get_operation(name: str) -> Operation:
    ops = operations()
    if name not in ops:
        raise UnknownOperation(
            f"unknown operation '{name}'; available: {', '.join(sorted(ops))}", operation=name
        )
    return ops[name]


def prepare(op: Operation, image: Image | None, mask: Mask | None, params: Any,
            models: Any = None, *, selection_later: bool = False) -> dict[str, Any]:
    """Check the inputs against what the operation declares; returns validated params.

    With a model manager, the operation's own early checks run too.
    `selection_later`: the selection is not known yet (a PSD job's mask layer, read
    when the job runs), so only its presence counts as given now.
    """
    values = resolve_params(op, params, models)
    given = mask is not None or selection_later
    if op.mask == "none" and given:
        raise InvalidInput(f"operation '{op.name}' takes no mask")
    if op.mask == "required" and not selection_later and (mask is None or mask.is_empty):
        raise InvalidInput(
            f"operation '{op.name}' needs a selection: the mask is "
            + ("missing" if mask is None else "empty (nothing selected)")
        )
    # Last: what the user can fix in the request comes before what needs a download.
    if models is not None and op.check is not None:
        op.check(values, models)
    return values


def resolve_params(op: Operation, params: Any, models: Any = None) -> dict[str, Any]:
    """Validated params, with the user's default model when the request names none."""
    values = op.params.validate(params)
    if models is not None and "model" not in (params or {}):
        _apply_default_model(op, values, models)
    return values


def _apply_default_model(op: Operation, values: dict[str, Any], models: Any) -> None:
    """The user's default model for this operation's task, when the request names none."""
    defaults = getattr(getattr(models, "settings", None), "default_models", None)
    if not defaults or "model" not in values or not op.models:
        return
    try:
        task = models.entry(op.models[0]).task
    except BridgeError:
        return
    if task in defaults:
        values["model"] = defaults[task]


def run_operation(
    name: str,
    image: Image,
    mask: Mask | None = None,
    params: Any = None,
    ctx: OpContext | None = None,
) -> OpResult:
    op = get_operation(name)
    ctx = ctx or OpContext()
    values = prepare(op, image, mask, params, ctx.models)
    ctx.progress(0.0, "starting")
    # The models it fetches stay loaded until it returns (bridge.models.resident).
    with holding():
        result = op.run(image, mask, values, ctx)
    if ctx.warnings:
        result.metadata.setdefault("warnings", []).extend(ctx.warnings)
    result.metadata.setdefault("operation", name)
    return result
