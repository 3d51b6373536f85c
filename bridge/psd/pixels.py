"""Channels to integer arrays and back, at the document's own depth.

psd-tools' public pixel API goes through float32 (`numpy()`, `fromarray`); on a
100 MP layer that is a 1.6 GB copy per step. Here each channel is decoded from
its stored bytes straight into uint8/uint16 and encoded back the same way, one
plane at a time: exact by construction, and no float copy of the image.
This is the one module that reads psd-tools' record and channel lists.
Each Image also carries the document's ICC profile, XMP, IPTC and resolution.
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any

import numpy as np

from bridge.errors import InvalidInput
from bridge.imaging import irb, resolution
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask, to_uint8_coverage
from bridge.psd.document import Document
from bridge.psd.layers import record_bounds

log = logging.getLogger(__name__)

XMP_RESOURCE = 0x0424
TRANSPARENCY = -1
USER_MASK = -2
REAL_USER_MASK = -3


def dtype_of(depth: int) -> np.dtype:
    return np.dtype(np.uint8) if depth == 8 else np.dtype(np.uint16)


def big_endian(depth: int) -> str:
    return ">u1" if depth == 8 else ">u2"


def decode(data: Any, width: int, height: int, doc: Document, what: str) -> np.ndarray:
    """One stored channel (a psd-tools ChannelData) as an HxW native-endian array."""
    from psd_tools.compression import PSDDecompressionWarning

    try:
        with warnings.catch_warnings():
            # psd-tools answers a damaged channel with black and a warning; refuse instead.
            warnings.simplefilter("error", PSDDecompressionWarning)
            raw = data.get_data(width, height, doc.depth, doc.header.version)
    except (PSDDecompressionWarning, ValueError, OSError) as e:
        raise InvalidInput(f"{doc.path.name}: {what} cannot be decoded: {e}") from e
    plane = np.frombuffer(raw, big_endian(doc.depth), count=width * height)
    return plane.reshape(height, width).astype(dtype_of(doc.depth))


def compression_for(doc: Document) -> Any:
    """How new channels are packed: as the document's own layers are.

    Readers differ in which codecs they handle well (ImageMagick 6 misreads a
    masked Grayscale layer stored as ZIP), so a file keeps to the codec its
    author already used. A document without packed layers gets Photoshop's
    defaults: PackBits (RLE) at 8 bits, ZIP with prediction at 16.
    """
    from collections import Counter

    from psd_tools.constants import Compression

    if doc.layer_compression is None:
        used = Counter(
            data.compression
            for layer in doc.psd.descendants()  # type: ignore[attr-defined]
            for info, data in zip(layer._record.channel_info, layer._channels, strict=False)
            if info.id >= 0 and len(data.data) > 0 and data.compression != Compression.RAW
        )
        default = Compression.RLE if doc.depth == 8 else Compression.ZIP_WITH_PREDICTION
        doc.layer_compression = used.most_common(1)[0][0] if used else default
    return doc.layer_compression


def encode(plane: np.ndarray, doc: Document, compression: Any) -> Any:
    """An HxW integer plane as a psd-tools ChannelData at the document's depth."""
    from psd_tools.psd.layer_and_mask import ChannelData

    height, width = plane.shape
    data = ChannelData(compression)
    version = doc.header.version
    data.set_data(plane.astype(big_endian(doc.depth)).tobytes(), width, height, doc.depth, version)
    return data


def _channels(layer: Any) -> dict[int, Any]:
    return {int(info.id): data for info, data in zip(layer._record.channel_info, layer._channels,
                                                      strict=False)}


def document_metadata(doc: Document) -> dict[str, Any]:
    """XMP (0x0424), IPTC (0x0404) and resolution (0x03ED) from the document's image
    resources, as Image fields: what a layer or composite carries into an export."""
    blocks = []
    for rid in (irb.IPTC, XMP_RESOURCE, resolution.RESOLUTION_INFO):
        found = doc.psd.image_resources.get(rid)  # type: ignore[attr-defined]
        if found is None:
            continue
        buf = io.BytesIO()
        try:
            found.write(buf)
        except Exception:  # a resource psd-tools parsed but cannot write back: skip it
            log.warning("%s: image resource 0x%04X is unreadable; left out", doc.path.name, rid,
                        exc_info=True)
            continue
        blocks.append(buf.getvalue())
    data = {r.id: r.data for r in irb.resources(b"".join(blocks))}
    reading = resolution.from_resolution_info(data.get(resolution.RESOLUTION_INFO, b""))
    return {"xmp": data.get(XMP_RESOURCE) or None, "iptc": data.get(irb.IPTC) or None,
            "resolution": resolution.choose(reading)}


def read_layer(doc: Document, layer: Any, label: str) -> tuple[Image, Bounds]:
    """A layer's stored pixels (colour + transparency) and where they sit in the document.

    The layer's own rectangle is used whole, off-canvas parts included: Photoshop
    keeps them, and so must a result placed back at the same offset.
    """
    bounds = record_bounds(layer)
    if bounds.is_empty or not layer.has_pixels():
        raise InvalidInput(
            f"layer '{label}' ({layer.kind}) has no pixels to work on; "
            "choose a pixel layer or --composite"
        )
    stored = _channels(layer)
    planes = []
    for cid in range(doc.color_channels):
        if cid not in stored or len(stored[cid].data) == 0:
            raise InvalidInput(f"layer '{label}' lacks colour channel {cid}")
        planes.append(decode(stored[cid], bounds.width, bounds.height, doc, f"layer '{label}'"))
    alpha = stored.get(TRANSPARENCY)
    if alpha is not None and len(alpha.data) > 0:
        planes.append(decode(alpha, bounds.width, bounds.height, doc, f"layer '{label}'"))
    pixels = np.stack(planes, axis=2)
    image = Image(pixels, icc=doc.icc, source_format="psd",
                  metadata={"psd_layer": label, "bounds": bounds.as_list()},
                  **document_metadata(doc))
    return image, bounds


def merged_planes(doc: Document) -> list[bytes]:
    header = doc.psd._record.header  # type: ignore[attr-defined]
    return list(doc.psd._record.image_data.get_data(header))  # type: ignore[attr-defined]


def merged_alpha_index(doc: Document) -> int:
    """Which merged channel holds the composite's transparency, or -1."""
    from psd_tools.api.utils import get_transparency_index, has_transparency

    psd = doc.psd
    if not has_transparency(psd):
        return -1
    index = get_transparency_index(psd)
    if 0 <= index < doc.header.channels:
        return index
    return doc.color_channels if doc.header.channels == doc.color_channels + 1 else -1


def read_composite(doc: Document) -> Image:
    """The document as Photoshop last flattened it, at full depth.

    Photoshop stores the merged image matted on white where it is transparent;
    that matte is undone so colour and alpha are straight, like a layer's.
    """
    h = doc.header
    dtype = dtype_of(doc.depth)
    if not doc.has_real_composite:
        return render_composite(doc)
    planes = merged_planes(doc)
    shape = (h.height, h.width)
    color = [np.frombuffer(planes[i], big_endian(doc.depth)).reshape(shape).astype(dtype)
             for i in range(doc.color_channels)]
    alpha_index = merged_alpha_index(doc)
    if alpha_index >= 0:
        alpha = np.frombuffer(planes[alpha_index], big_endian(doc.depth)).reshape(shape)
        alpha = alpha.astype(dtype)
        color = [unmatte(c, alpha, doc.depth) for c in color]
        color.append(alpha)
    return Image(np.stack(color, axis=2), icc=doc.icc, source_format="psd",
                 metadata={"psd_layer": None, "bounds": [0, 0, h.width, h.height]},
                 **document_metadata(doc))


def unmatte(stored: np.ndarray, alpha: np.ndarray, depth: int, rows: int = 1024) -> np.ndarray:
    """Undo 'composited over white' (c*a + (1-a)) where alpha > 0, in row bands."""
    top = 255 if depth == 8 else 65535
    out = stored.copy()
    for y in range(0, stored.shape[0], rows):
        s = stored[y:y + rows].astype(np.int64)
        a = alpha[y:y + rows].astype(np.int64)
        safe = np.maximum(a, 1)
        c = ((s - (top - a)) * top + safe // 2) // safe
        band = np.where(a > 0, np.clip(c, 0, top), s)
        out[y:y + rows] = band.astype(stored.dtype)
    return out


def render_composite(doc: Document) -> Image:
    """psd-tools' own render, for files saved without a real merged image."""
    from psd_tools.composite import composite

    color, _shape, alpha = composite(doc.psd)
    top = 255.0 if doc.depth == 8 else 65535.0
    pixels = np.concatenate([color, alpha], axis=2)
    pixels = np.rint(np.clip(pixels, 0.0, 1.0) * top).astype(dtype_of(doc.depth))
    return Image(pixels, icc=doc.icc, source_format="psd",
                 metadata={"psd_layer": None, "rendered": True}, **document_metadata(doc))


def layer_coverage(doc: Document, layer: Any, label: str) -> tuple[Mask, str]:
    """A layer as a selection in document coordinates: its layer mask, else its transparency.

    Returns the mask and which of the two was used ("layer mask" / "transparency").
    """
    extent = doc.extent
    canvas = Bounds.of(extent)
    if layer.has_mask():
        m = layer.mask
        real = m.has_real()
        cid = REAL_USER_MASK if real else USER_MASK
        rect = Bounds.from_corners(m.left, m.top, m.right, m.bottom)
        default = 255 if m.background_color else 0
        stored = _channels(layer).get(cid)
        plane = None
        if stored is not None and len(stored.data) > 0 and not rect.is_empty:
            data = decode(stored, rect.width, rect.height, doc, f"mask of '{label}'")
            plane = to_uint8_coverage(data)
        inside = rect.intersect(canvas)
        if default == 0:
            # Hidden outside its rectangle: the selection is the rectangle's content.
            if plane is None or inside.is_empty:
                return Mask(Bounds(0, 0, 0, 0), np.zeros((0, 0), np.uint8)), "layer mask"
            prow, pcol = inside.relative_to(rect).slices
            return Mask(inside, np.ascontiguousarray(plane[prow, pcol])).trimmed(), "layer mask"
        full = np.full((extent.height, extent.width), 255, np.uint8)
        if plane is not None and not inside.is_empty:
            rows, cols = inside.slices
            prow, pcol = inside.relative_to(rect).slices
            full[rows, cols] = plane[prow, pcol]
        return Mask.from_array(full), "layer mask"
    bounds = record_bounds(layer)
    alpha = _channels(layer).get(TRANSPARENCY)
    if bounds.is_empty or alpha is None or len(alpha.data) == 0:
        raise InvalidInput(
            f"layer '{label}' has neither a layer mask nor transparency to use as a selection"
        )
    plane = to_uint8_coverage(decode(alpha, bounds.width, bounds.height, doc, f"layer '{label}'"))
    inside = bounds.intersect(canvas)
    full_mask = Mask(bounds, plane)
    return Mask(inside, full_mask.region(inside)).trimmed(), "transparency"
