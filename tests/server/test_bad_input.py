"""Hostile and broken input: a clear 4xx JSON error each, the server stays healthy, no temp files."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest

from tests.support.images import gradient, jpeg_bytes, png_bytes, tiff_bytes

GOOD_PNG = png_bytes(gradient(64, 48))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a size, with a tiny (wrong) body: must fail before allocating."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\0" * 16)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(
        ">I", zlib.crc32(b"IDAT" + idat))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk + iend


CASES = {
    "truncated png": GOOD_PNG[: len(GOOD_PNG) // 2],
    "truncated tiff": tiff_bytes(gradient(64, 48))[:300],
    "truncated jpeg": jpeg_bytes(gradient(64, 48))[:200],
    "random bytes": np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
    "png 0x0": png_header_only(0, 0),
    "png 100000x100000": png_header_only(100000, 100000),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_images_are_4xx(bridge_server, name):
    r = bridge_server.submit("passthrough", CASES[name])
    assert 400 <= r.status < 500, (r.status, r.body)
    err = r.json()["error"]
    assert err["code"] in ("invalid_input", "unsupported_format", "too_large")
    assert len(err["message"]) > 10
    if name == "png 100000x100000":
        assert r.status == 413 and "100000" in err["message"]
    assert bridge_server.alive()


def test_mask_of_wrong_size(bridge_server):
    mask = png_bytes(np.full((10, 10), 255, np.uint8))
    r = bridge_server.submit("passthrough", GOOD_PNG, mask=mask)
    assert r.status == 400
    assert "64x48" in r.json()["error"]["message"]


@pytest.mark.parametrize("raw,size", [
    ({"width": 10, "height": 10, "channels": 3, "depth": 8}, 299),
    ({"width": 10, "height": 10, "channels": 5, "depth": 8}, 500),
    ({"width": 10, "height": 10, "channels": 3, "depth": 12}, 300),
    ({"width": 0, "height": 10, "channels": 3, "depth": 8}, 0),
    ({"width": 100000, "height": 100000, "channels": 4, "depth": 16}, 64),
    ({"width": "10", "height": 10, "channels": 3, "depth": 8}, 300),
])
def test_raw_buffers_with_lying_headers(bridge_server, raw, size):
    r = bridge_server.submit("passthrough", b"\1" * max(size, 1), raw=raw)
    assert 400 <= r.status < 500, r.body
    assert r.json()["error"]["message"]


def test_unknown_operation(bridge_server):
    r = bridge_server.submit("make-it-pop", GOOD_PNG)
    assert r.status == 404
    assert r.error_code == "unknown_operation"
    assert "passthrough" in r.json()["error"]["message"]


def test_missing_parts_and_wrong_content_type(bridge_server):
    r = bridge_server.post_form("/v1/jobs", [("op", "passthrough", None)])
    assert r.status == 400 and "image" in r.json()["error"]["message"]
    r = bridge_server.request("POST", "/v1/jobs", b'{"op": "x"}',
                              headers={"Content-Type": "application/json"})
    assert r.status == 415
    r = bridge_server.post_form("/v1/jobs", [("op", "passthrough", None),
                                             ("surprise", b"x", "text/plain"),
                                             ("image", GOOD_PNG, "image/png")])
    assert r.status == 400 and "surprise" in r.json()["error"]["message"]


def test_body_limit_is_413(tmp_path):
    from tests.support.server import running_bridge

    with running_bridge(tmp_path, "--max-body-mb", "1") as b:
        r = b.submit("passthrough", b"\0" * (2 << 20),
                     raw={"width": 1024, "height": 1024, "channels": 2, "depth": 8})
        assert r.status == 413 and r.error_code == "too_large"
        assert b.alive()


def test_pixel_limit_is_413(tmp_path):
    from tests.support.server import running_bridge

    with running_bridge(tmp_path, "--max-pixels", "1000") as b:
        r = b.submit("passthrough", GOOD_PNG)
        assert r.status == 413
        assert "64x48" in r.json()["error"]["message"]


def test_unknown_job_and_layer(bridge_server):
    assert bridge_server.get("/v1/jobs/j-nope").status == 404
    job = bridge_server.submit("passthrough", GOOD_PNG).json()["id"]
    bridge_server.wait(job)
    r = bridge_server.get(f"/v1/jobs/{job}/result/nope")
    assert r.status == 404 and "image" in r.json()["error"]["message"]
    assert bridge_server.get(f"/v1/jobs/{job}/result/image/mask").status == 404
    assert bridge_server.get(f"/v1/jobs/{job}/result?format=bmp").status == 400
    assert bridge_server.get(f"/v1/jobs/{job}/result?quality=0").status == 400


def test_unknown_route_is_json_404(bridge_server):
    r = bridge_server.get("/v1/nothing-here")
    assert r.status == 404 and r.error_code == "not_found"


def test_no_temp_files_left(bridge_server):
    for data in CASES.values():
        bridge_server.submit("passthrough", data)
    leftovers = []
    for root, _, files in os.walk(bridge_server.home):
        leftovers += [os.path.join(root, f) for f in files
                      if not f.startswith(("token", "bridge.log", "config.toml"))]
    assert leftovers == []
    assert json.loads(bridge_server.get("/v1/health", token=False).body)["status"] == "ok"
