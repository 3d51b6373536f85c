"""XMP, IPTC and Photoshop resources through every codec, checked with independent readers.

What each format carries: PNG, TIFF and JPEG: XMP, IPTC and the other Photoshop
resources; WebP: XMP only.
"""

from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import IptcImagePlugin, PngImagePlugin

from bridge.imaging import codecs, irb, png_chunks, xmp
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from tests.imaging.helpers import (
    CAPTION,
    COPYRIGHT,
    KEYWORDS,
    STORED_FROM_UPRIGHT,
    exif_blob,
    insert_jpeg_segments,
    iptc_dataset,
    iptc_record,
    lightroom_xmp,
    pattern,
    photoshop_app13,
    photoshop_resources,
    pil_bytes,
    psir,
    quadrant_pattern,
    read_xmp,
    srgb_icc,
)

FORMATS = ["png", "tiff", "jpeg", "webp"]
CARRIES = {
    "png": {"xmp", "iptc", "photoshop_resources"},
    "tiff": {"xmp", "iptc", "photoshop_resources"},
    "jpeg": {"xmp", "iptc", "photoshop_resources"},
    "webp": {"xmp"},
}
XMP_UPRIGHT = lightroom_xmp(1)
IPTC = iptc_record()
RESOURCES = photoshop_resources()


def tagged(pixels: np.ndarray, **changes: object) -> Image:
    fields: dict = {"icc": srgb_icc(), "exif": exif_blob(1), "xmp": XMP_UPRIGHT, "iptc": IPTC,
                    "photoshop_resources": RESOURCES}
    fields.update(changes)
    return Image(pixels, **fields)


def iptc_fields(info: dict) -> dict[str, object]:
    """Keywords, caption and copyright from Pillow's IPTC reading."""
    keywords = info[(2, 25)]
    keywords = keywords if isinstance(keywords, list) else [keywords]
    return {"keywords": [k.decode() for k in keywords], "caption": info[(2, 120)].decode(),
            "copyright": info[(2, 116)].decode()}


EXPECTED_IPTC = {"keywords": KEYWORDS, "caption": CAPTION, "copyright": COPYRIGHT}
EXPECTED_XMP = {"subject": KEYWORDS, "rights": [COPYRIGHT], "orientation": "1"}


# -- our encoder, our decoder ---------------------------------------------------------
@pytest.mark.parametrize("fmt,pixels", [
    ("png", pattern(9, 7, 3)), ("png", pattern(9, 7, 2, np.uint16)), ("tiff", pattern(9, 7, 4)),
    ("tiff", pattern(9, 7, 1, np.float32)), ("jpeg", pattern(9, 7, 3)), ("webp", pattern(9, 7, 4)),
])
def test_round_trip_carries_what_the_format_holds(fmt: str, pixels: np.ndarray) -> None:
    image = tagged(pixels)
    out = codecs.decode(codecs.encode(image, fmt))
    for name in ("xmp", "iptc", "photoshop_resources"):
        expected = getattr(image, name) if name in CARRIES[fmt] else None
        assert getattr(out, name) == expected, name
    assert out.icc == image.icc
    assert out.exif is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_nothing_in_nothing_out(fmt: str) -> None:
    out = codecs.decode(codecs.encode(Image(pattern(5, 6, 3)), fmt))
    assert (out.xmp, out.iptc, out.photoshop_resources) == (None, None, None)


@pytest.mark.parametrize("length", [1, 2, 3, 4])
@pytest.mark.parametrize("order", ["<", ">"])
def test_tiff_iptc_of_any_length_comes_back_exact(length: int, order: str) -> None:
    # IPTC is stored as whole LONGs: every remainder of the length and both byte orders.
    record = IPTC + iptc_dataset(2, 40, b"x" * length)
    out = codecs.decode(codecs.encode(
        Image(pattern(4, 4, 3), exif=exif_blob(1, endian=order), iptc=record), "tiff"))
    assert out.iptc == record


def test_derived_images_keep_the_metadata() -> None:
    image = tagged(pattern(8, 8, 3))
    for derived in (image.with_pixels(pattern(4, 4, 3)), image.crop(Bounds(1, 1, 3, 3))):
        assert (derived.xmp, derived.iptc, derived.photoshop_resources) == (
            XMP_UPRIGHT, IPTC, RESOURCES)
    assert image.describe()["xmp"] and image.describe()["iptc"]
    assert Image(pattern(2, 2, 3)).xmp is None  # old constructions keep working


# -- independent readers of what we write ----------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_pillow_reads_our_xmp(fmt: str) -> None:
    data = codecs.encode(tagged(pattern(6, 5, 3)), fmt)
    with PILImage.open(io.BytesIO(data)) as pil:
        packet = pil.info["xmp"]
    assert packet == XMP_UPRIGHT
    assert read_xmp(packet) == EXPECTED_XMP


@pytest.mark.parametrize("fmt", ["jpeg", "tiff"])
def test_pillow_reads_our_iptc(fmt: str) -> None:
    data = codecs.encode(tagged(pattern(6, 5, 3)), fmt)
    with PILImage.open(io.BytesIO(data)) as pil:
        assert iptc_fields(IptcImagePlugin.getiptcinfo(pil)) == EXPECTED_IPTC


def test_pillow_reads_our_photoshop_resources_in_jpeg() -> None:
    data = codecs.encode(tagged(pattern(6, 5, 3)), "jpeg")
    with PILImage.open(io.BytesIO(data)) as pil:
        found = pil.info["photoshop"]
    expected = {r.id: r.data for r in irb.resources(RESOURCES)} | {0x0404: IPTC}
    # Pillow decodes the resolution resource; the others it gives as bytes.
    expected[0x03ED] = {"XResolution": 300.0, "DisplayedUnitsX": 1, "YResolution": 300.0,
                        "DisplayedUnitsY": 1}
    assert found == expected


def test_tiff_tags_as_tifffile_sees_them() -> None:
    data = codecs.encode(tagged(pattern(6, 5, 3)), "tiff")
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tags = tif.pages.first.tags
        assert tags[700].value == XMP_UPRIGHT
        assert tags[33723].dtype == 4  # LONG, as Photoshop writes it
        assert bytes(tags[33723].value)[: len(IPTC)] == IPTC
        resources = irb.resources(tags[34377].value)
    # IPTC also in the resources, where ImageMagick looks for it.
    assert [r.id for r in resources] == [0x03ED, 0x0404, 0x0421, 0x07D0]


def test_png_text_chunks_come_before_the_pixels_and_xmp_is_uncompressed() -> None:
    data = codecs.encode(tagged(pattern(6, 5, 3)), "png")
    kinds, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8: pos + 8 + length]
        kinds.append((kind, body.split(b"\0", 1)[0] if kind in (b"iTXt", b"zTXt") else b""))
        if kind == b"iTXt":
            assert body[len(b"XML:com.adobe.xmp") + 1] == 0  # compression flag off
        pos += 12 + length
    idat = kinds.index((b"IDAT", b""))
    assert kinds.index((b"iTXt", b"XML:com.adobe.xmp")) < idat
    assert kinds.index((b"zTXt", b"Raw profile type iptc")) < idat
    assert kinds.index((b"zTXt", b"Raw profile type 8bim")) < idat


def test_png_without_other_resources_writes_no_8bim_profile() -> None:
    data = codecs.encode(tagged(pattern(6, 5, 3), photoshop_resources=None), "png")
    assert b"Raw profile type iptc" in data and b"Raw profile type 8bim" not in data


# -- files other programs wrote, read by us -----------------------------------------------
def test_jpeg_from_pillow_with_photoshop_segment() -> None:
    thumbnail = psir(0x040C, b"\xff\xd8 a stale thumbnail")
    base = pil_bytes(quadrant_pattern(16, 16), "JPEG", xmp=XMP_UPRIGHT)
    data = insert_jpeg_segments(base, photoshop_app13(RESOURCES + psir(0x0404, IPTC) + thumbnail))
    out = codecs.decode(data)
    assert out.xmp == XMP_UPRIGHT
    assert out.iptc == IPTC
    assert out.photoshop_resources == RESOURCES  # the thumbnail of the old pixels is gone


def test_jpeg_photoshop_resources_split_over_segments() -> None:
    blob = RESOURCES + psir(0x0404, IPTC)
    cut = len(blob) // 2  # mid-resource, as some writers split
    base = pil_bytes(quadrant_pattern(16, 16), "JPEG")
    data = insert_jpeg_segments(base, photoshop_app13(blob[:cut]), photoshop_app13(blob[cut:]))
    out = codecs.decode(data)
    assert (out.iptc, out.photoshop_resources) == (IPTC, RESOURCES)


def test_large_photoshop_resources_take_several_segments_cut_between_resources() -> None:
    paths = [psir(0x07D1 + i, bytes([i]) * 40_000, name=b"Path %d" % i) for i in range(2)]
    image = tagged(pattern(8, 8, 3), photoshop_resources=RESOURCES + b"".join(paths))
    data = codecs.encode(image, "jpeg")
    segments = [s for s in data.split(b"\xff\xed")[1:] if s[2:16] == b"Photoshop 3.0\0"]
    assert len(segments) == 2  # two 40 KB paths cannot share one 64 KB segment
    for seg in segments:  # each holds whole resources
        payload = seg[16: struct.unpack_from(">H", seg)[0]]  # the length counts itself
        assert sum(len(r.block) for r in irb.resources(payload)) == len(payload)
    out = codecs.decode(data)
    assert (out.iptc, out.photoshop_resources) == (IPTC, image.photoshop_resources)
    with PILImage.open(io.BytesIO(data)) as pil:  # Pillow parses each segment on its own
        assert pil.info["photoshop"][0x0404] == IPTC
        assert pil.info["photoshop"][0x07D2] == bytes([1]) * 40_000


def test_one_resource_larger_than_a_segment_is_split_and_joined_again() -> None:
    huge = psir(0x07D1, bytes(range(256)) * 300)  # 76 800 bytes
    image = tagged(pattern(8, 8, 3), photoshop_resources=RESOURCES + huge)
    out = codecs.decode(codecs.encode(image, "jpeg"))
    assert (out.iptc, out.photoshop_resources) == (IPTC, RESOURCES + huge)


def test_png_text_chunks_already_there_are_kept() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by hand")
    png = pil_bytes(pattern(4, 4, 3), "PNG", pnginfo=info)
    pieces = png_chunks.with_chunks(png, png_chunks.metadata_chunks(None, None, XMP_UPRIGHT))
    with PILImage.open(io.BytesIO(b"".join(bytes(p) for p in pieces))) as pil:
        assert pil.info["Comment"] == "made by hand"
        assert pil.info["xmp"] == XMP_UPRIGHT


@pytest.mark.parametrize("iptc_type", [4, 7])
def test_tiff_from_tifffile(iptc_type: int) -> None:
    padded = IPTC + b"\0" * (-len(IPTC) % 4)
    value = struct.unpack(f"<{len(padded) // 4}I", padded) if iptc_type == 4 else IPTC
    count = len(value) if iptc_type == 4 else len(IPTC)
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(6, 5, 3), photometric="rgb", metadata=None, extratags=[
        (700, 1, len(XMP_UPRIGHT), XMP_UPRIGHT, True), (33723, iptc_type, count, value, True),
        (34377, 1, len(RESOURCES), RESOURCES, True)])
    out = codecs.decode(buf.getvalue())
    assert (out.xmp, out.iptc, out.photoshop_resources) == (XMP_UPRIGHT, IPTC, RESOURCES)


def test_tiff_iptc_from_the_photoshop_resources_when_the_tag_is_missing_or_cut() -> None:
    blob = RESOURCES + psir(0x0404, IPTC)
    at_dataset_end = len(iptc_dataset(1, 90, b"\x1b%G") + iptc_dataset(2, 0, b"\0\x04"))
    # ImageMagick 6 writes the tag cut to a quarter, which may end mid-dataset or not.
    for extra in ([], [(33723, 7, 20, IPTC[:20], True)],
                  [(33723, 7, at_dataset_end, IPTC[:at_dataset_end], True)]):
        buf = io.BytesIO()
        tifffile.imwrite(buf, pattern(6, 5, 3), photometric="rgb", metadata=None,
                         extratags=[(34377, 1, len(blob), blob, True), *extra])
        out = codecs.decode(buf.getvalue())
        assert (out.iptc, out.photoshop_resources) == (IPTC, RESOURCES)


def raw_profile_text(name: str, payload: bytes) -> str:
    """ImageMagick's raw profile text, written here from its description."""
    digits = payload.hex()
    return f"\n{name}\n{len(payload):8d}\n" + "\n".join(
        digits[i: i + 72] for i in range(0, len(digits), 72)) + "\n"


@pytest.mark.parametrize("compressed", [False, True])
def test_png_from_pillow_with_itxt_xmp_and_raw_iptc_profile(compressed: bool) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_UPRIGHT.decode(), zip=compressed)
    info.add_text("Raw profile type iptc", raw_profile_text("iptc", IPTC), zip=compressed)
    out = codecs.decode(pil_bytes(pattern(6, 5, 3), "PNG", pnginfo=info))
    assert (out.xmp, out.iptc) == (XMP_UPRIGHT, IPTC)


def test_png_raw_iptc_profile_wrapped_in_photoshop_resources() -> None:
    info = PngImagePlugin.PngInfo()
    wrapped = b"Photoshop 3.0\0" + RESOURCES + psir(0x0404, IPTC)
    info.add_text("Raw profile type iptc", raw_profile_text("iptc", wrapped), zip=True)
    assert codecs.decode(pil_bytes(pattern(6, 5, 3), "PNG", pnginfo=info)).iptc == IPTC


def test_webp_from_pillow() -> None:
    data = pil_bytes(pattern(6, 5, 3), "WEBP", lossless=True, xmp=XMP_UPRIGHT)
    assert codecs.decode(data).xmp == XMP_UPRIGHT


# -- orientation: applied once, and XMP no longer asks for it -------------------------------
@pytest.mark.parametrize("element", [False, True])
def test_jpeg_exif_orientation_resets_xmp_orientation(element: bool) -> None:
    upright = quadrant_pattern(24, 16)
    packet = lightroom_xmp(6, element=element)
    data = pil_bytes(np.ascontiguousarray(STORED_FROM_UPRIGHT[6](upright)), "JPEG", quality=95, subsampling=0,
                     exif=b"Exif\0\0" + exif_blob(6), xmp=packet)
    out = codecs.decode(data)
    assert (out.width, out.height) == (16, 24)
    assert np.abs(out.pixels.astype(int) - upright).mean() < 8  # upright: turned wrongly it is ~100 off
    assert out.xmp == xmp.reset_orientation(packet) != packet
    assert len(out.xmp) == len(packet)
    assert read_xmp(out.xmp)["orientation"] == "1"
    again = codecs.decode(codecs.encode(out, "jpeg"))  # turned once, not twice
    assert (again.width, again.height) == (out.width, out.height)
    assert again.xmp == out.xmp


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_png_and_webp_exif_orientation_resets_xmp_orientation(fmt: str) -> None:
    stored = Image(pattern(6, 10, 3), exif=exif_blob(8), xmp=lightroom_xmp(8))  # as a camera wrote
    out = codecs.decode(codecs.encode(stored, fmt))
    assert (out.width, out.height) == (6, 10)
    assert read_xmp(out.xmp)["orientation"] == "1"


def test_tiff_orientation_tag_resets_xmp_orientation() -> None:
    packet = lightroom_xmp(6, element=True)
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(6, 10, 3), photometric="rgb", metadata=None,
                     extratags=[(274, 3, 1, 6, True), (700, 1, len(packet), packet, True)])
    out = codecs.decode(buf.getvalue())
    assert (out.width, out.height) == (6, 10)
    assert out.xmp == xmp.reset_orientation(packet)
    assert read_xmp(out.xmp)["orientation"] == "1"


def test_xmp_orientation_alone_is_left_as_it_was() -> None:
    # The pixels were not turned (EXIF says 1), so the packet must not change either.
    packet = lightroom_xmp(6)
    out = codecs.decode(codecs.encode(Image(pattern(6, 10, 3), exif=exif_blob(1), xmp=packet),
                                      "jpeg"))
    assert (out.width, out.height) == (10, 6)
    assert out.xmp == packet


# -- across formats -------------------------------------------------------------------------
def test_jpeg_to_tiff_to_jpeg_keeps_everything() -> None:
    base = pil_bytes(quadrant_pattern(16, 24), "JPEG", exif=b"Exif\0\0" + exif_blob(6),
                     xmp=lightroom_xmp(6))
    source = codecs.decode(insert_jpeg_segments(base, photoshop_app13(RESOURCES + psir(0x0404, IPTC))))
    as_tiff = codecs.decode(codecs.encode(source, "tiff"))
    back = codecs.decode(codecs.encode(as_tiff, "jpeg"))
    for image in (as_tiff, back):
        assert image.xmp == source.xmp == xmp.reset_orientation(lightroom_xmp(6))
        assert image.iptc == IPTC
        assert image.photoshop_resources == RESOURCES
        assert (image.width, image.height) == (16, 24)


def test_tiff_to_jpeg_and_png_keep_xmp_and_iptc() -> None:
    source = codecs.decode(codecs.encode(tagged(pattern(8, 8, 3, np.uint16)), "tiff"))
    for fmt in ("jpeg", "png"):
        out = codecs.decode(codecs.encode(source, fmt))
        assert (out.xmp, out.iptc) == (XMP_UPRIGHT, IPTC)
        with PILImage.open(io.BytesIO(codecs.encode(source, fmt))) as pil:
            assert read_xmp(pil.info["xmp"]) == EXPECTED_XMP


# -- JPEG's 64 KB segment limit ---------------------------------------------------------------
def test_jpeg_xmp_over_the_limit_loses_its_padding_first() -> None:
    packet = lightroom_xmp(1, padding=70_000)
    assert len(packet) > 65504
    out = codecs.decode(codecs.encode(Image(pattern(4, 4, 3), xmp=packet), "jpeg"))
    assert out.xmp == xmp.without_padding(packet)
    assert read_xmp(out.xmp) == EXPECTED_XMP


def test_jpeg_xmp_too_large_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    packet = lightroom_xmp(1).replace(b"</x:xmpmeta>", b"<!--" + b"x" * 70_000 + b"--></x:xmpmeta>")
    with caplog.at_level(logging.WARNING):
        out = codecs.decode(codecs.encode(Image(pattern(4, 4, 3), xmp=packet, iptc=IPTC), "jpeg"))
    assert out.xmp is None and out.iptc == IPTC
    assert "XMP" in caplog.text


# -- broken metadata costs the metadata, never the image ----------------------------------------
def test_broken_metadata_is_skipped() -> None:
    jpeg = insert_jpeg_segments(pil_bytes(quadrant_pattern(8, 8), "JPEG"),
                                photoshop_app13(b"8BIM\x04\x04\0\0\xff\xff\xff\xff cut"))
    assert codecs.decode(jpeg).iptc is None
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type iptc", "\niptc\n     999\nnot hex at all\n", zip=True)
    info.add_itxt("XML:com.adobe.xmp", "", zip=False)
    out = codecs.decode(pil_bytes(pattern(4, 4, 3), "PNG", pnginfo=info))
    assert (out.iptc, out.pixels.shape) == (None, (4, 4, 3))
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(4, 4, 3), photometric="rgb", metadata=None,
                     extratags=[(34377, 1, 5, b"junk!", True)])
    out = codecs.decode(buf.getvalue())
    assert (out.iptc, out.photoshop_resources) == (None, None)


def test_png_text_bomb_is_refused_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    import zlib

    monkeypatch.setattr(png_chunks, "_MAX_TEXT", 1 << 20)  # the guard, scaled down to stay fast
    bomb = b"XML:com.adobe.xmp\0\x01\0\0\0" + zlib.compress(b" " * (2 << 20), 9)
    png = pil_bytes(pattern(4, 4, 3), "PNG")
    pieces = png_chunks.with_chunks(png, [png_chunks.chunk(b"iTXt", bomb)])
    out = codecs.decode(b"".join(bytes(p) for p in pieces))
    assert out.xmp is None and out.pixels.shape == (4, 4, 3)
