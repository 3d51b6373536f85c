"""Work that fails part-way, on one real server: a model whose output blows up mid-image,
a model that raises mid-image, a device that runs out of memory for large tiles (the
tiling engine halves them), one that runs out at every size, and the process itself
running out of memory.

Models are tiny Compact x4 networks pulled from a local mirror (RB_MODEL_REGISTRY):
- `realesr-animevideov3`: a healthy one;
- `realesr-general-x4v3`: weights scaled by 1e20 and PReLU slopes of 0, so any non-zero
  input gives NaN (the runtime refuses non-finite output), while black stays exactly 0.
The out-of-memory device and the model that raises are simulated inside torch
(tests/hardening/fault_injection), with a limit in pixels, and the number of the forward
that raises, the tests change while the server runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bridge.models.registry import builtin_registry
from tests.hardening.conftest import FAULT_INJECTION
from tests.hardening.helpers import leftovers, pull, result_pixels, run_raw
from tests.hardening.procinfo import memory_kb
from tests.models import tiny_models as tm
from tests.models.file_server import FileServer
from tests.support.server import Bridge, running_bridge

HEALTHY, BROKEN = "realesr-animevideov3", "realesr-general-x4v3"
IMAGE = np.random.default_rng(11).integers(0, 256, (96, 96, 3), dtype=np.uint8)


def overflowing(seed: int = 5) -> dict:
    """A Compact x4 whose output is NaN for any non-zero input, and exactly 0 for zeros.

    Huge weights of both signs overflow to -inf somewhere; a PReLU slope of 0 turns
    -inf into NaN (0 * -inf), which no clamp hides. Zeros stay zeros (no biases).
    """
    state = tm.compact(seed=seed)
    for key, value in state["params"].items():
        if key.endswith(".bias"):
            value.zero_()
        elif value.dim() == 4:
            value.mul_(1e20)
        else:  # PReLU slopes
            value.zero_()
    return state


class Server:
    def __init__(self, bridge: Bridge, oom_file: Path, raise_file: Path) -> None:
        self.b = bridge
        self.oom_file = oom_file
        self.raise_file = raise_file

    def oom_above(self, pixels: int | None) -> None:
        self.oom_file.write_text("" if pixels is None else str(pixels))

    def raise_at_forward(self, n: int | None) -> None:
        """The n-th model forward from now raises RuntimeError (None: none does)."""
        self.raise_file.write_text("" if n is None else str(n))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("compute-faults")
    files = {HEALTHY: tm.save(tm.compact(seed=5), tmp / "healthy.pth").read_bytes(),
             BROKEN: tm.save(overflowing(), tmp / "broken.pth").read_bytes()}
    host = FileServer()
    host.start()
    entries = []
    for e in builtin_registry():
        if e.id in files:
            data = files[e.id]
            e = dataclasses.replace(e, url=host.add(e.filename, data), size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest(), md5=None)
        entries.append(e.to_json())
    (tmp / "mirror.json").write_text(json.dumps({"models": entries}))
    oom_file, raise_file = tmp / "oom-limit", tmp / "raise-at"
    env = {"RB_MODEL_REGISTRY": str(tmp / "mirror.json"), "RB_DEVICE": "cpu",
           "PYTHONPATH": str(FAULT_INJECTION), "RB_FAULT_OOM_FILE": str(oom_file),
           "RB_FAULT_RAISE_FILE": str(raise_file)}
    try:
        with running_bridge(tmp / "home", env=env) as b:
            pull(b, HEALTHY)
            pull(b, BROKEN)
            yield Server(b, oom_file, raise_file)
    finally:
        host.stop()


def upscale(server: Server, model: str, image: np.ndarray, tile: int) -> dict:
    return run_raw(server.b, "upscale", image, {"scale": 4, "model": model, "tile": tile})


def test_a_model_that_fails_mid_image_fails_its_job_alone(server: Server):
    b = server.b
    before = upscale(server, HEALTHY, IMAGE, 32)
    assert before["state"] == "done"
    # Black on the left, white on the right: the first tiles (and their context) are
    # exactly 0 and pass; the first tile that sees white overflows.
    half = np.zeros((24, 96, 3), np.uint8)
    half[:, 64:] = 255
    failed = upscale(server, BROKEN, half, 16)
    assert failed["state"] == "failed"
    assert failed["error"]["code"] == "model_error"
    assert f"model {BROKEN} produced non-finite values" in failed["error"]["message"]
    assert 0.05 < failed["progress"] < 0.92, "it should fail part-way, after some tiles"
    assert b.get(f"/v1/jobs/{failed['id']}/result").status == 404

    # The worker goes on, and nothing of the failed job shows up in later results.
    black = upscale(server, BROKEN, np.zeros((24, 96, 3), np.uint8), 16)
    assert black["state"] == "done"
    assert not result_pixels(b, black).any()
    after = upscale(server, HEALTHY, IMAGE, 32)
    assert after["state"] == "done"
    assert np.array_equal(result_pixels(b, after), result_pixels(b, before))


def test_a_model_that_raises_mid_image_is_a_clear_model_error(server: Server):
    b = server.b
    before = upscale(server, HEALTHY, IMAGE, 16)  # 36 tiles of 16 px
    assert before["state"] == "done"
    files_before = set(leftovers(b.home / "cache"))
    server.raise_at_forward(12)
    try:
        failed = upscale(server, HEALTHY, IMAGE, 16)
    finally:
        server.raise_at_forward(None)
    assert failed["state"] == "failed"
    error = failed["error"]
    assert error["code"] == "model_error", error
    assert error["message"].startswith(f"model {HEALTHY} failed on a ")
    assert "px tile: RuntimeError: simulated fault" in error["message"]
    assert error["details"]["model"] == HEALTHY and len(error["details"]["tile"]) == 2
    assert 0.2 < failed["progress"] < 0.5, "it should fail part-way, at the 12th tile of 36"
    assert b.get(f"/v1/jobs/{failed['id']}/result").status == 404
    assert set(leftovers(b.home / "cache")) <= files_before  # nothing of it left behind

    assert b.alive()
    after = upscale(server, HEALTHY, IMAGE, 16)
    assert after["state"] == "done"
    assert np.array_equal(result_pixels(b, after), result_pixels(b, before))


def test_tiles_too_large_for_the_device_are_halved_and_the_result_is_the_same(server: Server):
    b = server.b
    # Tile 16 with this model's context (pad 4, blend 4) feeds 32x32 inputs: under the limit.
    server.oom_above(40 * 40)
    try:
        small = upscale(server, HEALTHY, IMAGE, 16)
        big = upscale(server, HEALTHY, IMAGE, 64)  # 80x80 inputs: over it, twice halved
    finally:
        server.oom_above(None)
    assert small["state"] == big["state"] == "done", big
    meta_small = small["result"]["metadata"]
    meta_big = big["result"]["metadata"]
    assert meta_small["oom_retries"] == 0
    assert meta_big["tile"] == 64 and meta_big["oom_retries"] > 0
    diff = np.abs(result_pixels(b, big).astype(int) - result_pixels(b, small).astype(int))
    assert diff.max() <= 1  # float rounding across different tile seams, nothing more


def test_out_of_memory_at_every_tile_size_is_a_clear_failure(server: Server):
    b = server.b
    server.oom_above(8 * 8)
    try:
        job = upscale(server, HEALTHY, IMAGE, 32)
    finally:
        server.oom_above(None)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "out_of_memory"
    assert "memory" in job["error"]["message"] and "px tiles" in job["error"]["message"]
    assert upscale(server, HEALTHY, IMAGE, 32)["state"] == "done"
    assert b.alive()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="limits another process "
                    "with prlimit (Linux)")
def test_the_process_running_out_of_memory_fails_the_job_not_the_server(server: Server):
    """An address-space limit just above what the server uses: numpy's allocation of the
    model's output (a MemoryError) and OpenCV's of a Lanczos resize (cv2.error) fail."""
    b = server.b
    assert upscale(server, HEALTHY, IMAGE, 32)["state"] == "done"  # loaded before the limit
    pid = b.proc.pid
    size_kb = memory_kb(pid)["VmSize"]
    limit = (size_kb + 100 * 1024) * 1024  # 100 MB more than it maps now
    big = np.zeros((1500, 2000, 3), np.uint8)  # x4: a 144 MB output
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)  # the server inherits ours
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, hard))  # the soft limit only: no privilege
    try:
        with_model = upscale(server, HEALTHY, big, 256)
        lanczos = run_raw(b, "upscale", big, {"scale": 4, "model": "lanczos"})
    finally:
        resource.prlimit(pid, resource.RLIMIT_AS, (soft, hard))
    for job in (with_model, lanczos):
        assert job["state"] == "failed", job
        assert job["error"]["code"] == "out_of_memory", job["error"]
        assert "not enough memory" in job["error"]["message"]
    assert b.alive()
    assert upscale(server, HEALTHY, IMAGE, 32)["state"] == "done"
