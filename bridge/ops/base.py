"""The one interface every operation implements, and what it returns.

run(image, mask, params, ctx) -> OpResult. An operation knows nothing of HTTP,
PSD or Photoshop; it gets pixels and a context, and returns layers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from bridge.errors import Cancelled
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.params import ParamSchema

MaskUse = Literal["none", "optional", "required"]
ProgressFn = Callable[[float, str], None]


@dataclass
class Layer:
    """One output layer: pixels placed at `bounds` in the result document.

    `mask` (uint8, same height and width as the image, 255 = show) becomes the
    layer mask; None means the layer shows everywhere it has pixels.
    """

    name: str
    image: Image
    bounds: Bounds
    mask: np.ndarray | None = None
    visible: bool = True

    def __post_init__(self) -> None:
        if self.bounds.extent != self.image.extent:
            raise ValueError(f"layer '{self.name}': bounds {self.bounds} != image {self.image.extent}")
        if self.mask is not None and self.mask.shape != (self.image.height, self.image.width):
            raise ValueError(f"layer '{self.name}': mask {self.mask.shape} != image size")


@dataclass
class OpResult:
    layers: list[Layer]
    # Size of the document the layers belong to (the input's, or scaled for upscale).
    extent: Extent
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> Layer:
        return self.layers[0]

    def layer(self, name: str) -> Layer | None:
        return next((la for la in self.layers if la.name == name), None)


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class OpContext:
    """What an operation may use: progress, cancellation, previews, models, warnings.

    Progress is a fraction in [0, 1]. `sub(a, b)` gives a context whose 0..1 maps
    onto a..b of this one, so steps of a recipe report one smooth bar.
    """

    def __init__(
        self,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        preview: Callable[[Image], None] | None = None,
        models: Any = None,
        start: float = 0.0,
        end: float = 1.0,
        max_pixels: int | None = None,
    ) -> None:
        self._progress = progress
        self.cancel_token = cancel or CancelToken()
        self._preview = preview
        self._models = models
        self._start, self._end = start, end
        # The largest result an operation may produce (the server's pixel limit).
        self.max_pixels = max_pixels
        self.warnings: list[str] = []

    @property
    def has_models(self) -> bool:
        """Whether the caller gave a model manager (or a factory of one)."""
        return self._models is not None

    @property
    def models(self) -> Any:
        """The model manager (created on first use so plain ops never import torch)."""
        if self._models is None:
            from bridge.models.manager import default_manager

            self._models = default_manager()
        elif callable(self._models) and not hasattr(self._models, "load"):
            self._models = self._models()
        return self._models

    def check_output_size(self, width: int, height: int) -> None:
        """Refuse results larger than the pixel limit before allocating them."""
        if self.max_pixels is not None and width * height > self.max_pixels:
            from bridge.errors import TooLarge

            raise TooLarge(f"the result would be {width}x{height} = {width * height:,} pixels, "
                           f"over the limit of {self.max_pixels:,} pixels (--max-pixels)")

    def progress(self, fraction: float, message: str = "") -> None:
        self.check_cancelled()
        if self._progress is not None:
            f = min(1.0, max(0.0, fraction))
            self._progress(self._start + (self._end - self._start) * f, message)

    def check_cancelled(self) -> None:
        if self.cancel_token.cancelled:
            raise Cancelled("the job was cancelled")

    def preview(self, image: Image) -> None:
        if self._preview is not None:
            self._preview(image)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def sub(self, start: float, end: float) -> OpContext:
        span = self._end - self._start
        child = OpContext(
            self._progress, self.cancel_token, self._preview, self._models,
            self._start + span * start, self._start + span * end, self.max_pixels,
        )
        child.warnings = self.warnings
        return child


class RunFn(Protocol):
    def __call__(
        self, image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext
    ) -> OpResult: ...


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    description: str
    params: ParamSchema
    run: RunFn
    mask: MaskUse = "none"
    # Models this operation may use by default (registry ids), for capabilities.
    models: tuple[str, ...] = ()
    # Changes the document size (upscale): results are a new document, not a layer.
    resizes: bool = False
    # Checks that need the model manager (an unknown model id, say), run when a job is
    # submitted so the client gets a 4xx at once rather than a failed job later.
    check: Callable[[dict[str, Any], Any], None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "mask": self.mask,
            "resizes": self.resizes,
            "models": list(self.models),
            "params": self.params.json_schema(),
        }


def full_layer(name: str, image: Image) -> Layer:
    return Layer(name, image, Bounds.of(image.extent))
