"""The hand-written EXIF/TIFF-IFD reader and writer, checked against Pillow's reading."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.imaging import exif
from tests.imaging.helpers import exif_blob, exif_blob_handmade, pattern, pil_exif_dict


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("value", range(1, 9))
def test_orientation_read_and_reset(endian: str, value: int) -> None:
    blob = exif_blob(value, endian=endian)
    assert exif.orientation(blob) == value
    assert exif.orientation(exif.EXIF_PREFIX + blob) == value
    reset = exif.reset_orientation(exif.EXIF_PREFIX + blob)
    assert exif.orientation(reset) == 1
    assert len(reset) == len(blob)
    assert sum(a != b for a, b in zip(reset, blob, strict=True)) == (value != 1)


def test_orientation_stored_as_long_is_handled() -> None:
    blob = bytearray(exif_blob_handmade(6))
    struct.pack_into(">HHII", blob, 10, 0x0112, 4, 1, 8)  # rewrite as a LONG holding 8
    assert exif.orientation(bytes(blob)) == 8
    assert exif.orientation(exif.reset_orientation(bytes(blob))) == 1


def test_blob_without_orientation_is_left_alone() -> None:
    blob = exif_blob(None)
    assert exif.orientation(blob) == 1
    assert exif.reset_orientation(blob) == blob


@pytest.mark.parametrize("junk", [b"", b"II", b"II*\0", b"II*\0\xff\xff\xff\xff",
                                  b"MM\0*\0\0\0\x08\xff\xff", b"Exif\0\0", b"hello world"])
def test_unreadable_blobs_mean_orientation_1(junk: bytes) -> None:
    assert exif.orientation(junk) == 1
    assert exif.reset_orientation(junk) == exif.strip_prefix(junk)  # nothing to change
    parsed = exif.parse(junk)
    assert parsed is None or parsed[1].entries == []


def test_parse_and_build_round_trip() -> None:
    blob = exif_blob(3)
    order, ifd0 = exif.parse(blob)  # type: ignore[misc]
    assert order == "<"
    assert set(ifd0.children) == {exif.EXIF_IFD, exif.GPS_IFD}
    rebuilt = exif.build_blob(order, ifd0)
    assert pil_exif_dict(rebuilt) == pil_exif_dict(blob)


def test_self_referencing_ifd_does_not_loop() -> None:
    blob = bytearray(exif_blob_handmade(1))
    struct.pack_into(">I", blob, 8 + 2 + 2 * 12 + 8, 8)  # EXIF pointer -> IFD0 itself
    _order, ifd0 = exif.parse(bytes(blob))  # type: ignore[misc]
    assert exif.EXIF_IFD not in ifd0.children


def test_entries_pointing_outside_are_dropped() -> None:
    blob = bytearray(exif_blob_handmade(1))
    struct.pack_into(">I", blob, 8 + 2 + 12 + 8, 10_000)  # Make's value offset: past the end
    _order, ifd0 = exif.parse(bytes(blob))  # type: ignore[misc]
    assert ifd0.get(0x010F) is None and ifd0.get(exif.ORIENTATION) is not None


def test_tiff_without_metadata_has_no_exif() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(4, 4, 3), photometric="rgb")  # tifffile's JSON description
    assert exif.exif_from_tiff(buf.getvalue()) is None


def test_exif_from_tiff_takes_descriptive_tags_and_resets_orientation() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, pattern(4, 4, 3), photometric="rgb", metadata=None,
                     extratags=[(271, 2, 0, "Maker", True), (274, 3, 1, 6, True),
                                (33432, 2, 0, "(c) me", True)])
    blob = exif.exif_from_tiff(buf.getvalue())
    assert blob is not None
    found = pil_exif_dict(blob)
    assert found == {"0:271": "Maker", "0:274": 1, "0:33432": "(c) me", "0:305": "tifffile.py"}


def test_add_sub_ifds_refuses_bigtiff() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((2, 2), np.uint8), bigtiff=True)
    before = buf.getvalue()
    _order, ifd0 = exif.parse(exif_blob(1))  # type: ignore[misc]
    assert not exif.add_sub_ifds(buf, 0, ifd0.children, "<")
    assert buf.getvalue() == before


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_blobs_never_raise(data: st.DataObject) -> None:
    blob = bytearray(exif_blob(6, endian=data.draw(st.sampled_from(["<", ">"]))))
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    sample = bytes(blob[:cut])
    value = exif.orientation(sample)
    assert 1 <= value <= 8
    reset = exif.reset_orientation(sample)
    assert exif.orientation(reset) == 1
    parsed = exif.parse(sample)
    if parsed is not None:
        exif.build_blob(*parsed)
