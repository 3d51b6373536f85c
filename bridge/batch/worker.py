"""One file through a recipe, in three stages every engine shares.

load (read, hash, decode, before-thumbnail) -> compute (the recipe) -> finish
(encode, atomic write, metrics, after-thumbnail). Engines run the stages in
separate threads so reading and writing overlap the model work; `process` runs
them back to back (Ray actors, the naive loop in the bench).

Every stage turns a failure into a "failed" record for that file: one bad file
never stops a batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge.batch.plan import Task
from bridge.errors import BridgeError
from bridge.imaging import codecs
from bridge.imaging.depth import to_uint8
from bridge.imaging.image import Image
from bridge.ops.base import OpContext
from bridge.recipes.recipe import Recipe, recipe_from_dict
from bridge.recipes.runner import run_recipe

log = logging.getLogger("bridge.batch")
THUMB_SIDE = 160


@dataclass
class Loaded:
    task: Task
    image: Image
    sha256: str
    size: int
    mtime_ns: int
    started: float
    before: str | None = None


@dataclass
class Computed:
    loaded: Loaded
    image: Image
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failed:
    task: Task
    error: dict[str, str]
    started: float
    facts: dict[str, Any] = field(default_factory=dict)


def error_info(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, BridgeError):
        return {"code": exc.code, "message": exc.message}
    if isinstance(exc, MemoryError):
        return {"code": "out_of_memory", "message": "not enough memory for this image"}
    if isinstance(exc, OSError):
        return {"code": "io_error", "message": f"{exc.strerror or exc}: {exc.filename or ''}"}
    log.error("unexpected failure:\n%s", traceback.format_exc())
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}


def thumbnail(image: Image, side: int = THUMB_SIDE) -> tuple[Image, str]:
    """A small 8-bit RGB(A) copy and the format to store it in (PNG keeps alpha)."""
    h, w = image.height, image.width
    f = min(1.0, side / max(h, w))
    px = image.pixels
    if f < 1.0:
        px = cv2.resize(px, (max(1, round(w * f)), max(1, round(h * f))),
                        interpolation=cv2.INTER_AREA)
        px = px if px.ndim == 3 else px[:, :, None]
    px = to_uint8(px)
    if image.color_channels == 1:
        grey = np.repeat(px[:, :, :1], 3, axis=2)
        px = np.concatenate([grey, px[:, :, 1:]], axis=2) if image.has_alpha else grey
    return Image(np.ascontiguousarray(px)), "png" if image.has_alpha else "jpeg"


def flatten_alpha(image: Image, background: str) -> Image:
    """Transparency composited onto a colour (for formats without alpha)."""
    from bridge.imaging.depth import from_float, to_float

    colour = to_float(image.color)
    if colour.shape[2] == 1:
        bg = np.float32(int(background[1:3], 16) / 255.0)
    else:
        bg = np.array([int(background[i:i + 2], 16) / 255.0 for i in (1, 3, 5)], np.float32)
    a = to_float(image.alpha)[:, :, None]
    return image.with_pixels(from_float(colour * a + bg * (1 - a), image.pixels.dtype))


class FileProcessor:
    def __init__(self, recipe: Recipe | dict[str, Any], out_dir: str | Path,
                 max_pixels: int | None = None, qa: bool = True,
                 models: Any = None) -> None:
        self.recipe = recipe if isinstance(recipe, Recipe) else recipe_from_dict(recipe)
        self.out_dir = Path(out_dir)
        self.thumb_dir = self.out_dir / ".retouch-batch" / "thumbs"
        self.max_pixels = max_pixels
        # QA metrics and thumbnails for the report (off with --no-report: less work per file).
        self.qa = qa
        self.models = models
        self.digest = self.recipe.digest()

    # -- stages ----------------------------------------------------------------
    def load(self, task: Task) -> Loaded | Failed:
        started = time.time()
        try:
            st = os.stat(task.src)
            data = Path(task.src).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
        except OSError as e:
            return Failed(task, error_info(e), started)
        facts = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
        try:
            image = codecs.decode(data, max_pixels=self.max_pixels)
            del data
            loaded = Loaded(task, image, sha, st.st_size, st.st_mtime_ns, started)
            if self.qa:
                loaded.before = self._thumb(image, task.key, "before")
            return loaded
        except Exception as e:
            return Failed(task, error_info(e), started, facts)

    def compute(self, loaded: Loaded | Failed) -> Computed | Failed:
        if isinstance(loaded, Failed):
            return loaded
        try:
            ctx = OpContext(models=self.models, max_pixels=self.max_pixels)
            result = run_recipe(self.recipe, loaded.image, ctx)
            return Computed(loaded, result.primary.image, result.metadata)
        except Exception as e:
            facts = {**self._facts(loaded), "thumbs": {"before": loaded.before, "after": None}}
            return Failed(loaded.task, error_info(e), loaded.started, facts)

    def finish(self, item: Computed | Failed) -> dict[str, Any]:
        if isinstance(item, Failed):
            return self._record(item.task, "failed", item.started, item.facts, error=item.error)
        loaded, task = item.loaded, item.loaded.task
        warnings = list(item.metadata.get("warnings", []))
        try:
            out = item.image
            if task.fmt == "jpeg" and out.has_alpha:
                out = flatten_alpha(out, self.recipe.output.background)
                warnings.append(f"transparency flattened onto {self.recipe.output.background} "
                                "for JPEG")
            Path(task.dst).parent.mkdir(parents=True, exist_ok=True)
            codecs.write_image(out, task.dst, task.fmt, quality=task.quality)
            metrics, thumbs = None, None
            if self.qa:
                from bridge.qa.metrics import measure

                metrics = measure(out)
                thumbs = {"before": loaded.before, "after": self._thumb(out, task.key, "after")}
        except Exception as e:
            return self._record(task, "failed", loaded.started, self._facts(loaded),
                                error=error_info(e))
        return self._record(task, "done", loaded.started, self._facts(loaded), output=task.out_rel,
                            metrics=metrics, thumbs=thumbs, warnings=warnings,
                            steps=[s.get("op") for s in item.metadata.get("steps", [])])

    def process(self, task: Task) -> dict[str, Any]:
        return self.finish(self.compute(self.load(task)))

    # -- helpers -----------------------------------------------------------------
    def _thumb(self, image: Image, key: str, which: str) -> str | None:
        try:
            small, fmt = thumbnail(image)
            name = f"{key}-{which}.{'png' if fmt == 'png' else 'jpg'}"
            self.thumb_dir.mkdir(parents=True, exist_ok=True)
            codecs.write_image(small, self.thumb_dir / name, fmt, quality=85)
            return name
        except Exception:  # a thumbnail is a nicety; never fail a file for it
            log.warning("thumbnail failed", exc_info=True)
            return None

    @staticmethod
    def _facts(loaded: Loaded) -> dict[str, Any]:
        return {"size": loaded.size, "mtime_ns": loaded.mtime_ns, "sha256": loaded.sha256}

    def _record(self, task: Task, status: str, started: float, facts: dict[str, Any],
                **extra: Any) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "type": "file", "input": task.rel, "index": task.index, "status": status,
            "output": None, "error": None, "recipe": self.digest,
            "seconds": round(time.time() - started, 4), "at": time.time(), **facts,
        }
        rec.update(extra)
        return rec
