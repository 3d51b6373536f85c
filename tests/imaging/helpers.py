"""Test images, profiles, EXIF blobs and hand-made headers for the imaging tests.

Everything is generated in code: nothing depends on system colour profiles,
and the malicious headers are crafted byte by byte so no test ever allocates
what they claim.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image as PILImage
from PIL import ImageCms

# Adobe RGB (1998) primaries, adapted to D50 as ICC profiles store them.
_ADOBE_PRIMARIES = {
    b"rXYZ": (0.60974, 0.31111, 0.01947),
    b"gXYZ": (0.20528, 0.62567, 0.06087),
    b"bXYZ": (0.14919, 0.06322, 0.74457),
}


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def wide_gamut_icc() -> bytes:
    """A valid RGB profile with Adobe RGB primaries: real, parseable, and not sRGB's bytes."""
    data = bytearray(srgb_icc())
    (count,) = struct.unpack_from(">I", data, 128)
    for i in range(count):
        sig, offset, _ = struct.unpack_from(">4sII", data, 132 + 12 * i)
        if sig in _ADOBE_PRIMARIES:
            for k, v in enumerate(_ADOBE_PRIMARIES[sig]):
                struct.pack_into(">i", data, offset + 8 + 4 * k, round(v * 65536))
    data[84:100] = bytes(16)  # the profile ID is an MD5 of the old content: clear it
    return bytes(data)


def pattern(height: int, width: int, channels: int, dtype: type = np.uint8,
            seed: int = 0) -> np.ndarray:
    """Noise plus a ramp: every value differs from its neighbours and no two rows match."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.random((height, width, channels), dtype=np.float32)
    top = np.iinfo(dt).max
    out = rng.integers(0, top, (height, width, channels), endpoint=True, dtype=np.int64)
    out[0, 0] = 0
    out[-1, -1] = top  # both ends of the range are present
    return out.astype(dt)


def position_pattern(height: int, width: int, channels: int, dtype: type = np.uint16) -> np.ndarray:
    """Each pixel's value encodes its own row and column: any flip or turn shows up."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = rows * width + cols
    out = np.stack([base * (k + 1) for k in range(channels)], axis=-1)
    return (out % (np.iinfo(dtype).max + 1)).astype(dtype)


def quadrant_pattern(height: int, width: int) -> np.ndarray:
    """Four flat colours in the quadrants and a white corner block: survives JPEG."""
    out = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    out[:h2, :w2] = (220, 30, 30)
    out[:h2, w2:] = (30, 220, 30)
    out[h2:, :w2] = (30, 30, 220)
    out[h2:, w2:] = (220, 220, 30)
    out[: height // 8, : width // 8] = 255
    return out


# Where each orientation's stored pixels come from, written straight from the
# EXIF definitions (independent of the code under test): stored = F(upright).
STORED_FROM_UPRIGHT = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],
    3: lambda u: u[::-1, ::-1],
    4: lambda u: u[::-1],
    5: lambda u: u.swapaxes(0, 1),
    6: lambda u: np.rot90(u, 1),  # a viewer turns it 90° clockwise back upright
    7: lambda u: np.rot90(u, 2).swapaxes(0, 1),
    8: lambda u: np.rot90(u, -1),
}


def exif_blob(orientation: int | None = None, *, endian: str = "<", make: str = "TestCam",
              with_sub_ifds: bool = True) -> bytes:
    """A TIFF-structured EXIF blob (no prefix) made with Pillow, with sub-IFDs to carry."""
    ex = PILImage.Exif()
    ex.endian = endian
    if orientation is not None:
        ex[0x0112] = orientation
    ex[0x010F] = make
    ex[0x0110] = "Model 7"
    ex[0x0132] = "2024:05:06 07:08:09"
    ex[0x013B] = "Ansel"
    if with_sub_ifds:
        exif_ifd = ex.get_ifd(0x8769)
        exif_ifd[0x829A] = (1, 250)  # ExposureTime
        exif_ifd[0x8827] = 400  # ISO
        exif_ifd[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal
        exif_ifd[0x9286] = b"ASCII\0\0\0a user comment"
        gps = ex.get_ifd(0x8825)
        gps[1] = "N"
        gps[2] = (52.0, 31.0, 12.5)
    blob = ex.tobytes()
    return blob[6:] if blob.startswith(b"Exif\0\0") else blob


def exif_blob_handmade(orientation: int = 1) -> bytes:
    """A hand-written big-endian ("MM") blob: IFD0 with Orientation, Make and an EXIF IFD."""
    make = b"BigEnd\0"
    # Layout: header(8) IFD0 at 8: 3 entries -> 2+36+4 = 42 -> ends at 50; Make at 50 (7 bytes,
    # padded to 58); EXIF IFD at 58: 1 entry (ISO) -> 2+12+4 = 18.
    ifd0 = struct.pack(">H", 3)
    ifd0 += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    ifd0 += struct.pack(">HHII", 0x010F, 2, len(make), 50)
    ifd0 += struct.pack(">HHII", 0x8769, 4, 1, 58)
    ifd0 += struct.pack(">I", 0)
    exif_ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x8827, 3, 1, 800, 0)
    exif_ifd += struct.pack(">I", 0)
    blob = b"MM\0*" + struct.pack(">I", 8) + ifd0 + make + b"\0" + exif_ifd
    assert len(b"MM\0*" + struct.pack(">I", 8) + ifd0) == 50
    return blob


def pil_exif_dict(blob: bytes) -> dict:
    """Pillow's reading of a blob: IFD0 plus the EXIF and GPS sub-IFDs, for comparisons."""
    ex = PILImage.Exif()
    ex.load(b"Exif\0\0" + blob)
    out = {f"0:{k}": v for k, v in ex.items() if k not in (0x8769, 0x8825)}
    out.update({f"exif:{k}": v for k, v in ex.get_ifd(0x8769).items()})
    out.update({f"gps:{k}": v for k, v in ex.get_ifd(0x8825).items()})
    return out


# -- encoded files made by other libraries (independent of our encoders) --------
def pil_bytes(array: np.ndarray, fmt: str, mode: str | None = None, **options: object) -> bytes:
    im = PILImage.fromarray(array, mode) if mode else PILImage.fromarray(array)
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


# -- hand-crafted headers ---------------------------------------------------------
def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, bit_depth: int = 8, color_type: int = 6) -> bytes:
    """A PNG that claims a size and has a tiny IDAT: decoding it would need the full size."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def tiff_file(width: int, height: int, pixel_data: bytes, *, bits: int = 8, samples: int = 1,
              photometric: int = 1, byte_count: int | None = None) -> bytes:
    """A classic little-endian uncompressed TIFF, one strip, written by hand.

    `byte_count` lets a test claim more strip bytes than are present.
    """
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, 1),
        (262, 3, 1, photometric), (273, 4, 1, 8), (277, 3, 1, samples),
        (278, 4, 1, max(height, 1)),
        (279, 4, 1, len(pixel_data) if byte_count is None else byte_count),
    ]
    pixel_data += b"\0" * (len(pixel_data) % 2)
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if typ == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, typ, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8 + len(pixel_data)) + pixel_data + ifd


def tiff_header_only(width: int, height: int, samples: int = 3, bits: int = 8) -> bytes:
    """A TIFF whose one strip claims width*height pixels but holds 16 bytes."""
    claimed = min(width * height * samples * bits // 8, 0xFFFFFFFF)
    return tiff_file(width, height, bytes(16), bits=bits, samples=samples,
                     photometric=2 if samples >= 3 else 1, byte_count=claimed)


def jpeg_header_only(width: int, height: int, components: int = 3) -> bytes:
    """SOI, a baseline frame header claiming the size, and an EOI: no image data."""
    comps = b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    sof = struct.pack(">BHHB", 8, height, width, components) + comps
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def webp_header_only(width: int, height: int) -> bytes:
    """A VP8X (extended) WebP header claiming the canvas size, with a tiny VP8L chunk."""
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    vp8x = bytes(4) + size
    vp8l = b"\x2f" + struct.pack("<I", 0) + b"\0" * 3
    body = (b"WEBP" + b"VP8X" + struct.pack("<I", 10) + vp8x
            + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- XMP, IPTC and Photoshop resources, as Lightroom and Photoshop write them --------
KEYWORDS = ["Alps", "Sonnenaufgang über dem Gletscher", "Matterhorn"]
CAPTION = "Morgenrot über dem Matterhorn — 06:12, −14 °C"
COPYRIGHT = "© 2024 Ansel Example"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC = "http://purl.org/dc/elements/1.1/"
_TIFF = "http://ns.adobe.com/tiff/1.0/"


def lightroom_xmp(orientation: int | None = 6, *, element: bool = False,
                  padding: int = 2048) -> bytes:
    """An XMP packet laid out as Lightroom Classic writes one, padding and all.

    `element` puts tiff:Orientation in element form instead of as an attribute.
    """
    attr = f'\n   tiff:Orientation="{orientation}"' if orientation and not element else ""
    elem = (f"\n   <tiff:Orientation>{orientation}</tiff:Orientation>"
            if orientation and element else "")
    keywords = "".join(f"\n     <rdf:li>{k}</rdf:li>" for k in KEYWORDS)
    toolkit = "Adobe XMP Core 7.0-c000 1.000000, 0000/00/00-00:00:00        "
    body = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="{toolkit}">
 <rdf:RDF xmlns:rdf="{_RDF}">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:tiff="{_TIFF}"
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:dc="{_DC}"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
   xmp:CreatorTool="Adobe Photoshop Lightroom Classic 13.2 (Windows)"
   xmp:Rating="4"
   tiff:Make="Canon"{attr}
   exif:ExposureTime="1/250"
   photoshop:City="Zermatt"
   xmpRights:Marked="True"
   crs:Version="16.2"
   crs:Exposure2012="+0.35">{elem}
   <dc:subject>
    <rdf:Bag>{keywords}
    </rdf:Bag>
   </dc:subject>
   <dc:rights>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{COPYRIGHT}</rdf:li>
    </rdf:Alt>
   </dc:rights>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>Places|Switzerland|Zermatt</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""
    pad = "".join(" " * 99 + "\n" for _ in range(padding // 100))
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + pad
            + '<?xpacket end="w"?>').encode("utf-8")


def read_xmp(packet: bytes) -> dict[str, object]:
    """Keywords, rights and orientation as an XML parser sees them (independent of our code)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(packet)
    subject = [li.text for s in root.iter(f"{{{_DC}}}subject") for li in s.iter(f"{{{_RDF}}}li")]
    rights = [li.text for s in root.iter(f"{{{_DC}}}rights") for li in s.iter(f"{{{_RDF}}}li")]
    orientation = None
    for desc in root.iter(f"{{{_RDF}}}Description"):
        orientation = orientation or desc.get(f"{{{_TIFF}}}Orientation")
        for el in desc.iter(f"{{{_TIFF}}}Orientation"):
            orientation = orientation or (el.text or "").strip()
    return {"subject": subject, "rights": rights, "orientation": orientation}


def iptc_dataset(record: int, number: int, data: bytes) -> bytes:
    return struct.pack(">BBBH", 0x1C, record, number, len(data)) + data


def iptc_record() -> bytes:
    """IPTC-IIM as Photoshop writes it: UTF-8 marker, version, keywords, caption, copyright."""
    out = iptc_dataset(1, 90, b"\x1b%G") + iptc_dataset(2, 0, b"\x00\x04")
    out += b"".join(iptc_dataset(2, 25, k.encode()) for k in KEYWORDS)
    out += iptc_dataset(2, 80, b"Ansel Example")
    out += iptc_dataset(2, 116, COPYRIGHT.encode())
    out += iptc_dataset(2, 120, CAPTION.encode())
    return out


def psir(rid: int, data: bytes, name: bytes = b"") -> bytes:
    """One Photoshop image resource block, written from the format description."""
    pascal = bytes([len(name)]) + name
    pascal += b"\0" * (len(pascal) % 2)
    return b"8BIM" + struct.pack(">H", rid) + pascal + struct.pack(">I", len(data)) + data \
        + b"\0" * (len(data) % 2)


def photoshop_resources() -> bytes:
    """Resources other than IPTC: resolution, a named path, version info (odd length)."""
    resolution = struct.pack(">IHHIHH", 300 << 16, 1, 1, 300 << 16, 1, 1)
    version = struct.pack(">IB", 1, 1) + "Adobe Photoshop".encode("utf-16-be")[:28]
    return (psir(0x03ED, resolution) + psir(0x0421, version)
            + psir(0x07D0, bytes(range(26)) * 2, name=b"Path 1"))


def photoshop_app13(resources: bytes) -> bytes:
    """An APP13 segment as Photoshop writes it."""
    body = b"Photoshop 3.0\0" + resources
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def insert_jpeg_segments(jpeg: bytes, *segments: bytes) -> bytes:
    """The JPEG with marker segments put right after SOI (and its APP0, if any)."""
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        at += 2 + struct.unpack_from(">H", jpeg, 4)[0]
    return jpeg[:at] + b"".join(segments) + jpeg[at:]
