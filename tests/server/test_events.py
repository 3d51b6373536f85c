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
