"""restore-faces and denoise through the real server, with tiny models in its RB_HOME."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from bridge.faces.detect import YUNET_FILE
from tests.faces.support import hopper, new_manager, shared_or_skip
from tests.models import tiny_models as tm
from tests.support.images import png_bytes, tiff_bytes
from tests.support.server import running_bridge


@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_or_skip()


@pytest.fixture(scope="module")
def server(shared: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("faces-server")
    # The same layout `retouch-bridge models import` writes: the server reads it at start.
    m = new_manager(home)
    m.import_file(shared / "models" / YUNET_FILE)
    m.import_file(tm.save(tm.restoreformer(ch_mult=(1,) * 6), home / "RestoreFormer.pth"),
                  as_id="RestoreFormer")
    m.import_file(tm.save(tm.scunet(), home / "scunet.pth"), as_id="scunet-real-psnr")
    with running_bridge(home, env={"RB_DEVICE": "cpu"}) as bridge:
        yield bridge


def test_the_operations_are_offered(server) -> None:
    caps = server.get("/v1/capabilities").json()
    ops = {op["name"]: op for op in caps["operations"]}
    assert ops["restore-faces"]["resizes"] is False
    assert ops["restore-faces-upscale"]["resizes"] is True
    assert ops["denoise"]["mask"] == "optional"
    states = {m["id"]: m["state"] for m in caps["models"]}
    assert states["RestoreFormer"] == "installed" and states["GFPGANv1.4"] == "missing"


def test_restore_faces_through_the_server(server, shared) -> None:
    source = hopper(shared)
    r = server.submit("restore-faces", png_bytes(source), {"blend": 0.9})
    assert r.status == 202, r.body
    status = server.wait(r.json()["id"], timeout=300)
    assert status["state"] == "done", status
    result = status["result"]
    [layer] = result["layers"]
    assert layer["name"] == "restored faces" and layer["has_mask"] and layer["depth"] == 8
    x, y, w, h = layer["bounds"]
    assert 0 < w * h < 0.5 * 128 * 128 and result["extent"] == [128, 128]
    meta = result["metadata"]
    assert meta["model"] == "RestoreFormer" and len(meta["faces"]) == 1
    assert meta["region"] == layer["bounds"]
    job = status["id"]
    pixels = server.get(f"/v1/jobs/{job}/result")
    assert pixels.status == 200 and pixels.headers["X-Bounds"] == f"{x},{y},{w},{h}"
    assert pixels.headers["X-Has-Mask"] == "1"
    mask_reply = server.get(f"/v1/jobs/{job}/result/{quote(layer['name'])}/mask")
    assert mask_reply.status == 200
    mask = np.asarray(PILImage.open(io.BytesIO(mask_reply.body)))
    assert mask.shape == (h, w) and mask.max() == round(255 * 0.9)
    # The flattened document: bit-identical outside the mask, restored inside.
    flat = np.asarray(PILImage.open(io.BytesIO(server.get(f"/v1/jobs/{job}/result?full=1").body)))
    full_mask = np.zeros((128, 128), np.uint8)
    full_mask[y:y + h, x:x + w] = mask
    np.testing.assert_array_equal(flat[full_mask == 0], source[full_mask == 0])
    assert np.abs(flat.astype(int) - source.astype(int))[full_mask > 200].mean() > 10


def test_models_are_refused_at_submission(server, shared) -> None:
    data = png_bytes(hopper(shared))
    jobs_before = len(server.get("/v1/jobs").json()["jobs"])
    wrong = server.submit("restore-faces", data, {"model": "nope"})
    assert wrong.status == 400 and wrong.error_code == "invalid_params"
    missing = server.submit("restore-faces", data, {"model": "CodeFormer"})
    assert missing.status == 409 and missing.error_code == "model_missing"
    assert "models pull CodeFormer" in json.loads(missing.body)["error"]["details"]["hint"]
    assert len(server.get("/v1/jobs").json()["jobs"]) == jobs_before  # no job was queued


def test_denoise_keeps_sixteen_bit_and_alpha_through_the_server(server) -> None:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 65536, (40, 36, 4), dtype=np.uint16)
    r = server.submit("denoise", tiff_bytes(pixels), {"strength": 0.5})
    assert r.status == 202, r.body
    status = server.wait(r.json()["id"], timeout=300)
    assert status["state"] == "done", status
    assert status["result"]["metadata"]["model"] == "scunet-real-psnr"
    out = tifffile.imread(io.BytesIO(server.get(f"/v1/jobs/{status['id']}/result").body))
    assert out.dtype == np.uint16 and out.shape == pixels.shape
    np.testing.assert_array_equal(out[:, :, 3], pixels[:, :, 3])
    assert np.any(out[:, :, :3] != pixels[:, :, :3])
