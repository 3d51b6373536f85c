"""Helpers for the fill/remove/background tests: cached tiny models, a network guard, checks."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from bridge.imaging.composite import paste_masked
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
