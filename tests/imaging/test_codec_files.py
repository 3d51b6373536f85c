"""Files: format from the suffix, atomic writes, real sample photos, probe."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from bridge.errors import InvalidInput, InvalidParams, UnsupportedFormat
from bridge.imaging import codecs
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from tests.imaging.helpers import exif_blob, pattern, pil_bytes, wide_gamut_icc


@pytest.mark.parametrize(("name", "fmt"), [
    ("a.png", "png"), ("a.PNG", "png"), ("a.tif", "tiff"), ("a.tiff", "tiff"),
    ("a.jpg", "jpeg"), ("a.JPEG", "jpeg"), ("a.jpe", "jpeg"), ("a.webp", "webp"),
    ("a.raw", "raw"), ("dir.x/a.tif", "tiff"),
])
def test_format_for_suffix(name: str, fmt: str) -> None:
    assert codecs.format_for_suffix(name) == fmt


@pytest.mark.parametrize("name", ["a.gif", "a", "a.png.bak"])
def test_unknown_suffix(name: str) -> None:
    with pytest.raises(UnsupportedFormat, match="cannot tell the format"):
        codecs.format_for_suffix(name)


def test_formats_table() -> None:
    assert set(codecs.FORMATS) == {"png", "tiff", "jpeg", "webp", "raw"}
    assert codecs.FORMATS["tiff"].depths == (8, 16, 32)
    assert codecs.FORMATS["jpeg"].mime == "image/jpeg" and not codecs.FORMATS["jpeg"].alpha


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_write_then_read(tmp_path: Path, suffix: str) -> None:
    pixels = pattern(20, 30, 4, np.uint16 if suffix != ".webp" else np.uint8)
    image = Image(pixels, icc=wide_gamut_icc(), exif=exif_blob(1))
    path = codecs.write_image(image, tmp_path / f"out{suffix}", quality=100)
    assert path == tmp_path / f"out{suffix}"
    back = codecs.read_image(path)
    assert np.array_equal(back.pixels, pixels)
    assert back.icc == image.icc
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]  # no temp left


def test_explicit_format_beats_the_suffix(tmp_path: Path) -> None:
    path = codecs.write_image(Image(pattern(4, 4, 3)), tmp_path / "picture.dat", "png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert codecs.read_image(path).source_format == "png"


def test_read_detects_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(pil_bytes(pattern(5, 5, 3), "PNG"))
    assert codecs.read_image(path).source_format == "png"


def test_failed_write_leaves_no_temp_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "keep.jpg"
    target.write_bytes(b"old contents")
    with pytest.raises(InvalidParams):
        codecs.write_image(Image(pattern(4, 4, 4)), target)  # JPEG refuses alpha
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.jpg"]


def test_interrupted_write_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        codecs.write_image(Image(pattern(4, 4, 3)), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        codecs.write_image(Image(pattern(4, 4, 3)), tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def test_written_file_gets_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = codecs.write_image(Image(pattern(4, 4, 3)), tmp_path / "p.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        codecs.read_image(tmp_path / "nope.png")


def test_raw_file_round_trip(tmp_path: Path) -> None:
    pixels = pattern(3, 5, 2, np.uint16)
    path = codecs.write_image(Image(pixels), tmp_path / "p.raw")
    assert path.read_bytes() == pixels.astype("<u2").tobytes()


def test_probe_reports_format_and_stored_size() -> None:
    rotated = pil_bytes(pattern(10, 30, 3), "PNG", exif=exif_blob(6))
    assert codecs.probe(rotated) == ("png", Extent(30, 10))  # stored, before orientation
    assert codecs.decode(rotated).extent == Extent(10, 30)
    assert codecs.probe(pil_bytes(pattern(7, 9, 3), "JPEG")) == ("jpeg", Extent(9, 7))
    assert codecs.probe(pil_bytes(pattern(7, 9, 4), "WEBP", quality=50)) == ("webp", Extent(9, 7))
    assert codecs.probe(pil_bytes(pattern(7, 9, 3), "WEBP", lossless=True))[1] == Extent(9, 7)
    assert codecs.probe(pil_bytes(pattern(7, 9, 3), "TIFF")) == ("tiff", Extent(9, 7))


# -- real photos ---------------------------------------------------------------------
def test_hopper_jpeg(shared_samples: Path) -> None:
    path = shared_samples / "hopper.jpg"
    image = codecs.read_image(path)
    assert image.source_format == "jpeg" and image.extent == Extent(128, 128)
    assert image.channels == 3 and image.depth == 8
    with PILImage.open(path) as im:
        reference = np.asarray(im.convert("RGB"))
    # Same libjpeg family, maybe a different build: allow the IDCT's last-bit differences.
    assert np.abs(image.pixels.astype(int) - reference).max() <= 2


def test_hopper_tiff_is_exact(shared_samples: Path) -> None:
    path = shared_samples / "hopper.tif"
    image = codecs.read_image(path)
    assert image.source_format == "tiff" and image.extent == Extent(128, 128)
    with PILImage.open(path) as im:
        reference = np.asarray(im)
    assert np.array_equal(image.pixels.reshape(reference.shape), reference)


def test_hopper_through_every_lossless_format(shared_samples: Path) -> None:
    image = codecs.read_image(shared_samples / "hopper.tif")
    for fmt in ("png", "tiff"):
        assert np.array_equal(codecs.decode(codecs.encode(image, fmt)).pixels, image.pixels)
    webp = codecs.decode(codecs.encode(image, "webp", quality=100))
    assert np.array_equal(webp.pixels, image.pixels)


def test_hopper_jpeg_reencoded_keeps_metadata(shared_samples: Path) -> None:
    data = (shared_samples / "hopper.jpg").read_bytes()
    image = codecs.decode(data)
    again = codecs.decode(codecs.encode(image, "jpeg", quality=95))
    assert again.icc == image.icc and again.exif == image.exif
    with PILImage.open(io.BytesIO(data)) as im:
        assert image.icc == im.info.get("icc_profile")


def test_write_into_a_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match="cannot write"):
        codecs.write_image(Image(pattern(4, 4, 3)), tmp_path / "no" / "such" / "x.png")
