"""JPEG Extended XMP (XMP Specification Part 3, 1.1.3.1), written and read by our codec.

The files are checked from the bytes up with code written here from the spec (segment
walk, MD5, offsets) and an XML reading with ElementTree; the properties are compared as
parsed RDF, not as bytes. exiftool, where installed, reads our files as a second opinion.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from bridge.imaging import codecs, xmp
from bridge.imaging.image import Image
from tests.imaging.helpers import COPYRIGHT, KEYWORDS, exif_blob, quadrant_pattern
from tests.imaging.xmp_samples import (
    EXT_TAG,
    NOTE,
    RDF,
    TITLE,
    XMP_TAG,
    extended_guid,
    extension_segment,
    photoshop_xmp,
    properties,
    segment,
    segments,
    with_segments,
)

DC = "http://purl.org/dc/elements/1.1/"
PS = "http://ns.adobe.com/photoshop/1.0/"
MM = "http://ns.adobe.com/xap/1.0/mm/"
CRS = "http://ns.adobe.com/camera-raw-settings/1.0/"
BIG = photoshop_xmp(3000)
BASE_JPEG = codecs.encode(Image(quadrant_pattern(16, 16)), "jpeg")


def xmp_parts(jpeg: bytes) -> tuple[bytes, list[tuple[bytes, int, int, bytes]]]:
    """The standard packet and each extension chunk as (GUID, full length, offset, data)."""
    standard = [body[len(XMP_TAG):] for m, body in segments(jpeg)
                if m == 0xE1 and body.startswith(XMP_TAG)]
    chunks = []
    for m, body in segments(jpeg):
        if m == 0xE1 and body.startswith(EXT_TAG):
            head = body[len(EXT_TAG):]
            full, offset = struct.unpack(">II", head[32:40])
            chunks.append((head[:32], full, offset, head[40:]))
    assert len(standard) == 1
    return standard[0], chunks


def encoded(packet: bytes, **fields: object) -> bytes:
    return codecs.encode(Image(quadrant_pattern(16, 16), xmp=packet, **fields), "jpeg")  # type: ignore[arg-type]


# -- writing ---------------------------------------------------------------------------------
def test_a_large_packet_is_split_as_the_spec_says() -> None:
    assert len(BIG) > 200_000
    standard, chunks = xmp_parts(encoded(BIG))
    assert len(standard) <= 65502
    guid = extended_guid(standard)
    assert guid and len(guid) == 32
    # Chunks: one GUID, one full length, offsets that tile the extension in order.
    assert len(chunks) >= 3 and all(len(c[3]) <= 65400 for c in chunks)
    assert {c[0] for c in chunks} == {guid.encode()}
    assert {c[1] for c in chunks} == {sum(len(c[3]) for c in chunks)}
    assert [c[2] for c in chunks] == [sum(len(c[3]) for c in chunks[:i]) for i in range(len(chunks))]
    extension = b"".join(c[3] for c in chunks)
    assert hashlib.md5(extension).hexdigest().upper() == guid
    assert not extension.startswith(b"<?xpacket")  # the extension has no packet wrapper
    # The parts hold every property once; the small common ones stay in the standard part.
    std, ext = properties(standard), properties(extension)
    assert not std.keys() & ext.keys()
    assert std | ext == properties(BIG)
    for kept in (f"{{{DC}}}title", f"{{{DC}}}rights", f"{{{DC}}}subject",
                 "{http://ns.adobe.com/xap/1.0/}Rating", "{http://ns.adobe.com/tiff/1.0/}Orientation"):
        assert kept in std
    assert f"{{{PS}}}DocumentAncestors" in ext and f"{{{CRS}}}Tone0" in ext


def test_prefixes_and_escaping_are_the_packets_own() -> None:
    standard, chunks = xmp_parts(encoded(BIG))
    extension = b"".join(c[3] for c in chunks)
    assert b"<photoshop:DocumentAncestors>" in extension and b"<xmpMM:History>" in extension
    assert b"Matterhorn &amp; Gletscher &lt;Morgenrot>" in standard
    assert b"ns0:" not in standard + extension


def test_a_packet_that_fits_without_padding_takes_one_segment() -> None:
    packet = photoshop_xmp(200, history=0, crs=False, padding=64000)
    assert len(packet) > 65504 > len(xmp.without_padding(packet))
    found = [m for m, body in segments(encoded(packet)) if body.startswith(EXT_TAG)]
    assert found == []
    assert properties(codecs.decode(encoded(packet)).xmp) == properties(packet)


def test_several_descriptions_are_split_and_joined() -> None:
    second = (f'\n  </rdf:Description>\n  <rdf:Description rdf:about="" xmlns:dc="{DC}"'
              f' xmlns:photoshop="{PS}" xmlns:xmpMM="{MM}"'
              ' xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#">')
    two = BIG.replace(b"\n   <dc:title>", second.encode() + b"\n   <dc:title>", 1)
    assert len(ET.fromstring(two).findall(f".//{{{RDF}}}Description")) == 2
    out = codecs.decode(encoded(two)).xmp
    assert properties(out) == properties(two)


def test_many_small_descriptions_are_moved_whole() -> None:
    """Older writers made one description per namespace; a description emptied by the
    split leaves the standard packet too, or its start tags alone could overflow it."""
    descs = "".join(f'\n  <rdf:Description rdf:about="" xmlns:n{i}="urn:n{i}">'
                    f"<n{i}:v>{'v' * 300}</n{i}:v></rdf:Description>" for i in range(600))
    packet = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">'
              f'<rdf:Description rdf:about="" xmlns:dc="{DC}" dc:format="image/jpeg"/>'
              f"{descs}</rdf:RDF></x:xmpmeta>").encode()
    standard, chunks = xmp_parts(encoded(packet))
    assert len(standard) <= 65502 and chunks
    assert len(ET.fromstring(standard).findall(f".//{{{RDF}}}Description")) < 600
    assert properties(codecs.decode(encoded(packet)).xmp) == properties(packet)


def test_a_packet_no_split_can_fit_is_left_out_with_a_warning(caplog) -> None:
    comment = b"<!-- " + b"x" * 70000 + b" -->"
    packet = BIG.replace(b"<x:xmpmeta", comment + b"<x:xmpmeta", 1)
    with caplog.at_level(logging.WARNING):
        out = codecs.decode(encoded(packet))
    assert out.xmp is None
    assert "not written" in caplog.text


def test_a_large_packet_that_is_not_xml_is_left_out_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        out = codecs.decode(encoded(BIG.replace(b"</dc:title>", b"</dc:titel>")))
    assert out.xmp is None
    assert "cannot be split" in caplog.text


def test_a_packet_whose_split_would_explode_is_left_out(caplog) -> None:
    """One huge namespace on rdf:RDF used by many descriptions: each moved description
    would repeat it, so the split is refused instead of writing megabytes."""
    packet = _DECL_BOMB.replace(b'b:v="1"/>', b'b:v="' + b"v" * 400 + b'"/>')
    with caplog.at_level(logging.WARNING):
        out = codecs.decode(encoded(packet))
    assert out.xmp is None and "more than double" in caplog.text


# -- reading ---------------------------------------------------------------------------------
def test_every_property_comes_back_as_one_packet() -> None:
    out = codecs.decode(encoded(BIG))
    assert properties(out.xmp) == properties(BIG)
    assert extended_guid(out.xmp) is None  # the merged packet names no extension
    assert b"<photoshop:DocumentAncestors>" in out.xmp and b"ns0:" not in out.xmp
    assert xmp.orientation(out.xmp) == 6  # no EXIF orientation: nothing was turned


def test_jpeg_to_tiff_to_png_to_jpeg_keeps_every_property() -> None:
    image = codecs.decode(encoded(BIG))
    for fmt in ("tiff", "png", "webp", "jpeg", "jpeg"):
        image = codecs.decode(codecs.encode(image, fmt))
        assert properties(image.xmp) == properties(BIG), fmt
    _, chunks = xmp_parts(codecs.encode(image, "jpeg"))
    assert chunks  # still written as Extended XMP


def hand_made(standard: bytes, extension: bytes, *, chunk: int = 1000, exif: bytes | None = None,
              guid: bytes | None = None) -> bytes:
    """A JPEG with the standard packet and the extension in chunks, built here from the spec."""
    guid = guid or hashlib.md5(extension).hexdigest().upper().encode()
    extra = segment(0xE1, XMP_TAG + standard)
    for at in range(0, len(extension), chunk):
        extra += extension_segment(guid, len(extension), at, extension[at: at + chunk])
    if exif:
        extra = segment(0xE1, b"Exif\0\0" + exif) + extra
    return with_segments(BASE_JPEG, extra)


def standard_naming(guid: str, *, element: bool = False, more: str = "") -> bytes:
    note = (f'<xmpNote:HasExtendedXMP>{guid}</xmpNote:HasExtendedXMP>' if element else "")
    attr = "" if element else f' xmpNote:HasExtendedXMP="{guid}"'
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">
<rdf:Description rdf:about="" xmlns:xmpNote="{NOTE}" xmlns:dc="{DC}"{attr}>{note}
<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">{COPYRIGHT}</rdf:li></rdf:Alt></dc:rights>{more}
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>""".encode()


# Namespaces declared on x:xmpmeta and rdf:RDF, another RDF prefix, and the element form.
EXTENSION = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/">
<r:RDF xmlns:r="{RDF}" xmlns:ps="{PS}"><r:Description r:about="" xmlns:dc="{DC}">
<tiff:Orientation>6</tiff:Orientation>
<dc:subject><r:Bag>{"".join(f"<r:li>{k}</r:li>" for k in KEYWORDS)}</r:Bag></dc:subject>
<ps:DocumentAncestors><r:Bag><r:li>xmp.did:1</r:li><r:li>xmp.did:2</r:li></r:Bag></ps:DocumentAncestors>
</r:Description></r:RDF></x:xmpmeta>""".encode()
EXT_GUID = hashlib.md5(EXTENSION).hexdigest().upper()


@pytest.mark.parametrize("element", [False, True])
@pytest.mark.parametrize("chunk", [7, 100, 65400])
def test_a_hand_made_extension_in_any_chunk_order_is_merged(element: bool, chunk: int) -> None:
    data = hand_made(standard_naming(EXT_GUID, element=element), EXTENSION, chunk=chunk)
    segs = segments(data)
    ext = [s for s in segs if s[1].startswith(EXT_TAG)]
    shuffled = [s for s in segs if not s[1].startswith(EXT_TAG)] + ext[::-1]
    reordered = BASE_JPEG[:2] + b"".join(segment(m, b) for m, b in shuffled) + BASE_JPEG[
        BASE_JPEG.index(b"\xff\xda"):]
    for jpeg in (data, reordered):
        got = properties(codecs.decode(jpeg).xmp)
        assert got == properties(standard_naming(EXT_GUID)) | properties(EXTENSION)
        assert got[f"{{{DC}}}subject"] == properties(EXTENSION)[f"{{{DC}}}subject"]


def test_orientation_in_the_extension_is_reset_when_the_pixels_are_turned() -> None:
    data = hand_made(standard_naming(EXT_GUID), EXTENSION, exif=exif_blob(6))
    out = codecs.decode(data)
    assert out.extent.width == 16 and out.metadata["orientation"] == 6
    assert xmp.orientation(out.xmp) == 1
    assert properties(out.xmp)["{http://ns.adobe.com/tiff/1.0/}Orientation"] == ("text", "1")


def test_a_property_in_both_parts_is_kept_once_from_the_extension() -> None:
    stale = "<dc:subject><rdf:Bag><rdf:li>old</rdf:li></rdf:Bag></dc:subject>"
    out = codecs.decode(hand_made(standard_naming(EXT_GUID, more=stale), EXTENSION)).xmp
    subject = properties(out)[f"{{{DC}}}subject"]
    assert subject == properties(EXTENSION)[f"{{{DC}}}subject"]  # properties() fails on twice


# -- hostile files: the extension is ignored, the standard packet kept, never a crash --------
def chunks_of(ext: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(at, ext[at: at + size]) for at in range(0, len(ext), size)]


def build(standard: bytes | None, pieces: list[tuple[int, bytes]], *,
          ext: bytes = EXTENSION, full: int | None = None, guid: str | None = None) -> bytes:
    """The standard packet (if any) then the given chunks of `ext`, declared as they say."""
    guid = guid or hashlib.md5(ext).hexdigest().upper()
    extra = segment(0xE1, XMP_TAG + standard) if standard else b""
    for at, piece in pieces:
        extra += extension_segment(guid.encode(), len(ext) if full is None else full, at, piece)
    return with_segments(BASE_JPEG, extra)


PIECES = chunks_of(EXTENSION, 100)
NAMING = standard_naming(EXT_GUID)
_BAD_XML = EXTENSION.replace(b"</r:RDF>", b"</r:RFD>")
_BOMB = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
         b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&b;</x:xmpmeta>")
_LONG_NS = "urn:" + "n" * 20000  # declared once on rdf:RDF, used by 200 descriptions
_DECL_BOMB = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}" xmlns:b="{_LONG_NS}">'
              + '<rdf:Description rdf:about="" b:v="1"/>' * 200 + "</rdf:RDF></x:xmpmeta>").encode()
HOSTILE = {
    "wrong md5": build(standard_naming("0" * 32), PIECES, guid="0" * 32),
    "gap": build(NAMING, PIECES[:2] + PIECES[3:]),
    "missing end": build(NAMING, PIECES[:-1]),
    "4 GB declared": build(NAMING, PIECES, full=0xFFFFFFFF),
    "duplicate chunk": build(NAMING, PIECES + PIECES[2:3]),
    "overlap": build(NAMING, [*PIECES[:2], (150, EXTENSION[150:])]),
    "lengths disagree": build(NAMING, PIECES[:1])[:2] + extension_segment(
        EXT_GUID.encode(), len(EXTENSION) + 1, 100, EXTENSION[100:]) + build(NAMING, PIECES[:1])[2:],
    "no standard packet": build(None, PIECES),
    "named extension absent": build(standard_naming("F" * 32), PIECES),
    "standard names none": build(standard_naming("").replace(b' xmpNote:HasExtendedXMP=""', b""),
                                 PIECES),
    "not xml": build(standard_naming(hashlib.md5(_BAD_XML).hexdigest().upper()),
                     chunks_of(_BAD_XML, 100), ext=_BAD_XML),
    "declaration bomb": build(standard_naming(hashlib.md5(_DECL_BOMB).hexdigest().upper()),
                              chunks_of(_DECL_BOMB, 65400), ext=_DECL_BOMB),
    "entity bomb": build(standard_naming(hashlib.md5(_BOMB).hexdigest().upper()),
                         chunks_of(_BOMB, 100), ext=_BOMB),
}
REASON = {
    "wrong md5": "does not match its MD5", "gap": "a gap", "missing end": "500 bytes of the 565",
    "4 GB declared": "more than the file holds", "duplicate chunk": "overlapping",
    "overlap": "overlapping", "lengths disagree": "disagree on its length",
    "no standard packet": "no standard XMP packet", "named extension absent": "not in the file",
    "standard names none": "does not name", "not xml": "not well-formed", "entity bomb": "DTD",
    "declaration bomb": "more than double",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_extensions_are_ignored_with_a_warning(case: str, caplog) -> None:
    data = HOSTILE[case]
    standard = [b[len(XMP_TAG):] for m, b in segments(data) if b.startswith(XMP_TAG)]
    with caplog.at_level(logging.WARNING, logger="bridge.imaging.jpeg_xmp"):
        out = codecs.decode(data)
    assert out.xmp == (standard[0] if standard else None)  # as stored, nothing merged
    assert "extended XMP" in caplog.text and REASON[case] in caplog.text
    codecs.encode(out, "jpeg")  # and it writes again


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_extensions_with_a_matching_md5_never_crash(data: st.DataObject) -> None:
    """Past the MD5 (a hostile writer computes it too): any bytes reach the XML reader."""
    ext = bytearray(EXTENSION)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(ext) - 1))
        ext[at: at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=4))
    standard = bytearray(standard_naming(hashlib.md5(bytes(ext)).hexdigest().upper()))
    if data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(standard) - 1))
        standard[at] = data.draw(st.sampled_from(b'<>/"=: x'))
    jpeg = hand_made(bytes(standard), bytes(ext), chunk=data.draw(st.integers(1, 400)))
    out = codecs.decode(jpeg)
    if out.xmp is not None:
        codecs.decode(codecs.encode(out, "jpeg"))


# -- an independent reader -------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
def test_exiftool_reads_our_extended_xmp(tmp_path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(encoded(BIG))
    run = subprocess.run(["exiftool", "-j", "-m", "-a", "-validate", "-warning", "-XMP:all",
                          "-Validate", "-Warning", str(path)],
                         capture_output=True, text=True, timeout=60, check=True)
    (tags,) = json.loads(run.stdout)
    assert tags["Validate"] == "OK" and "Warning" not in tags
    assert len(tags["DocumentAncestors"]) == 3000
    assert len(tags["HistoryAction"]) == 200
    assert tags["Title"] == TITLE and tags["Rights"] == COPYRIGHT
    assert tags["Subject"] == KEYWORDS and tags["Rating"] == 5
    assert tags["Tone399"] == "+399.25"
    standard, chunks = xmp_parts(path.read_bytes())
    assert tags["HasExtendedXMP"] == extended_guid(standard) == chunks[0][0].decode()


def test_pillow_still_reads_the_standard_packet() -> None:
    with PILImage.open(io.BytesIO(encoded(BIG))) as pil:
        packet = pil.info["xmp"]
    assert properties(packet)[f"{{{DC}}}title"] == properties(BIG)[f"{{{DC}}}title"]
