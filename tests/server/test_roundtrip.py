"""Pixels through the real server: exact, with depth, alpha, ICC and EXIF orientation."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from tests.support.images import (
    adobe_rgb_like_profile,
    exif_with_orientation,
    gradient,
    jpeg_bytes,
    oriented,
    png_bytes,
    tiff_bytes,
)

ICC = adobe_rgb_like_profile()


def run_passthrough(bridge, data: bytes, query: str = "") -> tuple[dict, bytes, dict]:
    r = bridge.submit("passthrough", data)
    assert r.status == 202, r.body
    status = bridge.wait(r.json()["id"])
    assert status["state"] == "done", status
    res = bridge.get(f"/v1/jobs/{status['id']}/result{query}")
    assert res.status == 200, res.body
    return status, res.body, res.headers


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [3, 4])
def test_tiff_round_trip_exact_with_icc_and_orientation(bridge_server, depth, channels):
    stored = gradient(40, 24, channels, depth, seed=depth + channels)
    data = tiff_bytes(stored, icc=ICC, orientation=6)
    status, body, headers = run_passthrough(bridge_server, data)
    out = tifffile.TiffFile(io.BytesIO(body))
    page = out.pages[0]
    got = page.asarray()
    expected = oriented(stored, 6)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert page.tags["InterColorProfile"].value == ICC
    orientation = page.tags.get("Orientation")
    assert orientation is None or orientation.value == 1
    assert headers["X-Depth"] == str(depth)
    assert headers["X-Channels"] == str(channels)
    assert (headers["X-Width"], headers["X-Height"]) == ("24", "40")
    layer = status["result"]["layers"][0]
    assert layer["depth"] == depth and layer["bounds"] == [0, 0, 24, 40]


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [3, 4])
def test_png_round_trip_exact_with_icc_and_orientation(bridge_server, depth, channels):
    import cv2

    stored = gradient(30, 20, channels, depth, seed=3 * depth + channels)
    data = png_bytes(stored, icc=ICC, exif=exif_with_orientation(6))
    _, body, headers = run_passthrough(bridge_server, data)
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
    code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA
    got = cv2.cvtColor(decoded, code)
    np.testing.assert_array_equal(got, oriented(stored, 6))
    pil = PILImage.open(io.BytesIO(body))
    assert pil.info.get("icc_profile") == ICC
    assert pil.getexif().get(0x0112, 1) == 1
    assert headers["X-Depth"] == str(depth)


@pytest.mark.parametrize("depth,channels", [(8, 1), (8, 3), (16, 4), (16, 3), (8, 4)])
def test_raw_round_trip_is_exact(bridge_server, depth, channels):
    pixels = gradient(33, 17, channels, depth, seed=11)
    raw = {"width": 33, "height": 17, "channels": channels, "depth": depth}
    r = bridge_server.submit("passthrough", pixels.astype(pixels.dtype.newbyteorder("<")).tobytes(),
                             raw=raw)
    assert r.status == 202, r.body
    status = bridge_server.wait(r.json()["id"])
    res = bridge_server.get(f"/v1/jobs/{status['id']}/result")
    assert res.headers["Content-Type"].startswith("application/octet-stream")
    got = np.frombuffer(res.body, dtype=pixels.dtype).reshape(17, 33, channels)
    np.testing.assert_array_equal(got, pixels)


def test_raw_body_mode(bridge_server):
    pixels = gradient(20, 10, 4, 16)
    headers = {"Content-Type": "application/octet-stream", "X-Op": "passthrough",
               "X-Width": "20", "X-Height": "10", "X-Channels": "4", "X-Depth": "16",
               "X-Params": json.dumps({})}
    r = bridge_server.request("POST", "/v1/jobs", pixels.tobytes(), headers=headers)
    assert r.status == 202, r.body
    status = bridge_server.wait(r.json()["id"])
    res = bridge_server.get(f"/v1/jobs/{status['id']}/result")
    np.testing.assert_array_equal(np.frombuffer(res.body, np.uint16).reshape(10, 20, 4), pixels)


def test_icc_part_is_attached_to_raw_pixels(bridge_server):
    pixels = gradient(12, 12, 3, 8)
    r = bridge_server.post_form("/v1/jobs", [
        ("op", "passthrough", None),
        ("raw", json.dumps({"width": 12, "height": 12, "channels": 3, "depth": 8}), None),
        ("image", pixels.tobytes(), "application/octet-stream"),
        ("icc", ICC, "application/vnd.iccprofile"),
    ])
    status = bridge_server.wait(r.json()["id"])
    res = bridge_server.get(f"/v1/jobs/{status['id']}/result?format=tiff")
    page = tifffile.TiffFile(io.BytesIO(res.body)).pages[0]
    assert page.tags["InterColorProfile"].value == ICC
    np.testing.assert_array_equal(page.asarray(), pixels)


def test_jpeg_in_gives_jpeg_out_with_icc_and_exif_reset(bridge_server):
    stored = gradient(32, 16, 3, 8)
    data = jpeg_bytes(stored, icc=ICC, exif=exif_with_orientation(8))
    _, body, _ = run_passthrough(bridge_server, data)
    pil = PILImage.open(io.BytesIO(body))
    assert pil.format == "JPEG"
    assert pil.size == (16, 32)  # rotated once
    assert pil.info.get("icc_profile") == ICC
    assert pil.getexif().get(0x0112, 1) == 1


def test_sync_op_endpoint_returns_pixels(bridge_server):
    stored = gradient(10, 6, 3, 16)
    body, ctype = __import__("tests.support.server", fromlist=["multipart"]).multipart(
        [("params", json.dumps({"scale": 2, "model": "lanczos"}), None),
         ("image", tiff_bytes(stored), "image/tiff")])
    r = bridge_server.request("POST", "/v1/ops/upscale?format=tiff", body,
                              headers={"Content-Type": ctype})
    assert r.status == 200, r.body
    got = tifffile.imread(io.BytesIO(r.body))
    assert got.shape == (12, 20, 3) and got.dtype == np.uint16
    assert r.headers["X-Extent"] == "20,12"


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("tiff", b"II*\x00"), ("raw", None),
                                       ("webp", b"RIFF"), ("jpeg", b"\xff\xd8")])
def test_result_formats(bridge_server, fmt, magic):
    stored = gradient(16, 16, 3, 8)
    _, body, headers = run_passthrough(bridge_server, png_bytes(stored), f"?format={fmt}")
    if magic:
        assert body.startswith(magic)
    else:
        assert len(body) == 16 * 16 * 3
    assert headers["X-Width"] == "16"


def test_full_composite_of_primary_layer(bridge_server):
    stored = gradient(16, 16, 3, 8)
    _, body, _ = run_passthrough(bridge_server, png_bytes(stored), "?full=1&format=raw")
    np.testing.assert_array_equal(np.frombuffer(body, np.uint8).reshape(16, 16, 3), stored)


def test_depth_conversion_on_the_way_out(bridge_server):
    stored = gradient(16, 8, 3, 16)
    _, body, headers = run_passthrough(bridge_server, tiff_bytes(stored), "?depth=8&format=tiff")
    got = tifffile.imread(io.BytesIO(body))
    assert got.dtype == np.uint8 and headers["X-Depth"] == "8"
    expected = ((stored.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
