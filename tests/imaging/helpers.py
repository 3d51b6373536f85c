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
