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
            np.zeros((5, 5), np.uint8))}, data, 400),
    ]
    selection = np.zeros((32, 32), np.uint8)
    selection[8:20, 10:24] = 255
    mask = png_bytes(selection)
    # Checked at submission as /v1/jobs checks them, not in a job that fails later:
    cases += [
        ({"op": "fill", "composite": "1"}, data, 400),  # a masked op without a selection
        ({"op": "remove", "composite": "1", "mask": png_bytes(np.zeros((32, 32), np.uint8))},
         data, 400),  # an empty selection
        ({"op": "fill", "composite": "1", "mask": mask}, data, 409),  # its model: not installed
        ({"op": "fill", "composite": "1", "mask_from_layer": "Layer 1"}, data, 409),
        ({"op": "remove", "composite": "1", "mask": mask, "params": '{"fallback": false}'},
         data, 409),
        ({"op": "remove", "composite": "1", "mask": mask, "mask_from_layer": "x"}, data, 400),
        ({"op": "upscale", "composite": "1", "mask_from_layer": "x"}, data, 400),  # takes none
    ]
    for fields, psd, status in cases:
        r = _post(bridge_server, psd, **fields)
        assert r.status == status, (fields, r.status, r.body)
        assert r.json()["error"]["message"]
        if status == 409:
            assert r.error_code == "model_missing" and r.json()["error"]["details"]["model"]
    r = _post(bridge_server, data, op="passthrough", layer="no such layer")
    status = bridge_server.wait(r.json()["id"])
    assert status["state"] == "failed"
    assert "no such layer" in status["error"]["message"]
    jobs_dir = bridge_server.home / "cache" / "jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())
    ok = _post(bridge_server, data, op="passthrough", composite="1")
    assert bridge_server.wait(ok.json()["id"])["state"] == "done"
    assert len(list(jobs_dir.iterdir())) == 1  # kept while its result lives


async def _events_of(bridge, submit) -> tuple[str, list[dict]]:
    """Every event of the job `submit()` starts, from subscription to its end."""
    import asyncio

    import aiohttp

    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{bridge.url}/v1/events?token={bridge.token}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        job_id = await asyncio.get_running_loop().run_in_executor(None, submit)
        await ws.send_str(json.dumps({"type": "subscribe", "jobs": [job_id]}))
        events = []
        async with asyncio.timeout(60):
            while not events or events[-1]["type"] not in ("done", "failed", "cancelled"):
                event = await ws.receive_json()
                if event.get("job") == job_id:
                    events.append(event)
        return job_id, events


def test_remove_with_a_valid_mask_reports_progress(bridge_server, tmp_path):
    import asyncio

    from psd_testkit import find, layer_array

    src = tmp_path / "doc.psd"
    rng = np.random.default_rng(8)
    # Big enough that the job lasts past the hub's progress coalescing (50 ms).
    photo = random_layer(rng, 600, 800, 3, 8)
    photo[..., 3] = 255
    build_psd(src, size=(800, 600), layers=[("Photo", photo, 0, 0)])
    selection = np.zeros((600, 800), np.uint8)
    selection[10:30, 20:44] = 255

    def submit() -> str:
        r = _post(bridge_server, src.read_bytes(), op="remove", layer="Photo",
                  mask=png_bytes(selection), params=json.dumps({"model": "opencv"}))
        assert r.status == 202, r.body
        return r.json()["id"]

    job_id, events = asyncio.run(_events_of(bridge_server, submit))
    assert events[-1]["type"] == "done", events
    progress = [e for e in events if e["type"] == "progress"]
    fractions = [e["progress"] for e in progress]
    assert len(set(fractions)) >= 2 and fractions == sorted(fractions) and fractions[-1] > 0
    status = bridge_server.get(f"/v1/jobs/{job_id}").json()
    assert status["state"] == "done" and status["progress"] == 1.0
    added = status["result"]["psd"]["layers"]
    assert [la["path"] for la in added] == ["Retouch Bridge/AI Remove OpenCV"] and added[0]["has_mask"]
    out = tmp_path / "out.psd"
    out.write_bytes(bridge_server.get(f"/v1/jobs/{job_id}/result").body)
    layer = find(PSDImage.open(out), "Retouch Bridge/AI Remove OpenCV")
    left, top, right, bottom = layer.bbox
    assert left <= 20 and top <= 10 and right >= 44 and bottom >= 30
    inside = layer_array(layer, 8)[10 - top:30 - top, 20 - left:44 - left, :3]
    assert (inside != photo[10:30, 20:44, :3]).mean() > 0.5


def test_a_psb_comes_back_as_a_psb(bridge_server, tmp_path):
    src = tmp_path / "doc.psb"
    rng = np.random.default_rng(9)
    build_psd(src, size=(40, 30), psb=True, layers=[("Photo", random_layer(rng, 30, 40, 3, 8), 0, 0)])
    r = _post(bridge_server, src.read_bytes(), op="passthrough", layer="Photo")
    status = bridge_server.wait(r.json()["id"])
    assert status["state"] == "done", status
    res = bridge_server.get(f"/v1/jobs/{status['id']}/result")
    assert res.status == 200 and res.body[:6] == b"8BPS\x00\x02"  # version 2: PSB
    assert "result.psb" in res.headers.get("Content-Disposition", ""), res.headers
    assert PSDImage.open(io.BytesIO(res.body)).version == 2
