"""Loaded models of every kind, as the real server reports them, and unloading them:
capabilities, GET /v1/models, GET /v1/system (the dashboard) and POST /v1/resident/unload."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from tests.faces.support import new_manager
from tests.inpaint.support import cached_model
from tests.inpaint.tiny import build_sd15_inpaint, photo_like, write_tiny_lama, write_u2net_like_onnx
from tests.models import tiny_models as tm
from tests.support.images import png_bytes
from tests.support.server import ROOT, running_bridge

KINDS = {"spandrel", "diffusion", "lama", "rembg"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("resident-server")
    # The same layout `retouch-bridge models import` writes: the server reads it at start.
    new_manager(home).import_file(tm.save(tm.compact(num_feat=16), home / "c.pth"),
                                  as_id="realesr-animevideov3")
    with running_bridge(home, env={"RB_DEVICE": "cpu"}) as bridge:
        yield bridge


@pytest.fixture(scope="module")
def loaded_every_kind(server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Runs one job per kind of model; returns what each job named as its model."""
    sd15 = cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)
    lama = cached_model(tmp_path_factory, "lama.safetensors", write_tiny_lama)
    onnx = cached_model(tmp_path_factory, "u2net-like.onnx", write_u2net_like_onnx)
    image = png_bytes(photo_like(64, 64))
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    jobs = [
        ("upscale", {"model": "realesr-animevideov3", "scale": 4}, None),
        ("fill", {"model": str(sd15), "steps": 2, "working_size": 64, "seed": 1}, mask),
        ("remove", {"model": str(lama), "working_size": 64}, mask),
        ("remove-background", {"model": str(onnx)}, None),
    ]
    for op, params, selection in jobs:
        reply = server.submit(op, image, params,
                              mask=None if selection is None else png_bytes(selection))
        assert reply.status == 202, reply.body
        status = server.wait(reply.json()["id"], timeout=180)
        assert status["state"] == "done", status
    return {"spandrel": "realesr-animevideov3", "diffusion": str(sd15), "lama": str(lama),
            "rembg": "u2net (u2net-like.onnx)"}


def test_every_kind_is_reported_where_models_are(server, loaded_every_kind) -> None:
    reports = [server.get("/v1/capabilities").json()["resident"],
               server.get("/v1/models").json()["resident"],
               server.get("/v1/system").json()["resident"]]
    assert reports[0] == reports[1] == reports[2]  # nothing loaded or used in between
    resident = reports[0]
    labels = {m["kind"]: m["label"] for m in resident["models"]}
    assert labels == loaded_every_kind
    for m in resident["models"]:
        assert m["device"] == "cpu" and m["bytes"] > 0 and m["in_use"] is False
    assert resident["total_bytes"] == sum(m["bytes"] for m in resident["models"])
    assert resident["budget_bytes"] >= 1 << 30  # automatic: a share of the machine, 1 GB at least
    # LRU first: the jobs ran in this order.
    assert [m["kind"] for m in resident["models"]] == ["spandrel", "diffusion", "lama", "rembg"]


def test_unload_one_then_all(server, loaded_every_kind) -> None:
    models = server.get("/v1/system").json()["resident"]["models"]
    lama = next(m for m in models if m["kind"] == "lama")
    reply = server.request("POST", "/v1/resident/unload", json.dumps({"ids": [lama["id"]]}).encode(),
                           headers={"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["unloaded"] == [lama["id"]] and body["pending"] == []
    assert {m["kind"] for m in body["resident"]["models"]} == KINDS - {"lama"}

    missing = server.request("POST", "/v1/resident/unload", json.dumps({"ids": [lama["id"]]}).encode())
    assert missing.status == 404 and lama["id"] in missing.json()["error"]["message"]
    assert server.request("POST", "/v1/resident/unload", b'{"ids": "m1"}').status == 400
    assert server.request("POST", "/v1/resident/unload", b"[1, 2]").status == 400

    everything = server.request("POST", "/v1/resident/unload").json()
    assert len(everything["unloaded"]) == 3 and everything["resident"]["models"] == []
    assert server.get("/v1/capabilities").json()["resident"]["models"] == []
    # Unloaded for real: the next job loads its model again.
    reply = server.submit("upscale", png_bytes(photo_like(32, 32)),
                          {"model": "realesr-animevideov3", "scale": 4})
    assert server.wait(reply.json()["id"])["state"] == "done"
    [again] = server.get("/v1/system").json()["resident"]["models"]
    assert again["kind"] == "spandrel" and again["id"] not in {m["id"] for m in models}


def test_the_dashboard_lists_loaded_models_and_unloads_them(server) -> None:
    from tests.dashboard.cdp import CHROMIUM, chromium_page

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    reply = server.submit("upscale", png_bytes(photo_like(32, 32)),
                          {"model": "realesr-animevideov3", "scale": 4})
    assert server.wait(reply.json()["id"])["state"] == "done"
    [model] = server.get("/v1/system").json()["resident"]["models"]

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await page.goto(f"{server.url}/dashboard?token={server.token}")
            shown = f"document.querySelector('#system .resident[data-resident-id=\"{model['id']}\"]')"
            await page.wait_for(f"!!{shown}", timeout=10)
            assert "realesr-animevideov3" in await page.eval(f"{shown}.textContent")
            await page.screenshot(ROOT / "test-artifacts" / "dashboard" / "loaded-models.png")
            await page.click("#unload-all")
            await page.wait_for(f"!{shown}", timeout=10)
            assert not [c for c in page.console if c.startswith("EXCEPTION")], page.console

    asyncio.run(scenario())
    assert server.get("/v1/system").json()["resident"]["models"] == []
