"""A spandrel model pulled through the server and used by a job, against the real bridge.

A small Compact network (realesr-animevideov3's architecture, random weights) is served
by a local HTTP server standing in for the model host, pulled with
`POST /v1/models/{id}/pull` (progress over the WebSocket, the connection dropped once
and resumed), then upscales a 16-bit RGBA TIFF with a real ICC profile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import tifffile
from PIL import ImageCms

from bridge.models.registry import builtin_registry
from tests.models import tiny_models as tm
from tests.models.file_server import FileServer
from tests.support.images import gradient, tiff_bytes
from tests.support.server import Bridge, running_bridge

MODEL = "realesr-animevideov3"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # The release's size (64 features, 16 convolutions: about 2.4 MB), so the download
    # takes more than one read and can be cut half-way.
    path = tm.save(tm.compact(num_conv=16, num_feat=64), tmp_path_factory.mktemp("w") / "a.pth")
    return path.read_bytes()


@pytest.fixture(scope="module")
def host(weights: bytes) -> Iterator[FileServer]:
    server = FileServer()
    server.start()
    # Cut once after the first megabyte and a bit: the pull resumes with a Range request.
    server.add("anime.pth", weights, drop_after=(1 << 20) + 12345, drops_left=1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bridge(host: FileServer, weights: bytes,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    home = tmp_path_factory.mktemp("pull-home")
    entries = [dataclasses.replace(e, url=host.url("anime.pth"), md5=None, size=len(weights),
                                   sha256=hashlib.sha256(weights).hexdigest())
               if e.id == MODEL else e for e in builtin_registry()]
    registry = home / "mirror.json"
    registry.write_text(json.dumps({"models": [e.to_json() for e in entries]}))
    # No RB_DEVICE: the device is picked as a user's would be.
    with running_bridge(home, env={"RB_MODEL_REGISTRY": str(registry)}) as b:
        yield b


async def pull_and_watch(b: Bridge, model_id: str) -> tuple[int, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{b.url}/v1/events?token={b.token}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(
            None, lambda: b.request("POST", f"/v1/models/{model_id}/pull"))
        async with asyncio.timeout(60):
            while True:
                event = await ws.receive_json()
                if event.get("type") == "model-progress" and event.get("model") == model_id:
                    events.append(event)
                    if event["state"] != "downloading":
                        return reply.status, events


@pytest.fixture(scope="module")
def pulled(bridge: Bridge) -> list[dict[str, Any]]:
    before = {s["id"]: s["state"] for s in bridge.get("/v1/models").json()["models"]}
    assert before[MODEL] == "missing"
    status, events = asyncio.run(pull_and_watch(bridge, MODEL))
    assert status == 202
    return events


def test_pull_of_a_single_file_model_reports_progress(bridge, pulled, host, weights) -> None:
    assert pulled[-1]["state"] == "installed", pulled[-1]
    downloading = [e for e in pulled if e["state"] == "downloading"]
    received = [e["received"] for e in downloading]
    # At least the start and the cut (events closer than 50 ms are coalesced, and the
    # final state supersedes the last progress).
    assert len(set(received)) >= 2 and received[-1] >= (1 << 20), pulled
    assert received == sorted(received) and received[-1] <= len(weights)
    assert all(e["total"] == len(weights) for e in downloading)
    assert host.ranges("anime.pth")[0] is None and host.ranges("anime.pth")[-1] == \
        f"bytes={(1 << 20) + 12345}-"
    state = {s["id"]: s for s in bridge.get("/v1/models").json()["models"]}[MODEL]
    assert state["state"] == "installed" and state["official"] is True
    assert hashlib.sha256(Path(state["path"]).read_bytes()).hexdigest() == \
        hashlib.sha256(weights).hexdigest()


def srgb_profile() -> bytes:
    """A real ICC profile (LittleCMS's sRGB, as Pillow writes it)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_sixteen_bit_rgba_tiff_keeps_depth_alpha_and_icc_through_the_model(bridge, pulled) -> None:
    icc = srgb_profile()
    pixels = gradient(36, 28, 4, 16)
    pixels[:, :, 3] = np.linspace(3000, 62000, 36).astype(np.uint16)[None, :]  # soft ramp
    r = bridge.submit("upscale", tiff_bytes(pixels, icc=icc), {"scale": 4, "model": MODEL})
    assert r.status == 202, r.body
    status = bridge.wait(r.json()["id"], timeout=120)
    assert status["state"] == "done", status
    assert status["result"]["metadata"]["model"] == MODEL
    got = bridge.get(f"/v1/jobs/{status['id']}/result")
    assert got.status == 200
    with tifffile.TiffFile(io.BytesIO(got.body)) as tif:
        page = tif.pages[0]
        out = page.asarray()
        assert page.tags["InterColorProfile"].value == icc
    assert out.dtype == np.uint16 and out.shape == (28 * 4, 36 * 4, 4)
    # Alpha is resampled on its own: the ramp, four times as wide (not the model's colour).
    want_alpha = np.repeat(pixels[:, :, 3], 4, axis=1).repeat(4, axis=0).astype(int)
    assert np.abs(out[:, :, 3].astype(int) - want_alpha)[:, 8:-8].max() < 62000 / 36
    spread = out[:, :, 3].max(axis=0).astype(int) - out[:, :, 3].min(axis=0)
    assert spread.max() <= 2, spread  # still one value per column
    # The colour went through the model from 16-bit values: not 8-bit ones scaled up.
    assert np.mean(out[:, :, :3] % 257 != 0) > 0.9


def test_device_details_come_once_torch_is_loaded(bridge, pulled) -> None:
    # (after the model job above, in this module's server: torch is loaded there now)
    r = bridge.submit("upscale", tiff_bytes(gradient(8, 8, 3, 16)), {"scale": 4, "model": MODEL})
    assert bridge.wait(r.json()["id"])["state"] == "done"
    device = bridge.get("/v1/capabilities").json()["device"]
    import torch

    assert device["probed"] is True and device["torch"] == torch.__version__
    assert device["kind"] == ("cuda" if torch.cuda.is_available() else
                              "mps" if torch.backends.mps.is_available() else "cpu")
