"""The command line as a user runs it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.support.images import adobe_rgb_like_profile, gradient, tiff_bytes

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_token_is_stable_and_private(tmp_path):
    first = cli("token", home=tmp_path)
    second = cli("token", home=tmp_path)
    assert first.returncode == 0
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 40
    assert (tmp_path / "config" / "token").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("args", [(), ("serve",), ("run",), ("token",), ("info",), ("ops",)])
def test_help_everywhere(tmp_path, args):
    r = cli(*args, "--help", home=tmp_path)
    assert r.returncode == 0 and "usage:" in r.stdout


def test_run_keeps_depth_and_icc(tmp_path):
    icc = adobe_rgb_like_profile()
    src = tmp_path / "in.tif"
    src.write_bytes(tiff_bytes(gradient(20, 10, 3, 16), icc=icc))
    out = tmp_path / "out.tif"
    r = cli("run", "upscale", str(src), "-o", str(out), "--param", "scale=2",
            "--param", "model=lanczos", home=tmp_path)
    assert r.returncode == 0, r.stderr
    page = tifffile.TiffFile(out).pages[0]
    assert page.shape == (20, 40, 3) and page.dtype == np.uint16
    assert page.tags["InterColorProfile"].value == icc
    assert "wrote" in r.stdout


def test_run_passthrough_is_exact(tmp_path):
    pixels = gradient(17, 9, 4, 16)
    src, out = tmp_path / "a.tif", tmp_path / "b.tif"
    src.write_bytes(tiff_bytes(pixels))
    assert cli("run", "passthrough", str(src), "-o", str(out), home=tmp_path).returncode == 0
    np.testing.assert_array_equal(tifffile.imread(out), pixels)


@pytest.mark.parametrize("args,needle", [
    (("run", "nope", "IN", "-o", "x.png"), "unknown operation"),
    (("run", "upscale", "IN", "-o", "x.png", "--param", "scale=99"), "at most"),
    (("run", "upscale", "IN", "-o", "x.png", "--param", "oops"), "key=value"),
    (("run", "upscale", "missing.png", "-o", "x.png"), "missing.png"),
    (("run", "passthrough", "IN", "-o", "IN"), "never overwritten"),
])
def test_errors_are_one_clear_line(tmp_path, args, needle):
    src = tmp_path / "in.tif"
    src.write_bytes(tiff_bytes(gradient(8, 8)))
    args = tuple(str(src) if a == "IN" else a for a in args)
    r = cli(*args, home=tmp_path)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert src.read_bytes() == tiff_bytes(gradient(8, 8))


def test_info_and_ops(tmp_path):
    r = cli("info", "--json", "--no-device", home=tmp_path)
    info = json.loads(r.stdout)
    assert info["models_dir"].startswith(str(tmp_path))
    ops = json.loads(cli("ops", "--json", home=tmp_path).stdout)
    assert {"passthrough", "upscale"} <= {o["name"] for o in ops}


def test_serve_does_not_import_torch(tmp_path):
    """Start-up stays light: the server process has no torch loaded after serving requests,
    the capabilities and system pages the panel and dashboard ask for first included."""
    from tests.support.server import running_bridge

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc")
    with running_bridge(tmp_path) as b:
        assert b.get("/v1/health", token=False).status == 200
        assert b.get("/v1/jobs").status == 200
        caps = b.get("/v1/capabilities")
        system = b.get("/v1/system")
        assert caps.status == 200 and system.status == 200
        assert "libtorch" not in Path(f"/proc/{b.proc.pid}/maps").read_text()
        # The device is still reported, honestly marked as not confirmed by torch.
        for device in (caps.json()["device"], system.json()["device"]):
            assert device["kind"] in ("cpu", "cuda", "mps") and device["probed"] is False
            assert device["torch"] and device["memory"]["total"] > 0


def test_second_server_on_same_port_says_so(tmp_path):
    from tests.support.server import running_bridge

    with running_bridge(tmp_path / "a") as b:
        # Same home: the running bridge proves it holds our token.
        r = cli("serve", "--port", str(b.port), home=tmp_path / "a")
        assert r.returncode == 1
        assert f"is already running on http://127.0.0.1:{b.port}" in r.stderr
        # Another home, another token: it cannot prove it is ours, and is not called ours.
        r = cli("serve", "--port", str(b.port), home=tmp_path / "b")
        assert r.returncode == 2
        assert "taken by something else" in r.stderr
        assert "another bridge running with a different token" in r.stderr
        assert "already running" not in r.stderr
