"""The job queue through the real server: progress, cancel, priority, limits, expiry."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.images import gradient, png_bytes
from tests.support.server import running_bridge

SMALL = png_bytes(gradient(8, 8))


def wait_state(bridge, job_id: str, states: tuple[str, ...], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = bridge.get(f"/v1/jobs/{job_id}").json()
        if s["state"] in states:
            return s
        time.sleep(0.02)
    raise TimeoutError(f"{job_id} never reached {states}")


def test_long_job_cancelled_midway_frees_the_worker(bridge_server):
    r = bridge_server.submit("passthrough", SMALL, {"delay_s": 60})
    job = r.json()["id"]
    running = wait_state(bridge_server, job, ("running",))
    # Wait for real progress so the cancel lands mid-way, not before the start.
    deadline = time.monotonic() + 10
    while running["progress"] == 0 and time.monotonic() < deadline:
        running = bridge_server.get(f"/v1/jobs/{job}").json()
    assert 0 < running["progress"] < 1
    t0 = time.monotonic()
    assert bridge_server.request("DELETE", f"/v1/jobs/{job}").status in (200, 202)
    final = wait_state(bridge_server, job, ("done", "failed", "cancelled"))
    assert final["state"] == "cancelled"
    assert time.monotonic() - t0 < 5
    nxt = bridge_server.submit("passthrough", SMALL).json()["id"]
    assert bridge_server.wait(nxt, timeout=10)["state"] == "done"
    assert bridge_server.get(f"/v1/jobs/{job}/result").status == 404


def test_cancel_queued_job(bridge_server):
    blocker = bridge_server.submit("passthrough", SMALL, {"delay_s": 30}).json()["id"]
    wait_state(bridge_server, blocker, ("running",))
    queued = bridge_server.submit("passthrough", SMALL).json()["id"]
    r = bridge_server.request("DELETE", f"/v1/jobs/{queued}")
    assert r.status == 200 and r.json()["state"] == "cancelled"
    bridge_server.request("DELETE", f"/v1/jobs/{blocker}")
    assert bridge_server.wait(blocker)["state"] == "cancelled"


def test_interactive_outranks_batch(bridge_server):
    blocker = bridge_server.submit("passthrough", SMALL, {"delay_s": 0.5}).json()["id"]
    wait_state(bridge_server, blocker, ("running",))
    batch = bridge_server.submit("passthrough", SMALL, priority="batch").json()["id"]
    interactive = bridge_server.submit("passthrough", SMALL).json()["id"]
    b, i = bridge_server.wait(batch), bridge_server.wait(interactive)
    assert b["state"] == i["state"] == "done"
    assert i["started"] < b["started"]
    assert b["priority"] == "batch"


def test_failing_job_fails_alone_and_server_keeps_serving(tmp_path):
    # An upscale whose output would exceed the pixel limit fails inside the worker.
    with running_bridge(tmp_path, env={"RB_MAX_PIXELS": "10000"}) as b:
        r = b.submit("upscale", png_bytes(gradient(90, 90)), {"scale": 4, "model": "lanczos"})
        assert r.status == 202, r.body
        s = b.wait(r.json()["id"])
        assert s["state"] == "failed"
        assert s["error"]["code"] == "too_large"
        assert "pixels" in s["error"]["message"]
        ok = b.submit("passthrough", SMALL).json()["id"]
        assert b.wait(ok)["state"] == "done"


def test_queue_full_is_429_with_retry_after(tmp_path):
    with running_bridge(tmp_path, env={"RB_QUEUE_LIMIT": "2"}) as b:
        blocker = b.submit("passthrough", SMALL, {"delay_s": 30}).json()["id"]
        wait_state(b, blocker, ("running",))
        assert b.submit("passthrough", SMALL).status == 202
        assert b.submit("passthrough", SMALL).status == 202
        r = b.submit("passthrough", SMALL)
        assert r.status == 429
        assert r.error_code == "queue_full"
        assert int(r.headers["Retry-After"]) >= 1


def test_waiting_jobs_are_bounded_by_the_memory_their_images_hold(tmp_path):
    """64 waiting jobs may be tiny or huge: what they hold decoded is bounded too."""
    image = png_bytes(gradient(300, 300))  # 270 KB decoded
    with running_bridge(tmp_path, env={"RB_QUEUE_MEMORY_MB": "1"}) as b:
        assert b.get("/v1/capabilities").json()["limits"]["queue_memory_mb"] == 1
        blocker = b.submit("passthrough", SMALL, {"delay_s": 30}).json()["id"]
        wait_state(b, blocker, ("running",))
        waiting = [b.submit("passthrough", image) for _ in range(3)]
        assert [r.status for r in waiting] == [202, 202, 202]  # 810 KB
        r = b.submit("passthrough", image)  # 1080 KB: over
        assert r.status == 429 and r.error_code == "queue_full"
        assert "MB of images" in r.json()["error"]["message"]
        assert int(r.headers["Retry-After"]) >= 1
        assert b.submit("passthrough", SMALL).status == 202  # a small one still fits
        assert b.request("DELETE", f"/v1/jobs/{blocker}").status in (200, 202)
        for w in waiting:
            assert b.wait(w.json()["id"])["state"] == "done"
        assert b.submit("passthrough", image).status == 202  # room again


def test_results_expire(tmp_path):
    with running_bridge(tmp_path, env={"RB_RESULT_TTL": "1"}) as b:
        job = b.submit("passthrough", SMALL).json()["id"]
        assert b.wait(job)["state"] == "done"
        assert b.get(f"/v1/jobs/{job}/result").status == 200
        time.sleep(1.3)
        r = b.get(f"/v1/jobs/{job}")
        assert r.status == 404 and "expired" in r.json()["error"]["message"]


def test_job_list_and_status_shape(bridge_server):
    job = bridge_server.submit("passthrough", SMALL, {"delay_s": 0}).json()["id"]
    s = bridge_server.wait(job)
    assert {"id", "op", "state", "progress", "created", "started", "finished", "result"} <= set(s)
    listed = [j["id"] for j in bridge_server.get("/v1/jobs").json()["jobs"]]
    assert job in listed


def test_capabilities_describe_operations(bridge_server):
    caps = bridge_server.get("/v1/capabilities").json()
    ops = {op["name"]: op for op in caps["operations"]}
    assert {"passthrough", "upscale"} <= set(ops)
    scale = ops["upscale"]["params"]["properties"]["scale"]
    assert scale["type"] == "number" and scale["maximum"] == 16
    assert caps["protocol"] == 1
    assert caps["device"]["kind"] in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("params,needle", [
    ({"scale": "big"}, "scale"), ({"scale": 99}, "at most"), ({"nope": 1}, "unknown parameter"),
    ({"model": "dall-e"}, "one of"),
])
def test_bad_params_are_400(bridge_server, params, needle):
    r = bridge_server.submit("upscale", SMALL, params)
    assert r.status == 400, r.body
    assert r.error_code == "invalid_params"
    assert needle in r.json()["error"]["message"]


def test_params_must_be_json_object(bridge_server):
    r = bridge_server.post_form("/v1/jobs", [("op", "upscale", None), ("params", "[1,2]", None),
                                             ("image", SMALL, "image/png")])
    assert r.status == 400
    r = bridge_server.post_form("/v1/jobs", [("op", "upscale", None), ("params", "{oops", None),
                                             ("image", SMALL, "image/png")])
    assert r.status == 400 and "JSON" in r.json()["error"]["message"]
    assert json.loads(r.body)["error"]["code"] == "invalid_params"
