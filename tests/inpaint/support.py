"""Helpers for the fill/remove/background tests: cached tiny models, a network guard, checks."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from bridge.imaging.composite import paste_masked
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer

_LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


def cached_model(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """Build a tiny model once per test session (in the session's temp folder), reuse it after."""
    root = factory.getbasetemp() / "tiny-models"
    root.mkdir(exist_ok=True)
    target = root / name
    done = root / f"{name}.done"
    if not done.exists():
        build(target)
        done.write_text("ok")
    return target


def block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Refuse, and record, every attempt to reach anything but loopback (for a fixture).

    Libraries sometimes swallow connection errors; the record proves there was no attempt.
    Use: `@pytest.fixture def no_network(monkeypatch): yield from block_network(monkeypatch)`.
    """
    attempts: list[object] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def outside(address: object) -> bool:
        host = address[0] if isinstance(address, tuple) else None
        return host is not None and str(host) not in _LOOPBACK

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and outside(address):
            attempts.append(address)
            raise OSError(f"network access blocked in tests: {address}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and outside(address):
            attempts.append(address)
            return 111
        return real_connect_ex(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is not None and str(host) not in _LOOPBACK:
            attempts.append(host)
            raise socket.gaierror(f"name lookup blocked in tests: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def composite(document: np.ndarray, layer: Layer) -> np.ndarray:
    """What a host shows: the layer over a copy of the document, through its layer mask."""
    out = np.array(document, copy=True)
    mask = layer.mask if layer.mask is not None else np.full(layer.image.pixels.shape[:2], 255, np.uint8)
    paste_masked(out, layer.image.pixels, layer.bounds, Mask(layer.bounds, mask))
    return out


def coverage_of(layer: Layer, height: int, width: int) -> np.ndarray:
    from bridge.imaging.geometry import Extent

    assert layer.mask is not None
    return Mask(layer.bounds, layer.mask).to_full(Extent(width, height))


def assert_exact_outside_the_feather(pixels: np.ndarray, layer: Layer, selection: Bounds,
                                     grow: int, feather: float | None = None) -> None:
    """The checks that do not go through paste_masked (which never writes where the mask is 0,
    so a composite alone cannot fail): the returned layer's own pixels outside its mask are the
    document's bits, and its mask covers nothing past the grown selection plus the feather."""
    from bridge.inpaint.region import auto_feather

    assert layer.mask is not None
    crop = pixels[layer.bounds.slices]
    hidden = layer.mask == 0
    assert hidden.any()
    assert np.array_equal(layer.image.pixels[hidden], crop[hidden])
    height, width = pixels.shape[:2]
    extent = Extent(width, height)
    if feather is None:
        feather = auto_feather(selection.pad(grow).clamp(extent))
    # Mask.feathered: a dilation of ceil(r), then a Gaussian of sigma r/2 cut at 3 sigma.
    reach = grow + math.ceil(feather) + math.ceil(3 * max(feather / 2, 0.5))
    allowed = np.zeros((height, width), bool)
    allowed[selection.pad(reach).clamp(extent).slices] = True
    cover = coverage_of(layer, height, width)
    assert not cover[~allowed].any(), "the layer mask reaches past the feather"
