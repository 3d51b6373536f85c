"""Print resolution (ppi) through every codec, against Pillow, tifffile and ImageMagick.

Where each format keeps it: PNG pHYs (whole pixels per metre), TIFF XResolution/
YResolution/ResolutionUnit, JPEG JFIF (whole dots per inch or cm) with the EXIF as
fallback, WebP the EXIF only; Photoshop's ResolutionInfo (0x03ED) wherever the
format carries Photoshop's resources.
"""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import TiffImagePlugin

from bridge.imaging import codecs, exif, irb, resolution
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from tests.imaging.helpers import (
    STORED_FROM_UPRIGHT,
    exif_blob,
    exif_blob_handmade,
    insert_jpeg_segments,
    pattern,
    photoshop_app13,
    photoshop_resources,
    pil_bytes,
    pil_exif_dict,
    psir,
    quadrant_pattern,
)

FORMATS = ["png", "tiff", "jpeg", "webp"]
VALUES = [(300.0, 300.0), (72.5, 96.0), (1200.25, 299.999)]
RESOURCES = photoshop_resources()  # its ResolutionInfo says 300 ppi


def resolution_info(x: float, y: float, units: int = 1) -> bytes:
    """A ResolutionInfo resource's data, written from Photoshop's description (16.16 fixed)."""
    return struct.pack(">IHHIHH", round(x * 65536), units, units, round(y * 65536), units, units)


def pil_exif(**tags: object) -> bytes:
    """An EXIF blob (no prefix) made by Pillow with the given IFD0 tags plus a Make."""
    ex = PILImage.Exif()
    ex[0x010F] = "TestCam"
    for name, value in tags.items():
        ex[{"x": 282, "y": 283, "unit": 296, "orientation": 274}[name]] = value
    return ex.tobytes()[6:]


def with_jfif(jpeg: bytes, units: int, x: int, y: int) -> bytes:
    """The JPEG with its JFIF header's density set by hand (Pillow writes inches only)."""
    assert jpeg[6:11] == b"JFIF\0"
    return jpeg[:13] + struct.pack(">BHH", units, x, y) + jpeg[18:]


# -- our encoder, our decoder --------------------------------------------------------------
@pytest.mark.parametrize("fmt,pixels", [
    ("png", pattern(9, 7, 3)), ("png", pattern(9, 7, 2, np.uint16)), ("tiff", pattern(9, 7, 4)),
    ("tiff", pattern(9, 7, 1, np.float32)), ("jpeg", pattern(9, 7, 3)), ("webp", pattern(9, 7, 4)),
])
@pytest.mark.parametrize("ppi", VALUES)
def test_round_trip_gives_back_the_exact_value(fmt: str, pixels: np.ndarray,
                                               ppi: tuple[float, float]) -> None:
    out = codecs.decode(codecs.encode(Image(pixels, resolution=ppi), fmt))
    assert out.resolution == ppi
    again = codecs.decode(codecs.encode(out, fmt))
    assert again.resolution == ppi


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_resolution_in_none_out(fmt: str) -> None:
    image = Image(pattern(5, 6, 3), exif=exif_blob(1))  # an EXIF without resolution tags
    out = codecs.decode(codecs.encode(image, fmt))
    assert out.resolution is None
    assert exif.rational_values(out.exif, resolution.X_RESOLUTION) is None


def test_derived_images_keep_it_and_bad_values_are_refused() -> None:
    image = Image(pattern(8, 8, 3), resolution=(300, 240))
    assert image.resolution == (300.0, 240.0) and isinstance(image.resolution[0], float)
    for derived in (image.with_pixels(pattern(16, 16, 3)), image.crop(Bounds(1, 1, 3, 3))):
        assert derived.resolution == (300.0, 240.0)
    assert image.describe()["resolution"] == [300.0, 240.0]
    assert Image(pattern(2, 2, 3)).resolution is None
    for bad in [(0, 300), (300, -1), (float("nan"), 72), (float("inf"), 72)]:
        with pytest.raises(ValueError, match="resolution"):
            Image(pattern(2, 2, 3), resolution=bad)


def test_upscale_keeps_the_ppi_so_the_print_grows() -> None:
    from bridge.ops.registry import run_operation

    result = run_operation("upscale", Image(pattern(8, 6, 3), resolution=(300, 300)),
                           params={"scale": 2})
    layer = result.layers[0]
    assert (layer.image.width, layer.image.resolution) == (12, (300.0, 300.0))


# -- rounding: the shortest decimal the stored number stands for -------------------------------
@pytest.mark.parametrize("stored,expected", [
    (11811, 300.0), (2854, 72.5), (3780, 96.0), (2835, 72.0), (47254, 1200.25), (1, 0.03),
    (2853, 72.47), (11813, 300.05), (5906, 150.0), (23622, 600.0),
])
def test_png_pixels_per_metre_readings(stored: int, expected: float) -> None:
    body = struct.pack(">IIB", stored, stored, 1)
    assert resolution.choose(resolution.from_phys(body)) == (expected, expected)
    # Writing the reading back stores the same number.
    assert resolution.phys((expected, expected)) == body


def test_png_a_step_off_is_noise() -> None:
    # ImageMagick stores 96 ppi as 3779 px/m (96 / 0.0254 = 3779.53); Pillow as 3780.
    body = struct.pack(">IIB", 3779, 11812, 1)
    assert resolution.choose(resolution.from_phys(body)) == (96.0, 300.0)


def test_readings_of_other_units() -> None:
    # JFIF's whole dots per cm are coarse: converted exactly, not rounded to a guess.
    assert resolution.choose(resolution.from_jfif(2, 118, 28)) == (299.72, 71.12)
    assert resolution.choose(resolution.from_jfif(1, 300, 72)) == (300.0, 72.0)
    assert resolution.from_jfif(0, 1, 1) is None  # aspect ratio only
    # Rationals (per cm, as tifffile writes them) are exact: to 3 places.
    assert resolution.choose(resolution.from_units((11811, 100), (2854, 100), 3)) == (
        299.999, 72.492)
    assert resolution.choose(resolution.from_units((299999, 1000), (145, 2), 2)) == (299.999, 72.5)
    assert resolution.choose(resolution.from_units((189, 5), (200, 3), 3)) == (96.012, 169.333)
    assert resolution.from_units((1, 1), (1, 1), 1) is None  # no unit
    assert resolution.from_units((300, 0), (300, 1), 2) is None
    assert resolution.from_phys(struct.pack(">IIB", 1, 1, 0)) is None
    assert resolution.choose(resolution.from_resolution_info(resolution_info(72.5, 299.999))) == (
        72.5, 299.999)


# -- independent readers of what we write ------------------------------------------------------
@pytest.mark.parametrize("ppi", VALUES[:2])
def test_pillow_and_tifffile_read_our_tiff(ppi: tuple[float, float]) -> None:
    data = codecs.encode(Image(pattern(6, 5, 3), resolution=ppi), "tiff")
    with PILImage.open(io.BytesIO(data)) as pil:
        assert pil.info["dpi"] == ppi
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        assert page.resolutionunit == tifffile.RESUNIT.INCH
        assert page.get_resolution() == ppi


def test_pillow_reads_our_png_to_its_precision() -> None:
    data = codecs.encode(Image(pattern(6, 5, 3), resolution=(300, 72.5)), "png")
    with PILImage.open(io.BytesIO(data)) as pil:
        dpi = pil.info["dpi"]
    # pHYs holds whole pixels per metre: 11811 and 2854.
    assert dpi == pytest.approx((11811 * 0.0254, 2854 * 0.0254))


def test_pillow_reads_our_jpeg_jfif_and_the_exif_holds_the_fraction() -> None:
    data = codecs.encode(Image(quadrant_pattern(8, 8), resolution=(72.5, 96)), "jpeg")
    with PILImage.open(io.BytesIO(data)) as pil:
        assert (pil.info["jfif_unit"], pil.info["dpi"]) == (1, (73, 96))
        ex = pil.getexif()
    assert (ex[282], ex[283], ex[296]) == (72.5, 96, 2)
    whole = codecs.encode(Image(quadrant_pattern(8, 8), resolution=(300, 300)), "jpeg")
    with PILImage.open(io.BytesIO(whole)) as pil:
        assert pil.info["dpi"] == (300, 300)
        assert "exif" not in pil.info  # whole dpi fit in JFIF: no EXIF is made for it


def test_pillow_reads_our_webp_exif() -> None:
    data = codecs.encode(Image(pattern(6, 5, 3), resolution=(72.5, 96)), "webp")
    with PILImage.open(io.BytesIO(data)) as pil:
        ex = pil.getexif()
    assert (ex[282], ex[283], ex[296]) == (72.5, 96, 2)


# -- files other programs wrote, read by us ------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_pillow_dpi_option(fmt: str) -> None:
    assert codecs.decode(pil_bytes(quadrant_pattern(8, 8), fmt, dpi=(300, 300))).resolution == (
        300.0, 300.0)
    odd = codecs.decode(pil_bytes(quadrant_pattern(8, 8), fmt, dpi=(72.5, 96))).resolution
    # JFIF holds whole dots per inch: Pillow stores round(72.5) = 72.
    assert odd == ((72.0, 96.0) if fmt == "JPEG" else (72.5, 96.0))


def test_pillow_png_without_dpi_has_none() -> None:
    assert codecs.decode(pil_bytes(pattern(4, 4, 3), "PNG")).resolution is None


@pytest.mark.parametrize("written,unit,expected", [
    ((300, 300), "INCH", (300.0, 300.0)),
    ((72.5, 96), "INCH", (72.5, 96.0)),
    (((11811, 100), (11811, 100)), "CENTIMETER", (299.999, 299.999)),
    (((30000, 254), (9600, 254)), "CENTIMETER", (300.0, 96.0)),
    ((28.54, 37.8), "CENTIMETER", (72.492, 96.012)),  # floats: tifffile makes the rationals
])
def test_tifffile_resolution_option(written: tuple, unit: str, expected: tuple) -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(6, 5, 3), photometric="rgb", resolution=written,
                     resolutionunit=unit)
    assert codecs.decode(buf.getvalue()).resolution == expected
    with PILImage.open(io.BytesIO(buf.getvalue())) as pil:  # ours agrees with Pillow's reading
        assert pil.info["dpi"] == pytest.approx(expected, abs=0.0127)


def test_tifffile_without_resolution_has_none() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(6, 5, 3), photometric="rgb")  # 1/1 with no unit
    assert codecs.decode(buf.getvalue()).resolution is None


def test_jpeg_jfif_in_centimetres() -> None:
    data = with_jfif(pil_bytes(quadrant_pattern(8, 8), "JPEG"), 2, 118, 28)
    with PILImage.open(io.BytesIO(data)) as pil:
        expected = tuple(round(v, 3) for v in pil.info["dpi"])
    assert codecs.decode(data).resolution == expected == (299.72, 71.12)


@pytest.mark.parametrize("x,unit,expected", [
    (240, 2, 240.0), (TiffImagePlugin.IFDRational(11811, 100), 3, 299.999), (72.5, None, 72.5),
])
def test_jpeg_exif_when_jfif_gives_only_an_aspect_ratio(x: object, unit: int | None,
                                                       expected: float) -> None:
    tags = {"x": x, "y": x} | ({"unit": unit} if unit else {})
    data = pil_bytes(quadrant_pattern(8, 8), "JPEG", exif=b"Exif\0\0" + pil_exif(**tags))
    with PILImage.open(io.BytesIO(data)) as pil:
        assert pil.info["jfif_unit"] == 0  # Pillow wrote an aspect ratio only
        if unit:  # without a unit Pillow gives 72; TIFF's default unit is the inch
            assert pil.info["dpi"] == pytest.approx((expected, expected), abs=0.0127)
    assert codecs.decode(data).resolution == (expected, expected)
    no_jfif = data[:2] + data[2 + 2 + struct.unpack_from(">H", data, 4)[0]:]
    assert no_jfif[2:4] != b"\xff\xe0"
    assert codecs.decode(no_jfif).resolution == (expected, expected)


def test_webp_from_pillow_with_exif_resolution() -> None:
    data = pil_bytes(pattern(6, 5, 3), "WEBP", lossless=True, exif=pil_exif(x=150, y=150, unit=2))
    assert codecs.decode(data).resolution == (150.0, 150.0)


# -- which source wins ---------------------------------------------------------------------------
def test_jfif_wins_over_a_stale_exif_and_the_exif_is_set_to_match() -> None:
    stale = pil_exif(x=72, y=72, unit=2)
    data = pil_bytes(quadrant_pattern(8, 8), "JPEG", dpi=(300, 300), exif=b"Exif\0\0" + stale)
    image = codecs.decode(data)
    assert image.resolution == (300.0, 300.0)
    assert image.exif == stale  # decoding changes no metadata bytes
    out = codecs.decode(codecs.encode(image, "jpeg"))
    assert len(out.exif) == len(stale)  # set in place
    assert sum(a != b for a, b in zip(out.exif, stale, strict=True)) <= 4  # two 72s became 300s
    assert resolution.choose(resolution.from_exif(out.exif)) == (300.0, 300.0)


def test_an_exact_exif_refines_whole_jfif_dots_it_rounds_to() -> None:
    for jfif, exif_x, expected in [((72, 72), 72.5, 72.5), ((73, 73), 72.5, 72.5),
                                   ((72, 72), 300, 72.0)]:
        data = pil_bytes(quadrant_pattern(8, 8), "JPEG", dpi=jfif,
                         exif=b"Exif\0\0" + pil_exif(x=exif_x, y=exif_x, unit=2))
        assert codecs.decode(data).resolution == (expected, expected), (jfif, exif_x)


def test_photoshop_resolution_info_is_the_last_source() -> None:
    app13 = photoshop_app13(psir(0x03ED, resolution_info(240, 240, units=2)))
    plain = pil_bytes(quadrant_pattern(8, 8), "JPEG")
    assert codecs.decode(insert_jpeg_segments(plain, app13)).resolution == (240.0, 240.0)
    with_dpi = pil_bytes(quadrant_pattern(8, 8), "JPEG", dpi=(300, 300))
    assert codecs.decode(insert_jpeg_segments(with_dpi, app13)).resolution == (300.0, 300.0)
    buf = io.BytesIO()
    blob = psir(0x03ED, resolution_info(72.5, 96))
    tifffile.imwrite(buf, pattern(6, 5, 3), photometric="rgb",
                     extratags=[(34377, 1, len(blob), blob, True)])  # resolution tags 1/1, no unit
    assert codecs.decode(buf.getvalue()).resolution == (72.5, 96.0)


def test_png_phys_is_refined_by_an_exact_value_it_holds() -> None:
    image = Image(pattern(6, 5, 3), resolution=(299.999, 1200.25))
    data = codecs.encode(image, "png")
    with PILImage.open(io.BytesIO(data)) as pil:  # pHYs: 11811 and 47254 pixels per metre
        assert pil.info["dpi"] == pytest.approx((299.9994, 1200.2516))
        ex = pil.getexif()
    assert (ex[282], ex[283]) == (299.999, 1200.25)  # finer than pHYs: the EXIF carries it
    assert codecs.decode(data).resolution == (299.999, 1200.25)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_quarter_turn_swaps_x_and_y(fmt: str) -> None:
    upright = quadrant_pattern(16, 24)
    stored = np.ascontiguousarray(STORED_FROM_UPRIGHT[6](upright))
    if fmt == "tiff":
        buf = io.BytesIO()
        tifffile.imwrite(buf, stored, photometric="rgb", resolution=(72, 96),
                         resolutionunit="INCH", extratags=[(274, 3, 1, 6, True)])
        data = buf.getvalue()
    else:
        blob = pil_exif(x=72, y=96, unit=2, orientation=6)
        data = pil_bytes(stored, fmt.upper(), exif=b"Exif\0\0" + blob, **(
            {"dpi": (72, 96)} if fmt == "jpeg" else {"lossless": True} if fmt == "webp" else {}))
    out = codecs.decode(data)
    assert (out.width, out.height) == (24, 16)
    assert out.resolution == (96.0, 72.0)


# -- kept consistent on writing -----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jpeg", "tiff", "png"])
def test_photoshop_resolution_info_is_set_to_match(fmt: str) -> None:
    image = Image(quadrant_pattern(8, 8), resolution=(72.5, 96), photoshop_resources=RESOURCES)
    out = codecs.decode(codecs.encode(image, fmt))
    found = {r.id: r.data for r in irb.resources(out.photoshop_resources)}
    assert found[0x03ED] == resolution_info(72.5, 96)  # display units (inch) kept
    expected = {r.id: r.data for r in irb.resources(RESOURCES)}
    assert {k: v for k, v in found.items() if k != 0x03ED} == {
        k: v for k, v in expected.items() if k != 0x03ED}
    if fmt == "jpeg":
        with PILImage.open(io.BytesIO(codecs.encode(image, fmt))) as pil:
            info = pil.info["photoshop"][0x03ED]
        assert (info["XResolution"], info["YResolution"]) == (72.5, 96.0)


def test_resolution_info_display_units_are_kept() -> None:
    blob = psir(0x03ED, resolution_info(300, 300, units=2), name=b"res")
    synced = resolution.synced_resources(blob + RESOURCES[len(psir(0x03ED, bytes(16))):], (150, 150))
    first = irb.resources(synced)[0]
    assert first.block[6:10] == b"\x03res"  # the name is kept
    assert first.data == resolution_info(150, 150, units=2)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_exif_resolution_tags_are_set_in_place(fmt: str, endian: str) -> None:
    ex = PILImage.Exif()
    ex.load(b"Exif\0\0" + exif_blob(1, endian=endian))
    ex[282], ex[283], ex[296] = 300, 300, 3  # per cm: set to inches
    blob = ex.tobytes()[6:]
    image = Image(quadrant_pattern(8, 8), exif=blob, resolution=(72.5, 96))
    out = codecs.decode(codecs.encode(image, fmt))
    assert out.resolution == (72.5, 96.0)
    assert len(out.exif) == len(blob)
    after, before = pil_exif_dict(out.exif), pil_exif_dict(blob)
    assert (after.pop("0:282"), after.pop("0:283"), after.pop("0:296")) == (72.5, 96, 2)
    for key in ("0:282", "0:283", "0:296"):
        before.pop(key)
    assert after == before  # everything else, sub-IFDs too, as it was


@pytest.mark.parametrize("blob", [exif_blob(1), exif_blob(1, endian=">"), exif_blob_handmade(1)])
def test_webp_adds_the_tags_to_an_exif_without_them(blob: bytes) -> None:
    image = Image(pattern(6, 5, 3), exif=blob, resolution=(72.5, 96))
    data = codecs.encode(image, "webp")
    out = codecs.decode(data)
    assert out.resolution == (72.5, 96.0)
    assert out.exif[: len(blob)][8:] == blob[8:]  # only the IFD0 pointer changed; the rest appended
    after = pil_exif_dict(out.exif)
    assert (after.pop("0:282"), after.pop("0:283"), after.pop("0:296")) == (72.5, 96, 2)
    assert after == pil_exif_dict(blob)


def test_jpeg_and_png_do_not_add_tags_when_their_own_place_holds_the_value() -> None:
    blob = exif_blob(1)
    for fmt, ppi in (("jpeg", (300.0, 96.0)), ("png", (300.0, 72.5))):
        out = codecs.decode(codecs.encode(Image(quadrant_pattern(8, 8), exif=blob,
                                                resolution=ppi), fmt))
        assert out.exif == blob, fmt
        assert out.resolution == ppi


def test_png_writes_one_phys_before_the_pixels() -> None:
    data = codecs.encode(Image(pattern(6, 5, 4), resolution=(300, 300)), "png")
    kinds, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        kinds.append(kind)
        if kind == b"pHYs":
            assert data[pos + 8: pos + 17] == struct.pack(">IIB", 11811, 11811, 1)
        pos += 12 + length
    assert kinds.count(b"pHYs") == 1 and kinds.index(b"pHYs") < kinds.index(b"IDAT")


# -- ImageMagick, a third reader and writer ----------------------------------------------------------
IDENTIFY, CONVERT = Path("/usr/bin/identify"), Path("/usr/bin/convert")
needs_imagemagick = pytest.mark.skipif(not (IDENTIFY.exists() and CONVERT.exists()),
                                       reason="ImageMagick is not installed")


@needs_imagemagick
@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_imagemagick_both_ways(tmp_path: Path, suffix: str) -> None:
    ours = codecs.write_image(Image(quadrant_pattern(8, 8), resolution=(300, 150)),
                              tmp_path / f"ours{suffix}")
    out = subprocess.run([str(IDENTIFY), "-units", "PixelsPerInch", "-format", "%x %y", ours],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert [float(v) for v in out.split()] == pytest.approx([300, 150], abs=0.0127)
    theirs = tmp_path / f"theirs{suffix}"
    subprocess.run([str(CONVERT), ours, "-units", "PixelsPerInch", "-density", "240x96", theirs],
                   check=True, timeout=60)
    assert codecs.read_image(theirs).resolution == (240.0, 96.0)


# -- nonsense costs the resolution, never the image ------------------------------------------
@pytest.mark.parametrize("x", [TiffImagePlugin.IFDRational(1, 1_000_000),
                               TiffImagePlugin.IFDRational(300, 0), 0])
def test_nonsense_exif_resolution_is_ignored(x: object) -> None:
    blob = pil_exif(x=x, y=x, unit=2)
    for fmt, options in (("JPEG", {"exif": b"Exif\0\0" + blob}), ("WEBP", {"exif": blob})):
        out = codecs.decode(pil_bytes(quadrant_pattern(8, 8), fmt, **options))
        assert out.resolution is None and out.pixels.shape == (8, 8, 3)


def test_nonsense_native_resolution_is_ignored() -> None:
    jpeg = with_jfif(pil_bytes(quadrant_pattern(8, 8), "JPEG"), 1, 0, 300)
    assert codecs.decode(jpeg).resolution is None
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(6, 5, 3), photometric="rgb", resolution=((1, 10_000), (1, 10_000)),
                     resolutionunit="INCH")
    assert codecs.decode(buf.getvalue()).resolution is None
