"""The dashboard's page, cookie and endpoints against the real server over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
import tomllib

import aiohttp
import numpy as np
import pytest
from PIL import Image as PILImage

from bridge.config import load_settings
from tests.support.images import gradient, png_bytes


def cookie_for(bridge) -> str:
    reply = bridge.get(f"/dashboard?token={bridge.token}", token=False)
    assert reply.status == 303
    return reply.headers["Set-Cookie"].split(";", 1)[0]


def test_page_needs_the_token(bridge_server):
    assert bridge_server.get("/dashboard", token=False).error_code == "unauthorized"
    assert bridge_server.get("/dashboard?token=wrong", token=False).status == 401
    assert bridge_server.get("/dashboard/static/app.js", token=False).status == 401


def test_token_link_sets_a_strict_httponly_cookie_and_drops_the_token(bridge_server):
    reply = bridge_server.get(f"/dashboard?token={bridge_server.token}", token=False)
    assert reply.status == 303
    assert reply.headers["Location"] == "/dashboard"
    cookie = reply.headers["Set-Cookie"]
    attrs = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"rb_token={bridge_server.token};")
    assert {"httponly", "samesite", "path"} <= attrs
    assert "SameSite=Strict" in cookie

    page = bridge_server.get("/dashboard", token=False, headers={"Cookie": cookie.split(";")[0]})
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b"/dashboard/static/app.js" in page.body
    assert bridge_server.token.encode() not in page.body
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = bridge_server.get(f"/dashboard/static/{asset}", token=False,
                              headers={"Cookie": cookie.split(";")[0]})
        assert r.status == 200 and kind in r.headers["Content-Type"]


def test_cookie_authenticates_api_and_events(bridge_server):
    cookie = cookie_for(bridge_server)
    assert bridge_server.get("/v1/jobs", token=False, headers={"Cookie": cookie}).status == 200

    async def hello():
        async with aiohttp.ClientSession() as s, s.ws_connect(
                f"{bridge_server.url}/v1/events", headers={"Cookie": cookie},
                origin=bridge_server.url) as ws:
            return await ws.receive_json(timeout=5)

    assert asyncio.run(hello())["type"] == "hello"


def test_cookie_does_not_help_a_foreign_page(bridge_server):
    cookie = cookie_for(bridge_server)
    r = bridge_server.request("POST", "/v1/queue/pause", token=False,
                              headers={"Cookie": cookie, "Origin": "https://evil.example"})
    assert r.status == 403 and r.error_code == "bad_origin"
    assert bridge_server.get("/v1/queue").json()["paused"] is False


def test_pause_holds_jobs_and_resume_runs_them(bridge_server):
    cookie = cookie_for(bridge_server)
    own = {"Cookie": cookie, "Origin": bridge_server.url}
    paused = bridge_server.request("POST", "/v1/queue/pause", token=False, headers=own)
    assert paused.status == 200 and paused.json()["paused"] is True
    try:
        job = bridge_server.submit("passthrough", png_bytes(gradient(16, 16))).json()["id"]
        time.sleep(0.6)
        assert bridge_server.get(f"/v1/jobs/{job}").json()["state"] == "queued"
        q = bridge_server.get("/v1/queue").json()
        assert q["paused"] is True and q["counts"]["queued"] >= 1
    finally:
        resumed = bridge_server.request("POST", "/v1/queue/resume", token=False, headers=own)
    assert resumed.json()["paused"] is False
    assert bridge_server.wait(job, timeout=30)["state"] == "done"


def test_thumbnail_of_a_16_bit_result_is_a_small_8_bit_png(bridge_server):
    src = gradient(600, 300, channels=4, depth=16)
    job = bridge_server.submit("passthrough", png_bytes(src)).json()["id"]
    assert bridge_server.wait(job)["state"] == "done"
    r = bridge_server.get(f"/v1/jobs/{job}/thumbnail?size=128")
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    thumb = PILImage.open(io.BytesIO(r.body))
    assert thumb.mode == "RGBA" and thumb.size == (128, 64)
    # Same picture: compare with an independent reduction of the source.
    ref = PILImage.fromarray((src >> 8).astype(np.uint8)).resize((128, 64), PILImage.Resampling.BOX)
    diff = np.abs(np.asarray(thumb, np.int16) - np.asarray(ref, np.int16))
    assert diff.mean() < 6
    again = bridge_server.get(f"/v1/jobs/{job}/thumbnail?size=128")
    assert again.body == r.body


def test_thumbnail_refusals(bridge_server):
    job = bridge_server.submit("passthrough", png_bytes(gradient(8, 8))).json()["id"]
    bridge_server.wait(job)
    assert bridge_server.get(f"/v1/jobs/{job}/thumbnail?size=7").error_code == "invalid_params"
    assert bridge_server.get("/v1/jobs/j-nope/thumbnail").status == 404
    slow = bridge_server.submit("passthrough", png_bytes(gradient(8, 8)), {"delay_s": 5}).json()["id"]
    try:
        r = bridge_server.get(f"/v1/jobs/{slow}/thumbnail")
        assert r.status == 404 and "no preview" in r.json()["error"]["message"]
    finally:
        bridge_server.request("DELETE", f"/v1/jobs/{slow}")


def test_log_tail_shows_what_the_server_logged(bridge_server):
    cookie_for(bridge_server)  # logs "dashboard opened"
    body = bridge_server.get("/v1/log?lines=3").json()
    assert body["exists"] and body["path"].endswith("bridge.log")
    assert 1 <= len(body["lines"]) <= 3
    assert any("dashboard opened" in line for line in body["lines"])
    assert bridge_server.get("/v1/log?lines=x").error_code == "invalid_params"


def test_settings_are_saved_for_the_next_start(bridge_server, tmp_path, monkeypatch):
    before = bridge_server.get("/v1/settings").json()
    assert before["running"]["port"] == bridge_server.port
    new_port = 20000 + bridge_server.port % 10000
    models = tmp_path / "weights"
    r = bridge_server.request("PUT", "/v1/settings", json.dumps(
        {"port": new_port, "models_dir": str(models), "memory_budget_mb": 3072}).encode(),
        headers={"Content-Type": "application/json"})
    assert r.status == 200, r.body
    body = r.json()
    assert body["changed"] == ["memory_budget_mb", "models_dir", "port"]
    assert set(body["pending_restart"]) == {"port", "models_dir", "memory_budget_mb"}
    assert body["running"]["port"] == bridge_server.port  # the running server is unchanged

    config = bridge_server.home / "config" / "config.toml"
    data = tomllib.loads(config.read_text())
    assert data["port"] == new_port and data["memory_budget_mb"] == 3072
    monkeypatch.setenv("RB_HOME", str(bridge_server.home))
    loaded = load_settings()  # what the next start reads
    assert (loaded.port, loaded.models_dir, loaded.memory_budget_mb) == (new_port, models, 3072)

    # Back to the running value: nothing pending any more.
    r = bridge_server.request("PUT", "/v1/settings", json.dumps(
        {"port": bridge_server.port, "models_dir": before["running"]["models_dir"],
         "memory_budget_mb": 0}).encode(), headers={"Content-Type": "application/json"})
    assert r.json()["pending_restart"] == []


def test_a_port_other_than_7847_warns_about_the_panel_and_lightroom(bridge_server):
    def put(port: int) -> dict:
        r = bridge_server.request("PUT", "/v1/settings", json.dumps({"port": port}).encode(),
                                  headers={"Content-Type": "application/json"})
        assert r.status == 200, r.body
        return r.json()

    try:
        assert put(7847)["warnings"] == []
        assert bridge_server.get("/v1/settings").json()["warnings"] == []
        body = put(9123)
        [warning] = body["warnings"]
        assert "Photoshop panel only connects on port 7847" in warning
        assert "Lightroom" in warning and "http://127.0.0.1:9123" in warning
        assert bridge_server.get("/v1/settings").json()["warnings"] == body["warnings"]
        assert "7847" in body["help"]["port"]
    finally:
        put(bridge_server.port)


def test_the_panel_manifest_allows_only_the_default_port():
    # The warning above rests on this: if the manifest ever allows more, revisit it.
    import re

    from bridge import DEFAULT_PORT
    from tests.support.server import ROOT

    manifest = json.loads((ROOT / "uxp-panel" / "manifest.json").read_text())
    ports = set(re.findall(r"127\.0\.0\.1:(\d+)|localhost:(\d+)", json.dumps(manifest)))
    assert {p for pair in ports for p in pair if p} == {str(DEFAULT_PORT)}


@pytest.mark.parametrize("change, param", [
    ({"port": 80}, "port"),
    ({"port": "7847"}, "port"),
    ({"memory_budget_mb": -1}, "memory_budget_mb"),
    ({"models_dir": "relative/dir"}, "models_dir"),
    ({"default_models": {"upscale": 5}}, "default_models"),
    ({"host": "0.0.0.0"}, "host"),
])
def test_bad_settings_are_refused_and_nothing_is_written(bridge_server, change, param):
    config = bridge_server.home / "config" / "config.toml"
    before = config.read_bytes() if config.exists() else None
    r = bridge_server.request("PUT", "/v1/settings", json.dumps(change).encode(),
                              headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error_code == "invalid_params"
    assert r.json()["error"]["details"]["param"] == param
    assert (config.read_bytes() if config.exists() else None) == before


def test_reports_are_listed_and_served_inside_their_folder(bridge_server):
    folder = bridge_server.home / "cache" / "reports"
    (folder / "run-1_files").mkdir(parents=True, exist_ok=True)
    (folder / "run-1.html").write_text("<h1>QA run 1</h1>")
    (folder / "run-1_files" / "diff.png").write_bytes(png_bytes(gradient(4, 4)))
    newer = folder / "run-2.json"
    newer.write_text('{"files": 3}')
    now = time.time()
    os.utime(folder / "run-1.html", (now - 100, now - 100))
    body = bridge_server.get("/v1/reports").json()
    assert [r["name"] for r in body["reports"]] == ["run-2.json", "run-1.html"]
    page = bridge_server.get(body["reports"][1]["url"])
    assert page.status == 200 and page.body == b"<h1>QA run 1</h1>"
    assert page.headers["Content-Type"].startswith("text/html")
    assert bridge_server.get("/v1/reports/run-1_files/diff.png").status == 200
    for sneaky in ("/v1/reports/..%2Fconfig%2Ftoken", "/v1/reports/%2E%2E/config/token",
                   "/v1/reports/run-1_files/..%2F..%2F..%2Fconfig%2Ftoken"):
        r = bridge_server.get(sneaky)
        assert r.status == 404 and bridge_server.token.encode() not in r.body


def test_system_reports_device_memory_and_folders(bridge_server):
    body = bridge_server.get("/v1/system").json()
    assert body["version"] and body["protocol"] == 1
    assert body["device"]["kind"] in ("cpu", "cuda", "mps")
    assert body["memory"]["total"] > body["memory"]["available"] > 0
    assert body["process"]["rss"] > 10 << 20
    assert body["paths"]["log_file"].endswith("bridge.log")
    assert body["queue"]["paused"] is False
    assert body["window"] is False


def test_show_window_without_a_tray_says_so(bridge_server):
    r = bridge_server.request("POST", "/v1/ui/show")
    assert r.status == 404 and "serve" in r.json()["error"]["message"]
