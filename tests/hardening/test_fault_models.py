"""A model file damaged on disk, through the real server and CLI: found, said clearly, fixed by a re-pull.

The model is a tiny Compact x4 network saved like realesr-animevideov3.pth, served by
a local HTTP server that a mirror registry (RB_MODEL_REGISTRY) points at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge.models.registry import builtin_registry
from tests.hardening.helpers import model_state, pull, result_pixels, run_raw
from tests.models import tiny_models as tm
from tests.support.server import ROOT, Bridge, running_bridge

MODEL = "realesr-animevideov3"
PIXELS = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)


@pytest.fixture
def served(tmp_path: Path, mirror) -> tuple[Path, dict[str, str]]:
    return mirror({MODEL: tm.save(tm.compact(seed=5), tmp_path / "tiny.pth").read_bytes()})


def upscale(b: Bridge) -> dict:
    return run_raw(b, "upscale", PIXELS, {"scale": 4, "model": MODEL})


def result(b: Bridge, job: dict) -> bytes:
    return result_pixels(b, job).tobytes()


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


def pulled_and_upscaled(home: Path, env: dict[str, str]) -> bytes:
    """Pull the model from the local mirror and upscale with it: the good result."""
    with running_bridge(home, env=env) as b:
        return re_pulled_and_upscaled(b)


def re_pulled_and_upscaled(b: Bridge) -> bytes:
    pull(b, MODEL)  # POST /v1/models/{id}/pull, from the local HTTP server
    job = upscale(b)
    assert job["state"] == "done", job
    return result(b, job)


def test_a_flipped_file_is_found_before_loading_without_verify_and_a_re_pull_fixes_it(
        served):
    """Bytes flipped mid-file, same size, mtime moved on as by any write; no `models
    verify`: the server hashes the changed file before loading it, refuses it clearly,
    lists it as corrupt, and the pull endpoint downloads it again."""
    home, env = served
    good = pulled_and_upscaled(home, env)
    path = model_file(home)
    st = path.stat()
    flip(path, st.st_size // 2)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))

    with running_bridge(home, env=env) as b:
        assert model_state(b, MODEL)["state"] == "installed"  # nothing hashed yet
        failed = upscale(b)
        assert failed["state"] == "failed"
        assert failed["error"]["code"] == "model_missing", failed["error"]
        assert "damaged" in failed["error"]["message"]
        assert f"retouch-bridge models pull {MODEL}" in failed["error"]["message"]
        assert model_state(b, MODEL)["state"] == "corrupt"
        assert b.alive()

        assert re_pulled_and_upscaled(b) == good  # POST /v1/models/{id}/pull


def test_verify_finds_a_flipped_file_the_server_refuses_it_and_a_re_pull_fixes_it(
        served):
    home, env = served
    good = pulled_and_upscaled(home, env)
    path = model_file(home)
    flip(path, path.stat().st_size // 2)

    check = cli(home, env, "models", "verify", MODEL)
    assert check.returncode == 1
    assert f"FAILED  {MODEL}" in check.stdout and f"models pull {MODEL}" in check.stdout

    with running_bridge(home, env=env) as b:
        assert model_state(b, MODEL)["state"] == "corrupt"
        failed = upscale(b)
        assert failed["state"] == "failed"
        assert failed["error"]["code"] == "model_missing"
        assert "damaged" in failed["error"]["message"]
        assert f"models pull {MODEL}" in failed["error"]["message"]
        assert b.alive()

        assert re_pulled_and_upscaled(b) == good  # the same weights: the same pixels
    assert cli(home, env, "models", "verify", MODEL).returncode == 0


def test_damage_the_size_check_or_the_loader_finds_is_said_clearly(served):
    """Bytes flipped in the zip's central directory with the file's mtime put back (what
    the check before use cannot see: size and mtime as recorded, so it is not hashed):
    the loader cannot read the file and the job says so; a truncated file is corrupt at
    once (its size differs from the manifest's), without a verify. The server goes on."""
    home, env = served
    with running_bridge(home, env=env) as b:
        pull(b, MODEL)
        path = model_file(home)
        st = path.stat()
        flip(path, st.st_size - 100)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        job = upscale(b)
        assert job["state"] == "failed"
        assert job["error"]["code"] == "model_error", job["error"]
        assert path.name in job["error"]["message"] and "damaged" in job["error"]["message"]

        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        assert model_state(b, MODEL)["state"] == "corrupt"
        job = upscale(b)
        assert job["state"] == "failed" and job["error"]["code"] == "model_missing"
        assert "damaged" in job["error"]["message"]

        pull(b, MODEL)
        assert upscale(b)["state"] == "done"
        assert run_raw(b, "upscale", PIXELS, {"scale": 2, "model": "lanczos"})["state"] == "done"
