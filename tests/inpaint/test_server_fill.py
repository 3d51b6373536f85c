"""fill and remove end to end through the real bridge: 16-bit PNG and mask in, a layer with its
bounds and mask out, and the flattened document bit-identical outside the mask."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.inpaint.support import cached_model
from tests.inpaint.tiny import build_sd15_inpaint, photo_like
from tests.support.images import png_bytes


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)


def _decode(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if pixels.ndim == 3 else pixels


def test_fill_job_end_to_end(bridge_server, sd15: Path) -> None:
    pixels = photo_like(600, 800, depth=16)
    mask = np.zeros((600, 800), np.uint8)
    mask[250:330, 380:500] = 255
    reply = bridge_server.submit("fill", png_bytes(pixels), mask=png_bytes(mask), params={
        "model": str(sd15), "steps": 3, "working_size": 128, "seed": 4, "scheduler": "euler",
        "preview_every": 1})
    assert reply.status == 202, reply.body
    status = bridge_server.wait(reply.json()["id"], timeout=180)
    assert status["state"] == "done", status
    job = status["id"]
    layer = status["result"]["layers"][0]
    assert layer["name"] == "variation-1" and layer["has_mask"] and layer["depth"] == 16
    x, y, w, h = layer["bounds"]
    assert x <= 380 and y <= 250 and x + w >= 500 and y + h >= 330 and w < 400
    assert status["result"]["metadata"]["seeds"] == [4]

    got = bridge_server.get(f"/v1/jobs/{job}/result?format=png")
    assert got.status == 200 and got.headers["X-Bounds"] == f"{x},{y},{w},{h}"
    assert _decode(got.body).shape == (h, w, 3)
    layer_mask = _decode(bridge_server.get(f"/v1/jobs/{job}/result/variation-1/mask?format=png").body)
    assert layer_mask.shape == (h, w) and layer_mask.max() == 255

    full = _decode(bridge_server.get(f"/v1/jobs/{job}/result?format=png&full=1").body)
    assert full.dtype == np.uint16 and full.shape == pixels.shape
    cover = np.zeros((600, 800), np.uint8)
    cover[y:y + h, x:x + w] = layer_mask
    assert np.array_equal(full[cover == 0], pixels[cover == 0])
    assert (full[cover == 255] != pixels[cover == 255]).mean() > 0.5


def test_empty_selection_is_refused_at_submission(bridge_server, sd15: Path) -> None:
    pixels = photo_like(64, 64)
    reply = bridge_server.submit("fill", png_bytes(pixels), {"model": str(sd15)},
                                 mask=png_bytes(np.zeros((64, 64), np.uint8)))
    assert reply.status == 400 and reply.error_code == "invalid_input"
    assert "selection" in reply.json()["error"]["message"]


def test_remove_without_lama_reports_the_fallback(bridge_server) -> None:
    pixels = photo_like(200, 300)
    mask = np.zeros((200, 300), np.uint8)
    mask[80:120, 100:180] = 255
    reply = bridge_server.submit("remove", png_bytes(pixels), mask=png_bytes(mask))
    status = bridge_server.wait(reply.json()["id"])
    assert status["state"] == "done", status
    meta = status["result"]["metadata"]
    assert meta["engine"] == "opencv" and any("models pull big-lama" in w for w in meta["warnings"])


def test_capabilities_list_the_operations_and_their_models(bridge_server) -> None:
    caps = bridge_server.get("/v1/capabilities").json()
    ops = {op["name"]: op for op in caps["operations"]}
    assert ops["fill"]["mask"] == "required" and ops["remove"]["mask"] == "required"
    assert ops["remove-background"]["mask"] == "optional"
    fill_params = ops["fill"]["params"]["properties"]
    assert fill_params["loras"]["type"] == "array" and "euler_a" in fill_params["scheduler"]["enum"]
    models = {m["id"]: m for m in caps["models"]}
    for model_id, task in (("sd15-inpainting", "fill"), ("sdxl-inpainting", "fill"),
                           ("big-lama", "inpaint"), ("u2net", "remove-background"),
                           ("isnet-general-use", "remove-background"),
                           ("birefnet-general", "remove-background")):
        assert models[model_id]["task"] == task and models[model_id]["state"] == "missing"
    json.dumps(ops)


@pytest.mark.parametrize("op,params,model", [
    ("fill", {}, "sd15-inpainting"),
    ("remove", {"fallback": False}, "big-lama"),
    ("remove-background", {"model": "isnet-general-use"}, "isnet-general-use"),
])
def test_missing_models_are_refused_at_submission(bridge_server, op: str, params: dict,
                                                  model: str) -> None:
    pixels = photo_like(64, 64)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    reply = bridge_server.submit(op, png_bytes(pixels), params=params, mask=png_bytes(mask))
    assert reply.status == 409 and reply.error_code == "model_missing", reply.body
    details = reply.json()["error"]["details"]
    assert details["model"] == model and "retouch-bridge models" in details["hint"]


def test_unknown_and_wrong_kind_models_are_4xx_at_submission(bridge_server) -> None:
    pixels = png_bytes(photo_like(64, 64))
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    assert bridge_server.submit("fill", pixels, {"model": "nope-model"}, png_bytes(mask)).status == 404
    assert bridge_server.submit("remove", pixels, {"model": "u2net"}, png_bytes(mask)).status == 400
    assert bridge_server.submit("remove-background", pixels, {"model": "big-lama"}).status == 400
