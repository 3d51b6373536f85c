"""XMP packet edits: tiff:Orientation reset in place, padding cut for JPEG's limit."""

from __future__ import annotations

import pytest

from bridge.imaging import xmp
from tests.imaging.helpers import lightroom_xmp, read_xmp


def changed_positions(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b)
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


@pytest.mark.parametrize("element", [False, True])
@pytest.mark.parametrize("value", [2, 3, 6, 8])
def test_orientation_reset_changes_one_byte(element: bool, value: int) -> None:
    packet = lightroom_xmp(value, element=element)
    assert xmp.orientation(packet) == value
    reset = xmp.reset_orientation(packet)
    assert xmp.orientation(reset) == 1
    (pos,) = changed_positions(packet, reset)
    assert packet[pos: pos + 1] == str(value).encode() and reset[pos: pos + 1] == b"1"
    fields = read_xmp(reset)  # still well-formed XML, everything else as it was
    assert fields["orientation"] == "1"
    assert fields["subject"] == read_xmp(packet)["subject"]


def test_packet_without_orientation_is_returned_as_is() -> None:
    packet = lightroom_xmp(None)
    assert xmp.orientation(packet) is None
    assert xmp.reset_orientation(packet) is packet


def test_single_quotes_and_another_prefix_bound_to_the_tiff_namespace() -> None:
    packet = (b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf="
              b"'http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description rdf:about=''"
              b" xmlns:t='http://ns.adobe.com/tiff/1.0/' t:Orientation='8'/></rdf:RDF></x:xmpmeta>")
    reset = xmp.reset_orientation(packet)
    assert reset == packet.replace(b"t:Orientation='8'", b"t:Orientation='1'")
    assert read_xmp(reset)["orientation"] == "1"


def test_look_alike_properties_are_not_touched() -> None:
    packet = (b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
              b' xmlns:my="urn:example" my:Orientation="6" tiff:OrientationNote="6">'
              b"<my:Orientation>6</my:Orientation></rdf:Description>")
    assert xmp.orientation(packet) is None
    assert xmp.reset_orientation(packet) == packet


def test_a_longer_value_gives_its_bytes_to_the_padding() -> None:
    packet = lightroom_xmp(6).replace(b'tiff:Orientation="6"', b'tiff:Orientation="006"')
    reset = xmp.reset_orientation(packet)
    assert len(reset) == len(packet)
    assert b'tiff:Orientation="1"' in reset
    assert reset.endswith(b'  <?xpacket end="w"?>')
    assert read_xmp(reset)["orientation"] == "1"


def test_without_padding_keeps_the_content() -> None:
    packet = lightroom_xmp(6, padding=4000)
    cut = xmp.without_padding(packet)
    assert len(packet) - len(cut) > 3900
    assert cut.endswith(b'</x:xmpmeta>\n<?xpacket end="w"?>')
    assert read_xmp(cut) == read_xmp(packet)
    assert xmp.without_padding(cut) == cut
    bare = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    assert xmp.without_padding(bare) == bare  # no trailer: nothing is padding
