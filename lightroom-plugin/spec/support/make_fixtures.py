"""Writes the photos the Lightroom specs "render": small, with ICC profiles and EXIF.

Usage: make_fixtures.py OUT_DIR. Run by spec/run.sh with the bridge's own Python.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageCms

WIDTH, HEIGHT = 64, 48


def gradient(depth: int) -> np.ndarray:
    """A smooth colour ramp with detail: 16-bit values that 8 bits cannot hold."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    r = x / (WIDTH - 1)
    g = y / (HEIGHT - 1)
    b = 0.5 + 0.5 * np.sin(x / 3.0) * np.cos(y / 4.0)
    rgb = np.stack([r, g, b], axis=-1)
    top = 65535 if depth == 16 else 255
    return np.round(rgb * top).astype(np.uint16 if depth == 16 else np.uint8)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag>'
       b'<rdf:li>lighthouse</rdf:li><rdf:li>dusk</rdf:li></rdf:Bag></dc:subject></rdf:Description>'
       b'</rdf:RDF></x:xmpmeta>')


def iptc_records() -> bytes:
    """IPTC-NAA records as Lightroom writes them: keywords (2:25) and a caption (2:120)."""
    def record(dataset: int, value: bytes) -> bytes:
        return bytes([0x1C, 2, dataset]) + len(value).to_bytes(2, "big") + value
    return record(25, b"lighthouse") + record(25, b"dusk") + record(120, b"Fog over the point")


def with_jpeg_segments(jpeg: bytes, segments: list[tuple[int, bytes]]) -> bytes:
    """Inserts APPn segments after the existing APP0-APP2 ones, as Lightroom lays them out."""
    pos = 2
    while jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xE2:
        pos += 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
    extra = b"".join(bytes([0xFF, m]) + (len(p) + 2).to_bytes(2, "big") + p for m, p in segments)
    return jpeg[:pos] + extra + jpeg[pos:]


def photoshop_iptc(records: bytes) -> bytes:
    data = records + (b"\0" if len(records) % 2 else b"")
    return b"8BIM\x04\x04\x00\x00" + len(records).to_bytes(4, "big") + data


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    icc = srgb_icc()
    # 16-bit RGB TIFF with an embedded ICC profile, what Lightroom renders for "TIFF 16-bit".
    iptc = iptc_records()
    tifffile.imwrite(out / "photo16.tif", gradient(16), photometric="rgb",
                     extratags=[(34675, 7, len(icc), icc, True), (700, 1, len(XMP), XMP, True),
                                (33723, 7, len(iptc), iptc, True)])
    img8 = Image.fromarray(gradient(8), "RGB")
    exif = Image.Exif()
    exif[0x010F] = "RetouchBridgeSpec"  # Make
    exif[0x0112] = 1  # Orientation: upright
    buf = io.BytesIO()
    img8.save(buf, "JPEG", quality=92, icc_profile=icc, exif=exif.tobytes())
    jpeg = with_jpeg_segments(buf.getvalue(), [
        (0xE1, b"http://ns.adobe.com/xap/1.0/\0" + XMP),
        (0xED, b"Photoshop 3.0\0" + photoshop_iptc(iptc)),
    ])
    (out / "photo8.jpg").write_bytes(jpeg)
    img8.save(out / "photo8.tif", icc_profile=icc)
    # What a bridge that drops XMP and IPTC would send back: EXIF and ICC only.
    (out / "plain8.jpg").write_bytes(buf.getvalue())
    tifffile.imwrite(out / "plain16.tif", gradient(16), photometric="rgb",
                     extratags=[(34675, 7, len(icc), icc, True)])
    img8.save(out / "photo8.png", icc_profile=icc)
    # Bytes Lightroom could never have rendered: the bridge must refuse them.
    (out / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 60)
    # 1000x800: small to send, but x16 makes 204.8 MP, over the bridge's default 200 MP
    # limit, so a recipe that upscales it fails while running, on this photo only.
    Image.new("RGB", (1000, 800), (120, 110, 100)).save(out / "large8.jpg", quality=80)
    (out / "icc.bin").write_bytes(icc)
    (out / "xmp.bin").write_bytes(XMP)
    (out / "iptc.bin").write_bytes(iptc)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
