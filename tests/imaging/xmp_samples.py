"""Large XMP packets as Photoshop writes them, JPEG segment walking, and an XML reading of
XMP properties that is independent of the code under test (ElementTree, not expat spans)."""

from __future__ import annotations

import hashlib
import struct
import xml.etree.ElementTree as ET

from tests.imaging.helpers import COPYRIGHT, KEYWORDS

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NOTE = "http://ns.adobe.com/xmp/note/"
XMP_TAG = b"http://ns.adobe.com/xap/1.0/\0"
EXT_TAG = b"http://ns.adobe.com/xmp/extension/\0"
TITLE = "Matterhorn & Gletscher <Morgenrot>"


def photoshop_xmp(ancestors: int = 3000, *, orientation: int | None = 6, history: int = 200,
                  padding: int = 2048, crs: bool = True) -> bytes:
    """A Photoshop-style packet: document ancestors and history that grew for years, Camera
    Raw settings, and the small properties users care about (title, rights, keywords, rating)."""
    lis = "".join(f"\n     <rdf:li>xmp.did:{hashlib.md5(str(i).encode()).hexdigest()}</rdf:li>"
                  for i in range(ancestors))
    events = "".join(f"""
     <rdf:li rdf:parseType="Resource">
      <stEvt:action>saved</stEvt:action>
      <stEvt:instanceID>xmp.iid:{hashlib.sha1(str(i).encode()).hexdigest()}</stEvt:instanceID>
      <stEvt:when>2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00+01:00</stEvt:when>
      <stEvt:softwareAgent>Adobe Photoshop 25.5 (Windows)</stEvt:softwareAgent>
      <stEvt:changed>/</stEvt:changed>
     </rdf:li>""" for i in range(history))
    keywords = "".join(f"\n     <rdf:li>{k}</rdf:li>" for k in KEYWORDS)
    attr = f'\n   tiff:Orientation="{orientation}"' if orientation else ""
    crs_attrs = "".join(f'\n   crs:Tone{i}="+{i}.25"' for i in range(400)) if crs else ""
    body = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 9.1-c002 79.a1cd12f">
 <rdf:RDF xmlns:rdf="{RDF}">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
   xmp:CreatorTool="Adobe Photoshop 25.5 (Windows)"
   xmp:Rating="5"
   photoshop:ColorMode="3"{attr}
   xmpMM:DocumentID="adobe:docid:photoshop:1f3c"{crs_attrs}>
   <dc:title>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{TITLE.replace("&", "&amp;").replace("<", "&lt;")}</rdf:li>
    </rdf:Alt>
   </dc:title>
   <dc:rights>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{COPYRIGHT}</rdf:li>
    </rdf:Alt>
   </dc:rights>
   <dc:subject>
    <rdf:Bag>{keywords}
    </rdf:Bag>
   </dc:subject>
   <photoshop:DocumentAncestors>
    <rdf:Bag>{lis}
    </rdf:Bag>
   </photoshop:DocumentAncestors>
   <xmpMM:History>
    <rdf:Seq>{events}
    </rdf:Seq>
   </xmpMM:History>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""
    pad = "".join(" " * 99 + "\n" for _ in range(padding // 100))
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + pad
            + '<?xpacket end="w"?>').encode("utf-8")


def _canon(el: ET.Element) -> object:
    if not len(el) and not el.attrib:
        return ("text", (el.text or "").strip())
    return (el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip(),
            tuple(_canon(c) for c in el))


def properties(packet: bytes) -> dict[str, object]:
    """Every top-level property of every rdf:Description, by expanded name, with its value as
    a tree; attribute and simple element forms compare equal. xmpNote:HasExtendedXMP is left
    out; a property stated twice fails (a merged packet must not hold one twice)."""
    root = ET.fromstring(packet)
    out: dict[str, object] = {}
    for rdf in root.iter(f"{{{RDF}}}RDF"):
        for desc in rdf.findall(f"{{{RDF}}}Description"):
            found = [(k, ("text", v)) for k, v in desc.attrib.items()
                     if not k.startswith(f"{{{RDF}}}")]
            found += [(c.tag, _canon(c)) for c in desc]
            for key, value in found:
                if key == f"{{{NOTE}}}HasExtendedXMP":
                    continue
                assert key not in out, f"{key} stated twice"
                out[key] = value
    return out


def extended_guid(packet: bytes) -> str | None:
    root = ET.fromstring(packet)
    for desc in root.iter(f"{{{RDF}}}Description"):
        value = desc.get(f"{{{NOTE}}}HasExtendedXMP")
        for el in desc.findall(f"{{{NOTE}}}HasExtendedXMP"):
            value = value or (el.text or "").strip()
        if value:
            return value
    return None


def segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    """(marker, body) of each segment before the first scan, walked from the JPEG spec."""
    out, pos = [], 2
    while jpeg[pos + 1] != 0xDA:
        marker = jpeg[pos + 1]
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        out.append((marker, jpeg[pos + 4: pos + 2 + length]))
        pos += 2 + length
    return out


def segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def extension_segment(guid: bytes, full: int, offset: int, chunk: bytes) -> bytes:
    return segment(0xE1, EXT_TAG + guid + struct.pack(">II", full, offset) + chunk)


def with_segments(jpeg: bytes, extra: bytes) -> bytes:
    """The JPEG with `extra` segments inserted just after SOI."""
    return jpeg[:2] + extra + jpeg[2:]
