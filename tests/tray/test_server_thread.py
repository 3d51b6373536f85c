"""The server on its own thread, as the tray runs it: start, serve, stop gently, no thread left."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import socket
import threading
import time

import aiohttp
import pytest

from bridge.config import load_settings
from bridge.errors import BridgeError
from bridge.tray.server_thread import BridgeThread
from tests.dashboard.slow_files import slow_file_server
from tests.support.images import gradient, png_bytes
from tests.support.server import Bridge, free_port


def start(port: int | None = None) -> tuple[BridgeThread, Bridge]:
    port = port or free_port()
    server = BridgeThread(load_settings(port=port))
    url = server.start()
    client = Bridge(url, port, server.state.token, server.settings.config_dir.parent,
                    None)  # type: ignore[arg-type]
    return server, client


def new_threads(before: set[threading.Thread]) -> list[str]:
    deadline = time.monotonic() + 3
    while True:
        extra = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


def test_a_running_job_may_finish_within_the_grace_period():
    before = set(threading.enumerate())
    server, client = start()
    assert client.get("/v1/health", token=False).json()["status"] == "ok"
    job = client.submit("passthrough", png_bytes(gradient(16, 16)), {"delay_s": 0.8}).json()["id"]
    waiting = client.submit("passthrough", png_bytes(gradient(16, 16))).json()["id"]
    while client.get(f"/v1/jobs/{job}").json()["state"] != "running":
        time.sleep(0.02)
    report = server.stop(grace_s=10)
    assert report["running"] == job and report["finished_in_grace"] is True
    assert report["cancelled_waiting"] == [waiting] and report["stopped"] is True
    states = {j.id: j.state for j in server.state.queue.jobs()}
    assert states == {job: "done", waiting: "cancelled"}
    assert new_threads(before) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", client.port), timeout=1)


def test_a_long_job_is_cancelled_after_the_grace_period():
    before = set(threading.enumerate())
    server, client = start()
    job = client.submit("passthrough", png_bytes(gradient(16, 16)), {"delay_s": 60}).json()["id"]
    while client.get(f"/v1/jobs/{job}").json()["state"] != "running":
        time.sleep(0.02)
    t0 = time.monotonic()
    report = server.stop(grace_s=0.3)
    assert time.monotonic() - t0 < 5
    assert report["finished_in_grace"] is False and report["running_state"] == "cancelled"
    assert new_threads(before) == []


def test_a_taken_port_is_a_clear_error_and_leaves_nothing_running():
    before = set(threading.enumerate())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = BridgeThread(load_settings(port=port))
        with pytest.raises(BridgeError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.start()
    assert not server.running
    assert new_threads(before) == []


def test_stop_cancels_a_download_and_closes_open_event_streams(tmp_path, monkeypatch):
    from bridge.models.registry import builtin_registry

    data = bytes(range(256)) * 4096 * 8  # 8 MiB at ~2 MB/s: still running at stop
    with slow_file_server({"m.pth": data}) as base:
        entry = dataclasses.replace(builtin_registry().get("realesr-animevideov3"),
                                    url=f"{base}/m.pth", md5=None, size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest())
        registry = tmp_path / "mirror.json"
        registry.write_text(json.dumps({"models": [entry.to_json()]}))
        monkeypatch.setenv("RB_MODEL_REGISTRY", str(registry))
        before = set(threading.enumerate())
        server, client = start()
        closed = threading.Event()

        async def listen() -> None:
            async with aiohttp.ClientSession() as s, s.ws_connect(
                    f"{client.url}/v1/events?token={client.token}") as ws:
                await ws.receive_json(timeout=5)  # hello
                ws_open.set()
                async for _msg in ws:
                    pass
            closed.set()

        ws_open = threading.Event()
        listener = threading.Thread(target=lambda: asyncio.run(listen()))
        listener.start()
        assert ws_open.wait(10)
        assert client.request("POST", f"/v1/models/{entry.id}/pull").status == 202
        deadline = time.monotonic() + 10
        while client.get("/v1/models").json()["models"][0]["state"] != "downloading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        report = server.stop(grace_s=1)
        assert time.monotonic() - t0 < 8  # an open dashboard does not hold the shutdown
        assert report["cancelled_downloads"] == [entry.id]
        assert closed.wait(5), "the event stream was left open"
        listener.join(5)
        assert new_threads(before) == []
    assert not (server.settings.models_dir / entry.filename).exists()
