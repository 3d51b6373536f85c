"""The server on its own thread, as the tray runs it: start, serve, stop gently, no thread left."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from bridge.config import load_settings
from bridge.errors import BridgeError
from bridge.tray.server_thread import BridgeThread
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
