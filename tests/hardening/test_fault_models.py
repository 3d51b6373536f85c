"""A model file damaged on disk, through the real server and CLI: found, said clearly, fixed by a re-pull.

The model is a tiny Compact x4 network saved like realesr-animevideov3.pth, served by
a local HTTP server that a mirror registry (RB_MODEL_REGISTRY) points at.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bridge.models.registry import builtin_registry
from tests.models import tiny_models as tm
from tests.models.file_server import FileServer
from tests.support.server import ROOT, Bridge, running_bridge

MODEL = "realesr-animevideov3"
RAW = {"width": 24, "height": 20, "channels": 3, "depth": 8}
PIXELS = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8).tobytes()


@pytest.fixture
def mirror(tmp_path: Path, file_server: FileServer) -> Iterator[tuple[Path, dict[str, str]]]:
    """(RB_HOME, env) for a bridge whose registry serves the tiny model from 127.0.0.1."""
    data = tm.save(tm.compact(seed=5), tmp_path / "tiny.pth").read_bytes()
    entries = []
    for e in builtin_registry():
        if e.id == MODEL:
            e = dataclasses.replace(e, url=file_server.add(e.filename, data), size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest(), md5=None)
        entries.append(e.to_json())
    registry = tmp_path / "mirror.json"
    registry.write_text(json.dumps({"models": entries}))
    home = tmp_path / "home"
    yield home, {"RB_MODEL_REGISTRY": str(registry), "RB_DEVICE": "cpu"}


def model_state(b: Bridge) -> dict:
    return next(m for m in b.get("/v1/models").json()["models"] if m["id"] == MODEL)


def pull(b: Bridge) -> None:
    r = b.request("POST", f"/v1/models/{MODEL}/pull")
    assert r.status == 202, r.body
    deadline = time.monotonic() + 60
    while model_state(b)["state"] != "installed":
        assert time.monotonic() < deadline, model_state(b)
        time.sleep(0.05)


def upscale(b: Bridge) -> dict:
    r = b.submit("upscale", PIXELS, {"scale": 4, "model": MODEL}, raw=RAW)
    assert r.status == 202, r.body
    return b.wait(r.json()["id"], timeout=120)


def result(b: Bridge, job: dict) -> bytes:
    r = b.get(f"/v1/jobs/{job['id']}/result?format=raw")
    assert r.status == 200
    return r.body


def cli(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "RB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def flip(path: Path, offset: int, n: int = 16) -> None:
    """Damage bytes in place: same size, so only a checksum can tell."""
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def model_file(home: Path) -> Path:
    return home / "models" / builtin_registry().get(MODEL).filename


def test_verify_finds_a_flipped_file_the_server_refuses_it_and_a_re_pull_fixes_it(
        file_server, mirror):
    home, env = mirror
    with running_bridge(home, env=env) as b:
        pull(b)
        first = upscale(b)
        assert first["state"] == "done", first
        good = result(b, first)
    path = model_file(home)
    flip(path, path.stat().st_size // 2)

    check = cli(home, env, "models", "verify", MODEL)
    assert check.returncode == 1
    assert f"FAILED  {MODEL}" in check.stdout and f"models pull {MODEL}" in check.stdout

    with running_bridge(home, env=env) as b:
        assert model_state(b)["state"] == "corrupt"
        failed = upscale(b)
        assert failed["state"] == "failed"
        assert failed["error"]["code"] == "model_missing"
        assert "damaged" in failed["error"]["message"]
        assert f"models pull {MODEL}" in failed["error"]["message"]
        assert b.alive()

        pull(b)  # over HTTP, from the local mirror
        again = upscale(b)
        assert again["state"] == "done", again
        assert result(b, again) == good  # the same weights again: the same pixels
    assert cli(home, env, "models", "verify", MODEL).returncode == 0


def test_damage_the_size_check_or_the_loader_finds_is_said_clearly(file_server, mirror):
    """Bytes flipped in the zip's central directory (same size, not verified yet): the
    loader cannot read the file and the job says so; a truncated file is corrupt at once
    (its size differs from the manifest's), without a verify. The server goes on."""
    home, env = mirror
    with running_bridge(home, env=env) as b:
        pull(b)
        path = model_file(home)
        flip(path, path.stat().st_size - 100)
        job = upscale(b)
        assert job["state"] == "failed"
        assert job["error"]["code"] == "model_error", job["error"]
        assert path.name in job["error"]["message"] and "damaged" in job["error"]["message"]

        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        assert model_state(b)["state"] == "corrupt"
        job = upscale(b)
        assert job["state"] == "failed" and job["error"]["code"] == "model_missing"
        assert "damaged" in job["error"]["message"]

        pull(b)
        assert upscale(b)["state"] == "done"
        ok = b.submit("upscale", PIXELS, {"scale": 2, "model": "lanczos"}, raw=RAW).json()["id"]
        assert b.wait(ok)["state"] == "done"
