"""The one in-memory image type every operation takes and returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from bridge.imaging.geometry import Bounds, Extent

SourceFormat = Literal["png", "tiff", "jpeg", "webp", "raw", "psd", "generated"]

# Bits per channel that we carry losslessly. 32 means float32 in [0, 1] (HDR may exceed).
DEPTH_OF_DTYPE = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}
DTYPE_OF_DEPTH = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.float32)}


def max_value(depth: int) -> float:
    return {8: 255.0, 16: 65535.0, 32: 1.0}[depth]


@dataclass(frozen=True, eq=False)
class Image:
    """Pixels as an HxWxC array (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).

    Alpha, when present, is the last channel and is never premultiplied.
    `icc` and `exif` are carried byte for byte; EXIF orientation has already been
    applied to the pixels and reset to 1 by the decoder, so nothing rotates twice.
    `xmp` is the XMP packet as stored (only a tiff:Orientation is set to 1 when the
    decoder turned the pixels; a JPEG's Extended XMP is merged into its packet, so
    this is always the whole XMP tree); `iptc` the IPTC-IIM datasets (0x1C records);
    `photoshop_resources` the Photoshop image resource blocks ("8BIM") other than
    IPTC and those that describe pixels, kept opaque. All three pass between
    formats unchanged wherever the format can hold them.
    `resolution` is the print resolution, (x, y) pixels per inch, or None when
    the source gave none; resizing keeps it, so the print size follows the pixels
    (see bridge.imaging.resolution for where each format keeps it).
    """

    pixels: np.ndarray
    icc: bytes | None = None
    exif: bytes | None = None
    source_format: SourceFormat = "generated"
    metadata: dict[str, object] = field(default_factory=dict)
    xmp: bytes | None = None
    iptc: bytes | None = None
    photoshop_resources: bytes | None = None
    resolution: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        p = self.pixels
        if p.ndim == 2:
            object.__setattr__(self, "pixels", p[:, :, None])
            p = self.pixels
        if p.ndim != 3 or p.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"pixels must be HxWxC with 1-4 channels, got shape {p.shape}")
        if p.dtype not in DEPTH_OF_DTYPE:
            raise ValueError(f"unsupported pixel type {p.dtype}; use uint8, uint16 or float32")
        if self.resolution is not None:
            x, y = (float(v) for v in self.resolution)
            if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
                raise ValueError(f"resolution must be two positive numbers (pixels per inch), "
                                 f"got {self.resolution!r}")
            object.__setattr__(self, "resolution", (x, y))

    # -- shape ---------------------------------------------------------------
    @property
    def extent(self) -> Extent:
        return Extent(self.pixels.shape[1], self.pixels.shape[0])

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def depth(self) -> int:
        return DEPTH_OF_DTYPE[self.pixels.dtype]

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def color_channels(self) -> int:
        return self.channels - 1 if self.has_alpha else self.channels

    @property
    def color(self) -> np.ndarray:
        """A view of the colour channels (no copy)."""
        return self.pixels[:, :, : self.color_channels]

    @property
    def alpha(self) -> np.ndarray | None:
        """A view of the alpha channel (HxW), or None."""
        return self.pixels[:, :, -1] if self.has_alpha else None

    # -- derived images --------------------------------------------------------
    def with_pixels(self, pixels: np.ndarray, **changes: object) -> Image:
        """Same metadata (ICC, EXIF, XMP, IPTC, resolution, format), new pixels."""
        return replace(self, pixels=pixels, **changes)  # type: ignore[arg-type]

    def crop(self, bounds: Bounds) -> Image:
        """A view of a region (no copy); bounds must lie inside the image."""
        if not Bounds.of(self.extent).contains(bounds):
            raise ValueError(f"crop {bounds} outside image {self.extent}")
        rows, cols = bounds.slices
        return self.with_pixels(self.pixels[rows, cols])

    def describe(self) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "depth": self.depth,
            "alpha": self.has_alpha,
            "icc": self.icc is not None,
            "xmp": self.xmp is not None,
            "iptc": self.iptc is not None,
            "resolution": list(self.resolution) if self.resolution else None,
            "format": self.source_format,
        }
