"""XMP, IPTC and Photoshop resources through the real server, untouched."""

from __future__ import annotations

import io
import json

import pytest
import tifffile
from PIL import Image as PILImage
from PIL import IptcImagePlugin

from bridge.imaging import codecs, xmp
from tests.imaging.helpers import (
    exif_blob,
    insert_jpeg_segments,
    iptc_record,
    lightroom_xmp,
    photoshop_app13,
    photoshop_resources,
    pil_bytes,
    psir,
    quadrant_pattern,
    read_xmp,
)
from tests.support.server import multipart

IPTC = iptc_record()
RESOURCES = photoshop_resources()


def camera_jpeg() -> bytes:
    """A JPEG as Lightroom exports one: EXIF orientation 6, XMP saying the same, IPTC."""
    base = pil_bytes(quadrant_pattern(16, 24), "JPEG", exif=b"Exif\0\0" + exif_blob(6),
                     xmp=lightroom_xmp(6))
    return insert_jpeg_segments(base, photoshop_app13(RESOURCES + psir(0x0404, IPTC)))


def passthrough(bridge, data: bytes, query: str = "") -> bytes:
    r = bridge.submit("passthrough", data)
    assert r.status == 202, r.body
    status = bridge.wait(r.json()["id"])
    assert status["state"] == "done", status
    res = bridge.get(f"/v1/jobs/{status['id']}/result{query}")
    assert res.status == 200, res.body
    return res.body


@pytest.mark.parametrize("query", ["", "?format=tiff", "?format=png", "?format=tiff&depth=16"])
def test_passthrough_keeps_xmp_iptc_and_resources(bridge_server, query: str) -> None:
    out = codecs.decode(passthrough(bridge_server, camera_jpeg(), query))
    assert (out.width, out.height) == (16, 24)  # stored 24 wide, turned once
    assert out.xmp == xmp.reset_orientation(lightroom_xmp(6))
    assert read_xmp(out.xmp)["orientation"] == "1"
    assert out.iptc == IPTC
    assert out.photoshop_resources == RESOURCES


def test_upscale_result_keeps_them_for_other_readers(bridge_server) -> None:
    tiff = codecs.encode(codecs.decode(camera_jpeg()), "tiff")
    body, ctype = multipart([("params", json.dumps({"scale": 2, "model": "lanczos"}), None),
                             ("image", tiff, "image/tiff")])
    r = bridge_server.request("POST", "/v1/ops/upscale?format=jpeg", body,
                              headers={"Content-Type": ctype})
    assert r.status == 200, r.body
    with PILImage.open(io.BytesIO(r.body)) as pil:
        assert pil.size == (32, 48)
        assert pil.info["xmp"] == xmp.reset_orientation(lightroom_xmp(6))
        assert IptcImagePlugin.getiptcinfo(pil)[(2, 116)] == "© 2024 Ansel Example".encode()
    r = bridge_server.request("POST", "/v1/ops/upscale?format=tiff", body,
                              headers={"Content-Type": ctype})
    with tifffile.TiffFile(io.BytesIO(r.body)) as tif:
        assert tif.pages.first.tags[700].value == xmp.reset_orientation(lightroom_xmp(6))
