"""EXIF/TIFF orientation: applied to the pixels exactly once, then stored as 1.

Files are made by other writers (Pillow, tifffile) where possible, from an
upright image turned the way each orientation value describes, so the decoder
must turn them back to exactly the upright pixels.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageOps

from bridge.imaging import codecs, exif
from bridge.imaging.image import Image
from tests.imaging.helpers import (
    STORED_FROM_UPRIGHT,
    exif_blob,
    exif_blob_handmade,
    pil_bytes,
    pil_exif_dict,
    position_pattern,
    quadrant_pattern,
)

ORIENTATIONS = range(1, 9)
UPRIGHT8 = (position_pattern(12, 20, 3, np.uint16) % 256).astype(np.uint8)  # 12 tall, 20 wide
UPRIGHT16 = position_pattern(12, 20, 4, np.uint16)


def stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(STORED_FROM_UPRIGHT[orientation](upright))


def check_exif_reset(out_exif: bytes | None, sent: bytes) -> None:
    """Orientation is 1 now, and nothing else in the blob changed."""
    assert out_exif is not None
    assert exif.orientation(out_exif) == 1
    assert len(out_exif) == len(sent)
    differing = [i for i, (a, b) in enumerate(zip(out_exif, sent, strict=True)) if a != b]
    assert len(differing) <= 1  # at most the low byte of the orientation value
    assert {k: v for k, v in pil_exif_dict(out_exif).items() if k != "0:274"} == {
        k: v for k, v in pil_exif_dict(sent).items() if k != "0:274"}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_png_8bit_from_pillow(orientation: int) -> None:
    blob = exif_blob(orientation)
    data = pil_bytes(stored(UPRIGHT8, orientation), "PNG", exif=blob)
    out = codecs.decode(data)
    assert np.array_equal(out.pixels, UPRIGHT8)
    check_exif_reset(out.exif, blob)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_png_16bit_rgba(orientation: int) -> None:
    blob = exif_blob(orientation, endian=">")
    data = codecs.encode(Image(stored(UPRIGHT16, orientation), exif=blob), "png")
    out = codecs.decode(data)
    assert out.depth == 16
    assert np.array_equal(out.pixels, UPRIGHT16)
    check_exif_reset(out.exif, blob)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_tiff_16bit_orientation_tag_from_tifffile(orientation: int) -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, stored(UPRIGHT16, orientation), photometric="rgb",
                     extrasamples=("unassalpha",), extratags=[(274, 3, 1, orientation, True)])
    out = codecs.decode(buf.getvalue())
    assert np.array_equal(out.pixels, UPRIGHT16)
    assert out.exif is None or exif.orientation(out.exif) == 1


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_webp_lossless_from_pillow(orientation: int) -> None:
    blob = exif_blob(orientation)
    data = pil_bytes(stored(UPRIGHT8, orientation), "WEBP", lossless=True, exif=blob)
    out = codecs.decode(data)
    assert np.array_equal(out.pixels, UPRIGHT8)
    check_exif_reset(out.exif, blob)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_jpeg_from_pillow_matches_pillows_own_transpose(orientation: int) -> None:
    upright = quadrant_pattern(64, 96)
    blob = exif_blob(orientation)
    data = pil_bytes(stored(upright, orientation), "JPEG", quality=95, exif=b"Exif\0\0" + blob)
    out = codecs.decode(data)
    assert out.pixels.shape == upright.shape
    assert np.abs(out.pixels.astype(int) - upright).mean() < 3  # flat quadrants: JPEG is close
    with PILImage.open(io.BytesIO(data)) as im:
        reference = np.asarray(ImageOps.exif_transpose(im))
    assert np.abs(out.pixels.astype(int) - reference).max() <= 2
    check_exif_reset(out.exif, blob)


def test_big_endian_exif_orientation_is_read_and_reset() -> None:
    blob = exif_blob_handmade(6)
    out = codecs.decode(pil_bytes(stored(UPRIGHT8, 6), "PNG", exif=blob))
    assert np.array_equal(out.pixels, UPRIGHT8)
    check_exif_reset(out.exif, blob)


@pytest.mark.parametrize("fmt", ["png", "tiff", "webp", "jpeg"])
def test_orientation_6_is_applied_once_through_a_round_trip(fmt: str) -> None:
    """Decode (turns), encode (stores 1), decode again: no second turn."""
    upright = quadrant_pattern(40, 64)
    first = Image(stored(upright, 6), exif=exif_blob(6))
    data = codecs.encode(first, fmt, quality=100)
    once = codecs.decode(data)
    assert once.extent == first.extent.__class__(64, 40)
    assert once.metadata.get("orientation") == 6
    twice = codecs.decode(codecs.encode(once, fmt, quality=100))
    assert twice.extent == once.extent
    assert np.abs(twice.pixels.astype(int) - once.pixels).mean() < 3
    assert exif.orientation(twice.exif) == 1
    assert "orientation" not in twice.metadata


def test_invalid_orientation_value_is_ignored() -> None:
    blob = exif_blob(9)
    out = codecs.decode(pil_bytes(UPRIGHT8, "PNG", exif=blob))
    assert np.array_equal(out.pixels, UPRIGHT8)


def test_tiff_orientation_with_exif_tags_from_pillow() -> None:
    """A TIFF whose IFD0 holds the camera tags and Orientation 8 (as Pillow writes it)."""
    ex = PILImage.Exif()
    ex[0x0112] = 8
    ex[0x010F] = "TiffCam"
    buf = io.BytesIO()
    PILImage.fromarray(stored(UPRIGHT8, 8)).save(buf, "TIFF", exif=ex)
    out = codecs.decode(buf.getvalue())
    assert np.array_equal(out.pixels, UPRIGHT8)
    assert exif.orientation(out.exif) == 1
    assert pil_exif_dict(out.exif)["0:271"] == "TiffCam"
