"""The WebSocket event stream against the real server."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.support.images import gradient, png_bytes


async def collect(url: str, token: str, submit, until: set[str], timeout: float = 30):
    events = []
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{url}/v1/events?token={token}") as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        job_id = await asyncio.get_running_loop().run_in_executor(None, submit)
        await ws.send_str(json.dumps({"type": "subscribe", "jobs": [job_id]}))
        async with asyncio.timeout(timeout):
            while True:
                event = await ws.receive_json()
                events.append(event)
                if event.get("job") == job_id and event["type"] in until:
                    return job_id, events


def test_progress_events_until_done(bridge_server):
    def submit():
        return bridge_server.submit("passthrough", png_bytes(gradient(8, 8)),
                                    {"delay_s": 0.6}).json()["id"]

    job_id, events = asyncio.run(collect(bridge_server.url, bridge_server.token, submit, {"done"}))
    mine = [e for e in events if e.get("job") == job_id]
    kinds = [e["type"] for e in mine]
    assert "progress" in kinds and kinds[-1] == "done"
    progress = [e["progress"] for e in mine if e["type"] == "progress"]
    assert progress == sorted(progress) and max(progress) > 0
    assert mine[-1]["result"]["layers"][0]["name"] == "image"


def test_cancel_event(bridge_server):
    def submit():
        job = bridge_server.submit("passthrough", png_bytes(gradient(8, 8)), {"delay_s": 30}).json()
        import time

        time.sleep(0.3)
        bridge_server.request("DELETE", f"/v1/jobs/{job['id']}")
        return job["id"]

    _job_id, events = asyncio.run(collect(bridge_server.url, bridge_server.token, submit,
                                         {"cancelled"}))
    assert events[-1]["type"] == "cancelled"


def test_websocket_needs_token(bridge_server):
    async def attempt():
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"{bridge_server.url}/v1/events"):
                    return "connected"
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    assert asyncio.run(attempt()) == 401


def test_websocket_refuses_foreign_origin(bridge_server):
    async def attempt():
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(
                        f"{bridge_server.url}/v1/events?token={bridge_server.token}",
                        origin="https://evil.example"):
                    return "connected"
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    assert asyncio.run(attempt()) == 403


def test_a_failing_job_says_so_in_order(tmp_path):
    """queued -> started -> (progress...) -> failed, the error's code in the last event."""
    from tests.support.server import running_bridge

    # 64x64 upscaled x4 is 65,536 pixels: accepted at submission, refused by the op.
    with running_bridge(tmp_path, env={"RB_MAX_PIXELS": "10000"}) as b:
        def submit():
            reply = b.submit("upscale", png_bytes(gradient(64, 64)), {"scale": 4, "model": "lanczos"})
            assert reply.status == 202, reply.body
            return reply.json()["id"]

        job_id, events = asyncio.run(collect(b.url, b.token, submit, {"failed", "done"}))
        mine = [e for e in events if e.get("job") == job_id]
        kinds = [e["type"] for e in mine]
        assert kinds[:2] == ["queued", "started"] and kinds[-1] == "failed", kinds
        assert set(kinds[2:-1]) <= {"progress"}
        error = mine[-1]["error"]
        assert error["code"] == "too_large" and "10,000" in error["message"]
        assert mine[-1]["state"] == "failed"
        assert b.get(f"/v1/jobs/{job_id}").json()["error"]["code"] == "too_large"
        assert b.alive()


def test_preview_events_and_the_preview_image(bridge_server, tmp_path_factory):
    """A fill job with the tiny SD 1.5 inpainting pipeline sends previews while it runs;
    each event names a URL that serves a small PNG."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    from tests.inpaint.support import cached_model
    from tests.inpaint.tiny import build_sd15_inpaint, photo_like

    sd15 = cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 40:90] = 255
    fetched: list[tuple[str, int, str, bytes]] = []

    def submit():
        reply = bridge_server.submit("fill", png_bytes(photo_like(96, 128)), mask=png_bytes(mask),
                                     params={"model": str(sd15), "steps": 3, "working_size": 128,
                                             "seed": 4, "scheduler": "euler", "preview_every": 1})
        assert reply.status == 202, reply.body
        return reply.json()["id"]

    async def watch():
        # As the panel does: fetch the preview when its event arrives, while the job runs.
        events = []
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{bridge_server.url}/v1/events?token={bridge_server.token}") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            loop = asyncio.get_running_loop()
            job_id = await loop.run_in_executor(None, submit)
            async with asyncio.timeout(180):
                while True:
                    event = await ws.receive_json()
                    if event.get("job") != job_id:
                        continue
                    events.append(event)
                    if event["type"] == "preview":
                        got = await loop.run_in_executor(None, bridge_server.get, event["url"])
                        fetched.append((event["url"], got.status,
                                        got.headers.get("Content-Type", ""), got.body))
                    if event["type"] in ("done", "failed", "cancelled"):
                        return job_id, events

    job_id, events = asyncio.run(watch())
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "done", events[-1]
    assert kinds.count("preview") >= 1
    assert kinds.index("preview") < kinds.index("done")
    assert {url for url, *_ in fetched} == {f"/v1/jobs/{job_id}/preview"}
    for _, status, ctype, body in fetched:
        assert status == 200 and ctype.startswith("image/png")
        preview = PILImage.open(io.BytesIO(body))
        assert preview.format == "PNG" and preview.mode == "RGB"
        assert 0 < preview.width <= 128 and 0 < preview.height <= 128
