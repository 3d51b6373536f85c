"""Small steps the hardening tests share: pulling a model over HTTP, raw jobs, results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.server import Bridge


def model_state(b: Bridge, model_id: str) -> dict[str, Any]:
    return next(m for m in b.get("/v1/models").json()["models"] if m["id"] == model_id)


def pull(b: Bridge, model_id: str, timeout: float = 60) -> None:
    """POST /v1/models/{id}/pull and wait until the model is installed."""
    r = b.request("POST", f"/v1/models/{model_id}/pull")
    assert r.status == 202, r.body
    deadline = time.monotonic() + timeout
    while (state := model_state(b, model_id))["state"] != "installed":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


def raw_layout(pixels: np.ndarray) -> dict[str, int]:
    h, w, c = pixels.shape
    return {"width": w, "height": h, "channels": c, "depth": pixels.dtype.itemsize * 8}


def run_raw(b: Bridge, op: str, pixels: np.ndarray, params: dict[str, Any],
            timeout: float = 120) -> dict[str, Any]:
    """Submit raw pixels, wait for the job's final state."""
    r = b.submit(op, np.ascontiguousarray(pixels).tobytes(), params, raw=raw_layout(pixels))
    assert r.status == 202, r.body
    return b.wait(r.json()["id"], timeout=timeout)


def result_pixels(b: Bridge, job: dict[str, Any]) -> np.ndarray:
    r = b.get(f"/v1/jobs/{job['id']}/result?format=raw")
    assert r.status == 200, r.body
    h, w, c = (int(r.headers[k]) for k in ("X-Height", "X-Width", "X-Channels"))
    dtype = {"8": np.uint8, "16": np.uint16, "32": np.float32}[r.headers["X-Depth"]]
    return np.frombuffer(r.body, dtype).reshape(h, w, c)


def leftovers(cache: Path) -> list[str]:
    """Files under a bridge's cache folder, but for the running server's own lock
    (bridge.server.scratch): what jobs and uploads left behind."""
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if p.is_file() and p.parent.name != "job-owners")
