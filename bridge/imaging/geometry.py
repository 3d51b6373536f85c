"""Pure, immutable geometry: sizes and rectangles in pixel coordinates.

Nothing here touches pixels; every helper returns a new value. Rectangles are
half-open: a Bounds covers x in [x, x + width) and y in [y, y + height).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Extent:
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"negative extent {self.width}x{self.height}")

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    def scaled(self, factor: float) -> Extent:
        return Extent(round(self.width * factor), round(self.height * factor))

    def multiple_of(self, n: int) -> Extent:
        """Round each side to the nearest multiple of n (at least n)."""
        return Extent(max(n, round(self.width / n) * n), max(n, round(self.height / n) * n))

    def fit_within(self, max_pixels: int) -> Extent:
        """Largest extent with this aspect ratio and at most max_pixels pixels."""
        if self.pixels <= max_pixels:
            return self
        f = math.sqrt(max_pixels / self.pixels)
        return Extent(max(1, math.floor(self.width * f)), max(1, math.floor(self.height * f)))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class Bounds:
    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"negative bounds size {self.width}x{self.height}")

    @staticmethod
    def of(extent: Extent) -> Bounds:
        return Bounds(0, 0, extent.width, extent.height)

    @staticmethod
    def from_corners(x0: int, y0: int, x1: int, y1: int) -> Bounds:
        return Bounds(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    @property
    def extent(self) -> Extent:
        return Extent(self.width, self.height)

    @property
    def x1(self) -> int:
        return self.x + self.width

    @property
    def y1(self) -> int:
        return self.y + self.height

    @property
    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices for indexing an HxW(xC) array."""
        return slice(self.y, self.y1), slice(self.x, self.x1)

    def offset(self, dx: int, dy: int) -> Bounds:
        return Bounds(self.x + dx, self.y + dy, self.width, self.height)

    def relative_to(self, outer: Bounds) -> Bounds:
        """These bounds in the coordinate system whose origin is outer's corner."""
        return self.offset(-outer.x, -outer.y)

    def pad(self, left: int, top: int | None = None, right: int | None = None,
            bottom: int | None = None) -> Bounds:
        top = left if top is None else top
        right = left if right is None else right
        bottom = top if bottom is None else bottom
        return Bounds.from_corners(self.x - left, self.y - top, self.x1 + right, self.y1 + bottom)

    def intersect(self, other: Bounds) -> Bounds:
        return Bounds.from_corners(
            max(self.x, other.x), max(self.y, other.y),
            min(self.x1, other.x1), min(self.y1, other.y1),
        )

    def clamp(self, extent: Extent) -> Bounds:
        return self.intersect(Bounds.of(extent))

    def union(self, other: Bounds) -> Bounds:
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        return Bounds.from_corners(
            min(self.x, other.x), min(self.y, other.y),
            max(self.x1, other.x1), max(self.y1, other.y1),
        )

    def contains(self, other: Bounds) -> bool:
        return (other.x >= self.x and other.y >= self.y
                and other.x1 <= self.x1 and other.y1 <= self.y1)

    def scaled(self, factor: float) -> Bounds:
        """Scale both corners, rounding outward so the result covers the scaled area."""
        return Bounds.from_corners(
            math.floor(self.x * factor), math.floor(self.y * factor),
            math.ceil(self.x1 * factor), math.ceil(self.y1 * factor),
        )

    def expand_to_multiple(self, n: int, extent: Extent) -> Bounds:
        """Grow to sides that are multiples of n where the image allows, staying inside it."""
        def grow(start: int, size: int, limit: int) -> tuple[int, int]:
            target = min(limit, math.ceil(size / n) * n)
            extra = target - size
            start = max(0, min(start - extra // 2, limit - target))
            return start, target
        x, w = grow(self.x, self.width, extent.width)
        y, h = grow(self.y, self.height, extent.height)
        return Bounds(x, y, w, h)

    def context_crop(self, extent: Extent, ratio: float, minimum: int = 0) -> Bounds:
        """Pad by a share of the larger side (at least `minimum`), clamped to the image."""
        pad = max(minimum, math.ceil(max(self.width, self.height) * ratio))
        return self.pad(pad).clamp(extent)

    @staticmethod
    def enclosing(items: Iterable[Bounds]) -> Bounds:
        result = Bounds(0, 0, 0, 0)
        for b in items:
            result = result.union(b)
        return result

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]

    def __str__(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"
