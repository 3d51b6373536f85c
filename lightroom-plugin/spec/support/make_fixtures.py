"""Writes the photos the Lightroom specs "render": small, with ICC profiles and EXIF.

Usage: make_fixtures.py OUT_DIR. Run by spec/run.sh with the bridge's own Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageCms

WIDTH, HEIGHT = 64, 48


def gradient(depth: int) -> np.ndarray:
    """A smooth colour ramp with detail: 16-bit values that 8 bits cannot hold."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    r = x / (WIDTH - 1)
    g = y / (HEIGHT - 1)
    b = 0.5 + 0.5 * np.sin(x / 3.0) * np.cos(y / 4.0)
    rgb = np.stack([r, g, b], axis=-1)
    top = 65535 if depth == 16 else 255
    return np.round(rgb * top).astype(np.uint16 if depth == 16 else np.uint8)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    icc = srgb_icc()
    # 16-bit RGB TIFF with an embedded ICC profile, what Lightroom renders for "TIFF 16-bit".
    tifffile.imwrite(out / "photo16.tif", gradient(16), photometric="rgb",
                     extratags=[(34675, 7, len(icc), icc, True)])
    img8 = Image.fromarray(gradient(8), "RGB")
    exif = Image.Exif()
    exif[0x010F] = "RetouchBridgeSpec"  # Make
    exif[0x0112] = 1  # Orientation: upright
    img8.save(out / "photo8.jpg", quality=92, icc_profile=icc, exif=exif.tobytes())
    img8.save(out / "photo8.tif", icc_profile=icc)
    img8.save(out / "photo8.png", icc_profile=icc)
    # Bytes Lightroom could never have rendered: the bridge must refuse them.
    (out / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 60)
    (out / "icc.bin").write_bytes(icc)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
