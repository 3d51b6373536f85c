"""Synthetic faces: a known similarity, and a face-space image with a dot on each landmark."""

from __future__ import annotations

import math

import numpy as np

from bridge.faces.align import FACE_SIZE, TEMPLATE_512

COLOURS = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1)]


def similarity_matrix(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def dotted_face(size: int = FACE_SIZE, sigma: float = 6.0) -> np.ndarray:
    """A face-space image: a dim disc with a bright Gaussian dot on each template landmark,
    each dot in its own colour channel mix so that dots cannot be confused."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((size, size, 3), np.float32)
    img += 0.1 * ((xx - 256) ** 2 + (yy - 290) ** 2 < 200**2)[:, :, None]
    for (px, py), colour in zip(TEMPLATE_512, COLOURS, strict=True):
        dot = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma**2))
        img += dot[:, :, None] * np.array(colour, np.float32) * 0.8
    return np.clip(img, 0, 1)


def dot_centres(img: np.ndarray, near: np.ndarray, radius: float) -> np.ndarray:
    """Intensity-weighted centres of the dots, each searched for around its expected place
    in the channel mix that identifies it (the dim disc is removed first)."""
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(np.float64)
    centres = []
    for (ex, ey), colour in zip(near, COLOURS, strict=True):
        weight = np.min(img[:, :, [i for i in range(3) if colour[i]]], axis=2).astype(np.float64)
        others = [i for i in range(3) if not colour[i]]
        if others:
            weight = weight - np.max(img[:, :, others], axis=2)
        weight = np.clip(weight - 0.15, 0, None)
        weight[(xx - ex) ** 2 + (yy - ey) ** 2 > radius**2] = 0
        assert weight.sum() > 0
        centres.append([(weight * xx).sum() / weight.sum(), (weight * yy).sum() / weight.sum()])
    return np.array(centres)
