"""Test images made with independent encoders (tifffile, OpenCV, Pillow), with real metadata.

Encoding the inputs with other libraries than our codecs means a round trip
checks our decoder against theirs, not against itself.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import tifffile
from PIL import Image as PILImage


def adobe_rgb_like_profile() -> bytes:
    """A valid ICC v2 RGB display profile (Adobe RGB 1998 primaries, gamma 2.2): not sRGB."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    desc_text = b"Retouch Bridge test RGB\0"
    tags = {
        b"desc": b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text
        + b"\0" * 8 + b"\0" * 2 + b"\0" + b"\0" * 67,
        b"cprt": b"text" + b"\0" * 4 + b"Public domain test profile\0",
        b"wtpt": xyz(0.9642, 1.0, 0.8249),
        b"rXYZ": xyz(0.6097, 0.3111, 0.0195),
        b"gXYZ": xyz(0.2053, 0.6257, 0.0609),
        b"bXYZ": xyz(0.1492, 0.0632, 0.7446),
        b"rTRC": b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(2.2 * 256)) + b"\0\0",
    }
    tags[b"gTRC"] = tags[b"rTRC"]
    tags[b"bTRC"] = tags[b"rTRC"]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags.items():
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    size = 128 + len(body)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x20, 0, 0]) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 4
              + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 4 + s15(0.9642) + s15(1.0)
              + s15(0.8249) + b"none" + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128, len(header)
    return header + body


def exif_with_orientation(orientation: int) -> bytes:
    """A little-endian TIFF-structured EXIF block holding one Orientation tag."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray, icc: bytes | None = None, exif: bytes | None = None) -> bytes:
    """PNG of RGB(A)/grey 8 or 16-bit pixels via OpenCV, with iCCP/eXIf chunks added."""
    arr = pixels
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, enc = cv2.imencode(".png", arr)
    assert ok
    data = enc.tobytes()
    extra = b""
    if icc is not None:
        extra += _png_chunk(b"iCCP", b"test\0\0" + zlib.compress(icc))
    if exif is not None:
        extra += _png_chunk(b"eXIf", exif)
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + extra + data[ihdr_end:]


def tiff_bytes(pixels: np.ndarray, icc: bytes | None = None, orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    extratags = []
    if orientation is not None:
        extratags.append((274, "H", 1, orientation, True))
    kwargs: dict[str, object] = {}
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        kwargs["extrasamples"] = ["unassalpha"]
    tifffile.imwrite(buf, pixels, photometric="rgb" if pixels.ndim == 3 and pixels.shape[2] >= 3
                     else "minisblack", iccprofile=icc, extratags=extratags, **kwargs)
    return buf.getvalue()


def jpeg_bytes(pixels: np.ndarray, quality: int = 95, icc: bytes | None = None,
               exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs: dict[str, object] = {"quality": quality}
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        kwargs["exif"] = b"Exif\0\0" + exif
    PILImage.fromarray(pixels).save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def gradient(width: int, height: int, channels: int = 3, depth: int = 8, seed: int = 0) -> np.ndarray:
    """An asymmetric test picture (gradients plus noise) so any flip or rotation shows."""
    rng = np.random.default_rng(seed)
    top = 255 if depth == 8 else 65535
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([xx / max(1, width - 1), yy / max(1, height - 1),
                     (xx * yy) / max(1, (width - 1) * (height - 1)),
                     1.0 - xx / max(1, width - 1)], axis=-1)[:, :, :channels]
    noise = rng.random(base.shape) * 0.1
    dtype = np.uint8 if depth == 8 else np.uint16
    return np.clip((base * 0.9 + noise) * top, 0, top).astype(dtype)


def oriented(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """What a viewer shows for stored pixels with this EXIF orientation (the reference)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](pixels))
