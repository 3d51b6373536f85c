"""Reading and validating recipes (see the package docstring for the format)."""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError, InvalidParams
from bridge.imaging.formats import FORMATS
from bridge.ops.base import Operation
from bridge.ops.registry import get_operation
from bridge.paths import user_path

REFERENCE_PLACEHOLDER = "@reference"
OUTPUT_FORMATS = ("same", "png", "tiff", "jpeg", "webp")
MAX_STEPS = 50
MAX_TEXT = 1 << 20
_STEP_KEYS = ("op", "params")
_OUTPUT_KEYS = ("format", "quality", "suffix", "background")


@dataclass(frozen=True)
class Step:
    op: str
    params: dict[str, Any]  # validated, defaults filled in


@dataclass(frozen=True)
class OutputSpec:
    format: str = "same"
    quality: int | None = None
    suffix: str = ""
    background: str = "#ffffff"

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "quality": self.quality, "suffix": self.suffix,
                "background": self.background}


@dataclass(frozen=True)
class Recipe:
    name: str
    steps: tuple[Step, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    source: str | None = None  # the file it came from, for messages

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "output": self.output.to_json(),
                "steps": [{"op": s.op, "params": s.params} for s in self.steps]}

    def output_choice(self) -> tuple[str | None, int | None]:
        """The format and quality results are written in (None: the input's own format,
        the writer's default quality): [output] wins, else the first step's own
        `format`/`quality` hint (standardize's). Batch and HTTP results both follow it."""
        fmt = self.output.format if self.output.format != "same" else None
        quality = self.output.quality
        for step in self.steps:
            if fmt is None and step.params.get("format"):
                fmt = step.params["format"]
            if quality is None and step.params.get("quality"):
                quality = step.params["quality"]
        return fmt, quality

    def path_values(self) -> Iterator[tuple[int, str, str]]:
        """(step index, parameter, value) of every file parameter that is set."""
        for i, step in enumerate(self.steps):
            for name in path_params(get_operation(step.op)):
                value = step.params.get(name)
                if value:
                    yield i, name, value

    @property
    def uses_reference(self) -> bool:
        return any(v == REFERENCE_PLACEHOLDER for _, _, v in self.path_values())

    def reference_path(self) -> str | None:
        """The first reference image a step names (for the QA report's colour distance)."""
        for _, name, value in self.path_values():
            if name == "reference" and value != REFERENCE_PLACEHOLDER:
                return value
        return None

    def with_reference(self, path: str | Path) -> Recipe:
        """"@reference" replaced by a real file everywhere it appears."""
        steps = []
        for step in self.steps:
            params = {k: (str(path) if v == REFERENCE_PLACEHOLDER and k in
                          path_params(get_operation(step.op)) else v)
                      for k, v in step.params.items()}
            steps.append(replace(step, params=params))
        return replace(self, steps=tuple(steps))

    def digest(self) -> str:
        """Changes when the recipe or a file it names changes (batch resume keys on it)."""
        files = {}
        for _, _, value in self.path_values():
            try:
                st = Path(value).stat()
                files[value] = [st.st_size, st.st_mtime_ns]
            except OSError:
                files[value] = None
        blob = json.dumps({"recipe": self.to_json(), "files": files}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


def path_params(op: Operation) -> tuple[str, ...]:
    module = sys.modules.get(op.run.__module__)
    return tuple(getattr(module, "PATH_PARAMS", ()))


@contextmanager
def in_step(index: int, op: str) -> Iterator[None]:
    """Errors raised inside name the step they belong to, keeping their class and details."""
    try:
        yield
    except BridgeError as e:
        details = {**e.details, "step": index + 1, "op": op}
        err = type(e)(f"step {index + 1} ({op}): {e.message}", **details)
        raise err from None


# -- reading ------------------------------------------------------------------------
def parse_recipe(text: str, *, base_dir: Path | None = None, fmt: str | None = None,
                 source: str | None = None) -> Recipe:
    """A recipe from TOML or JSON text (JSON when it starts with '{' or fmt says so).

    With base_dir None (recipes sent over HTTP) relative file parameters are refused:
    the server's working folder means nothing to the client.
    """
    if len(text) > MAX_TEXT:
        raise InvalidParams("the recipe is too long")
    fmt = fmt or ("json" if text.lstrip().startswith("{") else "toml")
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise InvalidParams(f"the recipe is not valid {fmt.upper()}: {e}") from None
    return recipe_from_dict(data, base_dir=base_dir, source=source)


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidParams(f"cannot read the recipe '{path}': {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InvalidParams(f"the recipe '{path}' is not UTF-8 text") from None
    fmt = "json" if p.suffix.lower() == ".json" else None
    recipe = parse_recipe(text, base_dir=p.resolve().parent, fmt=fmt, source=str(p))
    if recipe.name == "recipe":
        recipe = replace(recipe, name=p.stem)
    return recipe


def recipe_from_dict(data: Any, *, base_dir: Path | None = None,
                     source: str | None = None) -> Recipe:
    if not isinstance(data, dict):
        raise InvalidParams("a recipe is a table/object with 'steps'")
    unknown = sorted(set(data) - {"name", "description", "output", "steps"})
    if unknown:
        raise InvalidParams(f"unknown recipe key '{unknown[0]}'; known: name, description, "
                            "output, steps")
    name = data.get("name", "recipe")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParams("the recipe's 'name' must be a non-empty string")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InvalidParams("a recipe needs at least one step ([[steps]] with an 'op')")
    if len(raw_steps) > MAX_STEPS:
        raise InvalidParams(f"a recipe has at most {MAX_STEPS} steps")
    steps = tuple(_step(i, raw, base_dir) for i, raw in enumerate(raw_steps))
    return Recipe(name.strip(), steps, _output(data.get("output", {})), source)


def _step(index: int, raw: Any, base_dir: Path | None) -> Step:
    if not isinstance(raw, dict) or not isinstance(raw.get("op"), str):
        raise InvalidParams(f"step {index + 1}: each step needs an 'op' naming the operation",
                            step=index + 1)
    name = raw["op"]
    with in_step(index, name):
        op = get_operation(name)
        nested = raw.get("params", {})
        if not isinstance(nested, dict):
            raise InvalidParams("'params' must be a table/object")
        inline = {k: v for k, v in raw.items() if k not in _STEP_KEYS}
        both = sorted(set(inline) & set(nested))
        if both:
            raise InvalidParams(f"parameter '{both[0]}' is given twice (inline and in params)",
                                param=both[0])
        params = op.params.validate({**nested, **inline})
        for key in path_params(op):
            value = params.get(key)
            if value and value != REFERENCE_PLACEHOLDER and _is_path(value):
                params[key] = _resolve_path(key, value, base_dir)
        return Step(name, params)


def _is_path(value: str) -> bool:
    """A file name rather than a model id: it has a folder or an extension (`u2net` is an id,
    `looks/ref.jpg` and `matte.onnx` are files)."""
    p = Path(value)
    return len(p.parts) > 1 or bool(p.suffix) or value.startswith("~")


def _resolve_path(key: str, value: str, base_dir: Path | None) -> str:
    p = user_path(value, key)
    if not p.is_absolute():
        if base_dir is None:
            raise InvalidParams(f"parameter '{key}': '{value}' is a relative path; give an "
                                "absolute path (or send the file as the 'reference' part)",
                                param=key)
        p = base_dir / p
    return str(p)


def _output(raw: Any) -> OutputSpec:
    if not isinstance(raw, dict):
        raise InvalidParams("[output] must be a table/object")
    unknown = sorted(set(raw) - set(_OUTPUT_KEYS))
    if unknown:
        raise InvalidParams(f"unknown [output] key '{unknown[0]}'; known: {', '.join(_OUTPUT_KEYS)}")
    fmt = raw.get("format", "same")
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt == "tif":
        fmt = "tiff"
    if fmt not in OUTPUT_FORMATS or (fmt != "same" and fmt not in FORMATS):
        raise InvalidParams(f"[output] format must be one of: {', '.join(OUTPUT_FORMATS)}")
    quality = raw.get("quality")
    if quality is not None and (not isinstance(quality, int) or isinstance(quality, bool)
                                or not 1 <= quality <= 100):
        raise InvalidParams("[output] quality must be an integer from 1 to 100")
    suffix = raw.get("suffix", "")
    if not isinstance(suffix, str) or any(c in suffix for c in "/\\\0") or len(suffix) > 64:
        raise InvalidParams("[output] suffix must be a short text without slashes")
    background = raw.get("background", "#ffffff")
    if not (isinstance(background, str) and len(background) == 7 and background[0] == "#"
            and all(c in "0123456789abcdefABCDEF" for c in background[1:])):
        raise InvalidParams("[output] background must be a colour like '#ffffff'")
    return OutputSpec(fmt, quality, suffix, background.lower())


# -- checks that need the machine ------------------------------------------------------
def check_recipe(recipe: Recipe, models: Any = None) -> None:
    """Everything knowable before work: placeholders filled, models present, files readable.

    Each step's operation runs its own early check (Operation.check) with the model
    manager (`models`; the default manager when None).
    """
    if recipe.uses_reference:
        raise InvalidParams("this recipe uses '@reference': give a reference image "
                            "(batch --reference FILE, or the 'reference' part over HTTP)")
    for i, step in enumerate(recipe.steps):
        op = get_operation(step.op)
        if op.check is None:
            continue
        if models is None:
            from bridge.models.manager import default_manager

            models = default_manager()
        with in_step(i, step.op):
            op.check(step.params, models)
