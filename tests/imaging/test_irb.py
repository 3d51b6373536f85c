"""Photoshop image resources and IPTC records at the byte level."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.imaging import irb
from tests.imaging.helpers import iptc_dataset, iptc_record, photoshop_resources, psir


def test_resources_are_read_with_names_and_odd_lengths() -> None:
    blob = photoshop_resources()
    found = irb.resources(blob)
    assert [r.id for r in found] == [0x03ED, 0x0421, 0x07D0]
    assert len(found[1].data) % 2 == 1  # stored with a pad byte, read without it
    assert found[2].data == bytes(range(26)) * 2  # after the Pascal name "Path 1"
    assert b"".join(r.block for r in found) == blob


def test_a_cut_resource_ends_the_list() -> None:
    blob = photoshop_resources()
    assert [r.id for r in irb.resources(blob[:-10])] == [0x03ED, 0x0421]
    assert irb.resources(b"not 8BIM at all") == []


def test_split_takes_iptc_out_and_drops_stale_resources() -> None:
    iptc = iptc_record()
    thumbnail = psir(0x040C, b"\xff\xd8 old pixels")
    alpha_names = psir(0x03EE, b"\x05Alpha")
    blob = photoshop_resources() + thumbnail + psir(0x0404, iptc) + alpha_names
    got_iptc, others = irb.split(blob)
    assert got_iptc == iptc
    assert others == photoshop_resources()


def test_join_puts_iptc_in_id_order_once() -> None:
    iptc = iptc_record()
    blob = irb.join(photoshop_resources(), iptc)
    assert [r.id for r in irb.resources(blob)] == [0x03ED, 0x0404, 0x0421, 0x07D0]
    again = irb.join(blob, iptc)  # an IPTC block among the others is replaced, not doubled
    assert again == blob
    assert irb.split(blob) == (iptc, photoshop_resources())
    assert irb.join(None, None) is None
    assert irb.join(None, iptc) == psir(0x0404, iptc)
    assert irb.join(photoshop_resources(), None) == photoshop_resources()


def test_join_keeps_bytes_it_cannot_parse() -> None:
    tail = b"8BIM\x04\x06 cut short"
    blob = irb.join(photoshop_resources() + tail, iptc_record())
    assert blob.endswith(tail)


def test_iptc_end_and_padding() -> None:
    record = iptc_record()
    assert irb.iptc_end(record) == len(record)
    assert irb.strip_iptc_padding(record + b"\0\0\0") == record
    assert irb.strip_iptc_padding(record) == record
    ends_in_nul = record + iptc_dataset(2, 40, b"note\0\0")  # NULs inside a dataset stay
    assert irb.strip_iptc_padding(ends_in_nul + b"\0\0") == ends_in_nul
    cut = record + b"\x1c\x02\x19\x00\x10short"
    assert irb.iptc_end(cut) == len(record)
    assert irb.strip_iptc_padding(cut) == cut  # not padding: left alone
    assert irb.strip_iptc_padding(b"\0\0\0\0") == b"\0\0\0\0"


def test_extended_dataset_length() -> None:
    data = bytes(40000)
    extended = b"\x1c\x02\xca" + struct.pack(">HI", 0x8004, len(data)) + data
    record = iptc_record() + extended
    assert irb.iptc_end(record) == len(record)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 199))
def test_any_bytes_parse_without_raising(junk: bytes, cut: int) -> None:
    blob = (photoshop_resources() + psir(0x0404, iptc_record()))[:cut] + junk
    for candidate in (junk, blob, b"8BIM" + junk):
        irb.split(candidate)
        irb.join(candidate, iptc_record())
        irb.strip_iptc_padding(candidate)
        assert irb.iptc_end(candidate) <= len(candidate)
