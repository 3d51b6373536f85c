"""POST /v1/psd/apply against the real server: a job with progress, a PSD back, nothing left over."""

from __future__ import annotations

import io
import json

import numpy as np
from psd_testkit import build_psd, random_layer, snapshot, without
from psd_tools import PSDImage

from tests.support.images import png_bytes


def _post(bridge, psd: bytes, **fields: str | bytes):
    parts = [("psd", psd, "image/vnd.adobe.photoshop")]
    for name, value in fields.items():
        parts.append((name, value, "image/png" if isinstance(value, bytes) else None))
    return bridge.post_form("/v1/psd/apply", parts)


def test_apply_to_layer_returns_psd_with_new_layer(bridge_server, tmp_path):
    src = tmp_path / "doc.psd"
    rng = np.random.default_rng(5)
    build_psd(src, depth=16, size=(64, 48), layers=[("Photo", random_layer(rng, 40, 50, 3, 16), 4, 3)])
    before = snapshot(src)
    r = _post(bridge_server, src.read_bytes(), op="passthrough", layer="Photo",
              params=json.dumps({}))
    assert r.status == 202, r.body
    status = bridge_server.wait(r.json()["id"])
    assert status["state"] == "done", status
    added = status["result"]["psd"]["layers"]
    assert len(added) == 1 and added[0]["depth"] == 16
    res = bridge_server.get(f"/v1/jobs/{status['id']}/result")
    assert res.status == 200 and res.body[:4] == b"8BPS"
    assert res.headers["Content-Type"] == "image/vnd.adobe.photoshop"
    out = tmp_path / "out.psd"
    out.write_bytes(res.body)
    after = snapshot(out)
    new_paths = {la["path"] for la in after} - {la["path"] for la in before}
    assert without(after, new_paths) == before
    assert PSDImage.open(io.BytesIO(res.body)).depth == 16


def test_upscale_gives_a_new_document(bridge_server, tmp_path):
    src = tmp_path / "doc.psd"
    build_psd(src, size=(40, 30))
    r = _post(bridge_server, src.read_bytes(), op="upscale", composite="1",
              params=json.dumps({"scale": 2, "model": "lanczos"}))
    status = bridge_server.wait(r.json()["id"])
    assert status["state"] == "done", status
    psd = PSDImage.open(io.BytesIO(bridge_server.get(f"/v1/jobs/{status['id']}/result").body))
    assert psd.size == (80, 60)


def test_bad_requests_are_4xx_and_leave_nothing(tmp_path):
    from tests.support.server import running_bridge

    with running_bridge(tmp_path / "home") as bridge:
        _check_bad_requests(bridge, tmp_path)


def _check_bad_requests(bridge_server, tmp_path):
    src = tmp_path / "doc.psd"
    build_psd(src, size=(32, 32))
    data = src.read_bytes()
    cases = [
        ({"op": "passthrough", "layer": "x"}, b"not a psd at all", 415),
        ({"op": "passthrough"}, data, 400),  # neither layer nor composite
        ({"op": "nope", "composite": "1"}, data, 404),
        ({"op": "upscale", "composite": "1", "params": '{"scale": 99}'}, data, 400),
        ({"op": "passthrough", "composite": "1", "mask": png_bytes(
            __import__("numpy").zeros((5, 5), "uint8"))}, data, 400),
    ]
    for fields, psd, status in cases:
        r = _post(bridge_server, psd, **fields)
        assert r.status == status, (fields, r.status, r.body)
        assert r.json()["error"]["message"]
    r = _post(bridge_server, data, op="passthrough", layer="no such layer")
    status = bridge_server.wait(r.json()["id"])
    assert status["state"] == "failed"
    assert "no such layer" in status["error"]["message"]
    jobs_dir = bridge_server.home / "cache" / "jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())
    ok = _post(bridge_server, data, op="passthrough", composite="1")
    assert bridge_server.wait(ok.json()["id"])["state"] == "done"
    assert len(list(jobs_dir.iterdir())) == 1  # kept while its result lives
