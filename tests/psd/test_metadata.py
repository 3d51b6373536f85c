"""A layer or composite exported from a PSD keeps the document's XMP, IPTC and resolution.

The PSD's image resources are written and read here by hand, from Photoshop's file
format description, so neither psd-tools nor our own resource parser checks itself.
The exported TIFF is read back by tifffile and Pillow as well as by us.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from psd_testkit import build_psd, random_layer

from bridge.cli.main import main
from bridge.imaging import codecs
from tests.imaging.helpers import iptc_record, lightroom_xmp

XMP, IPTC = lightroom_xmp(1), iptc_record()
XMP_ID, IPTC_ID, RESOLUTION_ID = 0x0424, 0x0404, 0x03ED


def resolution_info(x: float, y: float, units: int) -> bytes:
    """ResolutionInfo: hRes (16.16 fixed ppi), hResUnit, widthUnit, vRes, vResUnit, heightUnit."""
    return struct.pack(">IHHIHH", round(x * 65536), units, 2, round(y * 65536), units, 2)


def _resource_section(data: bytes) -> tuple[int, int]:
    """(start, end) of the image resource blocks: after the header and colour mode data."""
    (mode_len,) = struct.unpack_from(">I", data, 26)
    at = 30 + mode_len
    (length,) = struct.unpack_from(">I", data, at)
    return at + 4, at + 4 + length


def read_resources(path: Path) -> dict[int, bytes]:
    data = path.read_bytes()
    pos, end = _resource_section(data)
    out = {}
    while pos < end:
        assert data[pos: pos + 4] == b"8BIM"
        (rid,) = struct.unpack_from(">H", data, pos + 4)
        name_len = data[pos + 6]
        pos += 7 + name_len + ((name_len + 1) & 1)
        (size,) = struct.unpack_from(">I", data, pos)
        out[rid] = data[pos + 4: pos + 4 + size]
        pos += 4 + size + (size & 1)
    return out


def add_resources(path: Path, resources: dict[int, bytes]) -> Path:
    """Append resource blocks to a PSD's image resource section, as Photoshop lays them out."""
    data = path.read_bytes()
    start, end = _resource_section(data)
    blocks = b"".join(b"8BIM" + struct.pack(">HHI", rid, 0, len(body)) + body
                      + b"\0" * (len(body) & 1) for rid, body in resources.items())
    section = data[start:end] + blocks
    path.write_bytes(data[: start - 4] + struct.pack(">I", len(section)) + section + data[end:])
    return path


def document(tmp_path: Path, resources: dict[int, bytes], depth: int = 8) -> Path:
    rng = np.random.default_rng(3)
    layers = [("Retouch", random_layer(rng, 20, 24, 3, depth), 5, 6)]
    psd = build_psd(tmp_path / "doc.psd", depth=depth, size=(40, 32), layers=layers)
    return add_resources(psd, resources)


def export(psd: Path, out: Path, *what: str) -> Path:
    assert main(["psd", "export", str(psd), *what, "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("what", [("--layer", "Retouch"), ("--composite",)])
@pytest.mark.parametrize("depth", [8, 16])
def test_export_keeps_xmp_iptc_and_resolution(tmp_path: Path, what: tuple[str, ...],
                                              depth: int, capsys: pytest.CaptureFixture) -> None:
    psd = document(tmp_path, {IPTC_ID: IPTC, RESOLUTION_ID: resolution_info(72.5, 96, units=2),
                              XMP_ID: XMP}, depth)
    tif = export(psd, tmp_path / "out.tif", *what)
    capsys.readouterr()
    with tifffile.TiffFile(tif) as t:
        page = t.pages.first
        assert page.resolutionunit == tifffile.RESUNIT.INCH
        assert page.get_resolution() == (72.5, 96.0)  # hRes is ppi whatever its display unit
        assert page.tags[700].value == XMP
        assert bytes(page.tags[33723].value)[: len(IPTC)] == IPTC
        assert page.dtype == (np.uint8 if depth == 8 else np.uint16)
    with PILImage.open(tif) as pil:
        assert pil.info["dpi"] == (72.5, 96.0)
        assert pil.info["xmp"] == XMP
    image = codecs.read_image(tif)
    assert (image.xmp, image.iptc, image.resolution) == (XMP, IPTC, (72.5, 96.0))


def test_odd_resolution_to_3_places(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    psd = document(tmp_path, {RESOLUTION_ID: resolution_info(299.999, 1200, units=1)})
    image = codecs.read_image(export(psd, tmp_path / "out.tif", "--layer", "Retouch"))
    assert (image.xmp, image.iptc, image.resolution) == (None, None, (299.999, 1200.0))


def test_a_document_without_them_exports_without_them(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    tif = export(document(tmp_path, {}), tmp_path / "out.tif", "--layer", "Retouch")
    image = codecs.read_image(tif)
    assert (image.xmp, image.iptc, image.resolution) == (None, None, None)
    with tifffile.TiffFile(tif) as t:
        assert t.pages.first.resolutionunit == tifffile.RESUNIT.NONE


@pytest.mark.parametrize("name,what", [
    ("hopper.psd", ("--composite",)),
    ("hopper.psd", ("--layer", "Background copy")),
    ("adjustments_posterize_16bits_rgb.psd", ("--layer", "orion")),
])
def test_real_documents(shared_samples: Path, tmp_path: Path, name: str, what: tuple[str, ...],
                        capsys: pytest.CaptureFixture) -> None:
    source = shared_samples / name
    stored = read_resources(source)
    (h_res,) = struct.unpack_from(">I", stored[RESOLUTION_ID])
    tif = export(source, tmp_path / "out.tif", *what)
    image = codecs.read_image(tif)
    assert image.resolution == (h_res / 65536, h_res / 65536)
    assert image.xmp == stored[XMP_ID]
    assert image.iptc == stored[IPTC_ID]
    with tifffile.TiffFile(tif) as t:
        assert t.pages.first.tags[700].value == stored[XMP_ID]


def test_hopper_resolution_matches_its_jpeg(shared_samples: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    # The JPEG of the same picture, a reader other than ours, says the same.
    with PILImage.open(shared_samples / "hopper.jpg") as pil:
        jpeg_dpi = tuple(float(v) for v in pil.info["dpi"])
    tif = export(shared_samples / "hopper.psd", tmp_path / "out.tif", "--composite")
    with PILImage.open(io.BytesIO(tif.read_bytes())) as pil:
        assert pil.info["dpi"] == jpeg_dpi == (96.0, 96.0)
