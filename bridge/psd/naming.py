"""Names for result layers: what was done, with the parameters a retoucher cares about.

`AI Fill "blue sky" seed 42` tells the next person in the chain how the layer
was made. Ops without a namer of their own get their title plus the
parameters that differ from the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bridge.ops.base import Operation

MAX_NAME = 255  # Photoshop's limit on a layer name
_PROMPT_CHARS = 60

Namer = Callable[[Mapping[str, Any]], str]


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _quoted(text: Any) -> str:
    text = " ".join(str(text).split())
    if len(text) > _PROMPT_CHARS:
        text = text[: _PROMPT_CHARS - 1].rstrip() + "…"
    return f'"{text}"'


def _model(params: Mapping[str, Any]) -> str:
    """A registry id as it is; a model file by its file name (its folder says nothing)."""
    from bridge.inpaint.sources import looks_like_path

    model = params.get("model")
    if not model:
        return ""
    text = str(model)
    if looks_like_path(text):
        text = re.split(r"[\\/]", text.rstrip("\\/"))[-1] or text
    return f" {text}"


def _seed(params: Mapping[str, Any]) -> str:
    seed = params.get("seed")
    return f" seed {seed}" if seed is not None else ""


def _fill(params: Mapping[str, Any]) -> str:
    prompt = params.get("prompt")
    return "AI Fill" + (f" {_quoted(prompt)}" if prompt else "") + _seed(params)


_ENGINES = {"lama": "LaMa", "opencv": "OpenCV"}


def _remove(params: Mapping[str, Any]) -> str:
    # The engine that ran (LaMa, or the OpenCV fallback without it): its quality differs.
    engine = params.get("engine")
    return "AI Remove" + (f" {_ENGINES.get(engine, engine)}" if engine else "") + _seed(params)


def _upscale(params: Mapping[str, Any]) -> str:
    return f"Upscale {_number(params.get('scale', 2))}×" + _model(params)


def _restore_faces(params: Mapping[str, Any]) -> str:
    strength = params.get("strength", params.get("fidelity"))
    seed = params.get("seed")  # GFPGAN samples noise; 0, the default, goes unsaid
    return ("Restore Faces" + _model(params)
            + (f" {_number(strength)}" if strength is not None else "")
            + (f" seed {seed}" if seed else ""))


def _remove_background(params: Mapping[str, Any]) -> str:
    return "Remove Background" + _model(params)


NAMERS: dict[str, Namer] = {
    "fill": _fill,
    "remove": _remove,
    "upscale": _upscale,
    "restore-faces": _restore_faces,
    "remove-background": _remove_background,
    "passthrough": lambda params: "Passthrough",
}


def generic(op: Operation, params: Mapping[str, Any]) -> str:
    """Title plus up to three non-default parameters, `key value`."""
    defaults = {p.name: p.default for p in op.params}
    changed = [(k, v) for k, v in params.items()
               if k in defaults and v != defaults[k] and v is not None]
    parts = [op.title]
    for key, value in changed[:3]:
        shown = _quoted(value) if isinstance(value, str) and " " in value else _number(value)
        parts.append(f"{key} {shown}")
    return " ".join(parts)


def layer_name(op: Operation, params: Mapping[str, Any]) -> str:
    namer = NAMERS.get(op.name)
    name = namer(params) if namer else generic(op, params)
    name = " ".join(name.split()) or op.title or op.name
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
