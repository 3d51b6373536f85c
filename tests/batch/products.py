"""Product-like test images: an object on a lit seamless backdrop, and real photos (scikit-image)."""

from __future__ import annotations

import cv2
import numpy as np


def product_image(width: int = 240, height: int = 180, *, backdrop=(205, 215, 230),
                  colour=(180, 40, 40), centre=(0.62, 0.45), size=(0.15, 0.26), angle=15.0,
                  label: bool = True, seed: int = 0, noise: float = 1.5) -> np.ndarray:
    """8-bit RGB: an ellipse "product" (with a backdrop-coloured label inside it) on a
    backdrop that is brighter in the middle, like a lit paper sweep, with sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    light = 0.96 + 0.08 * np.exp(-(((xx - width / 2) / (0.6 * width)) ** 2
                                   + ((yy - height / 2) / (0.6 * height)) ** 2))
    img = np.asarray(backdrop, np.float32)[None, None, :] * light[..., None]
    cx, cy = round(width * centre[0]), round(height * centre[1])
    axes = (round(width * size[0]), round(height * size[1]))
    if min(axes) > 0:
        cv2.ellipse(img, (cx, cy), axes, angle, 0, 360, tuple(float(c) for c in colour), -1,
                    lineType=cv2.LINE_AA)
    if label and min(axes) > 0:
        lw, lh = max(2, axes[0] // 3), max(2, axes[1] // 5)
        cv2.rectangle(img, (cx - lw, cy - lh), (cx + lw, cy + lh),
                      tuple(float(c) for c in backdrop), -1)
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def object_box(width: int, height: int, *, centre=(0.62, 0.45), size=(0.15, 0.26),
               angle: float = 15.0) -> tuple[int, int, int, int]:
    """The drawn ellipse's bounding box (x0, y0, x1, y1), from a mask drawn the same way."""
    mask = np.zeros((height, width), np.uint8)
    cx, cy = round(width * centre[0]), round(height * centre[1])
    cv2.ellipse(mask, (cx, cy), (round(width * size[0]), round(height * size[1])), angle, 0,
                360, 255, -1)
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def photo_product(seed: int = 0) -> np.ndarray:
    """A real photo (scikit-image's chelsea) cut into an ellipse on a seamless backdrop."""
    from skimage import data

    cat = cv2.resize(data.chelsea(), (150, 100), interpolation=cv2.INTER_AREA)
    canvas = product_image(260, 200, label=False, seed=seed, size=(0.0, 0.0))
    mask = np.zeros(cat.shape[:2], np.uint8)
    cv2.ellipse(mask, (75, 50), (72, 48), 0, 0, 360, 255, -1)
    region = canvas[60:160, 70:220]
    region[mask > 0] = cat[mask > 0]
    return canvas
