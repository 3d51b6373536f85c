"""Put result layers into a document without disturbing anything already there.

Where results go:
- from a layer: into a "Retouch Bridge" group right above the source layer and
  the layers clipped to it (inserting inside a clipping stack would re-clip the
  layers above onto our group). A group sitting exactly there is reused, so
  repeated runs on one layer stack up in one group.
- from a clipped layer: as a clipped layer at the end of its clipping stack, so
  the result is clipped like its source (no group: psd-tools, and readers that
  follow Photoshop's compatibility rules, do not clip groups).
- from a layer already inside a "Retouch Bridge" group: right above it, no nesting.
- from the composite: into the topmost group, reused if it is ours, else new at the top.

Existing layers are never rewritten: their records and channel bytes are the
objects psd-tools read, written back as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.psd.document import PSB_MAX_SIDE, PSD_MAX_SIDE, Document
from bridge.psd.pixels import TRANSPARENCY, compression_for, dtype_of, encode

GROUP_NAME = "Retouch Bridge"


@dataclass
class PreparedLayer:
    """A result ready for the document: pixels at the document's depth and channel count."""

    name: str
    pixels: np.ndarray  # HxWxC, C = colour channels (+1 alpha), document dtype
    bounds: Bounds  # in document coordinates
    mask: np.ndarray | None  # uint8 HxW, 255 = show
    visible: bool = True


@dataclass
class Placement:
    group: Any | None  # the psd-tools group the results went into
    group_created: bool
    layers: list[Any]  # the new psd-tools layers, top first

    @property
    def new_nodes(self) -> list[Any]:
        return self.layers + ([self.group] if self.group_created else [])


def conform(image: Image, depth: int, color_channels: int, warnings: list[str],
            label: str) -> np.ndarray:
    """An op's pixels in the document's depth and colour channels (alpha kept)."""
    pixels = image.pixels
    top = 255 if depth == 8 else 65535
    if pixels.dtype == np.float32:
        pixels = np.rint(np.clip(pixels, 0.0, 1.0) * top).astype(dtype_of(depth))
    elif pixels.dtype == np.uint8 and depth == 16:
        pixels = pixels.astype(np.uint16) * 257  # exact widening: 255 -> 65535
    elif pixels.dtype == np.uint16 and depth == 8:
        warnings.append(f"{label}: 16-bit result stored in an 8-bit document")
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    color = pixels[:, :, : image.color_channels]
    alpha = pixels[:, :, image.color_channels:]
    if image.color_channels == color_channels:
        return pixels
    if image.color_channels == 1:
        color = np.repeat(color, color_channels, axis=2)
    else:
        warnings.append(f"{label}: colour result converted to grey for a Grayscale document")
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        grey = np.rint(color[:, :, :3].astype(np.float32) @ weights)
        color = np.clip(grey, 0, top).astype(pixels.dtype)[:, :, None]
    return np.concatenate([color, alpha], axis=2)


def _is_ours(layer: Any) -> bool:
    return layer is not None and layer.is_group() and layer.name == GROUP_NAME


def _stack_end(container: Any, index: int) -> int:
    """Index of the last layer clipped onto the layer at `index` (itself if none)."""
    end = index
    while end + 1 < len(container) and container[end + 1].clipping:
        end += 1
    return end


def _assign_ids(psd: Any, records: list[Any]) -> None:
    """Photoshop layer ids for new records, above every id in use; the seed follows."""
    from psd_tools.constants import Resource, Tag
    from psd_tools.psd.image_resources import ImageResource, Integer

    used = [layer._record.tagged_blocks.get_data(Tag.LAYER_ID) for layer in psd.descendants()]
    seed = psd.image_resources.get_data(Resource.IDS_SEED_NUMBER, 0) or 0
    last = max([seed & 0xFFFFFFFF, *[u for u in used if isinstance(u, int)]])
    for record in records:
        last += 1
        record.tagged_blocks.set_data(Tag.LAYER_ID, last)
    if Resource.IDS_SEED_NUMBER in psd.image_resources:
        value = last if last < 0x80000000 else last - 0x100000000  # stored signed
        psd.image_resources[Resource.IDS_SEED_NUMBER] = ImageResource(
            key=Resource.IDS_SEED_NUMBER, data=Integer(value))


def _set_name(layer: Any, name: str) -> None:
    layer.name = name  # sets the Unicode name Photoshop shows
    # psd-tools writes "?" as the legacy Pascal name when any character is not
    # Mac Roman; readers that only know that name (ImageMagick) deserve the rest.
    layer._record.name = name.encode("macroman", "replace").decode("macroman")


def _fit_channels(group: Any, color_channels: int) -> None:
    """psd-tools gives every new group RGB's four channel slots; match the document."""
    from psd_tools.constants import Compression
    from psd_tools.psd.layer_and_mask import ChannelData, ChannelDataList, ChannelInfo

    pairs = ((group._record, "_channels"), (group._bounding_record, "_bounding_channels"))
    for record, attr in pairs:
        record.channel_info = [ChannelInfo(id=i, length=2) for i in range(-1, color_channels)]
        channels = ChannelDataList()
        channels.extend(ChannelData(compression=Compression.RAW, data=b"")
                        for _ in range(color_channels + 1))
        setattr(group, attr, channels)


def _new_group(doc: Document, container: Any, index: int) -> Any:
    from psd_tools.api.layers import Group

    group = Group.new(parent=container, name=GROUP_NAME, open_folder=True)
    _fit_channels(group, doc.color_channels)
    group.move_to(container, index=index)
    _assign_ids(doc.psd, [group._record])
    return group


def pixel_layer(doc: Document, parent: Any, prepared: PreparedLayer) -> Any:
    """A psd-tools PixelLayer with our channels encoded at the document's depth."""
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import ChannelID
    from psd_tools.psd.layer_and_mask import ChannelDataList, ChannelInfo, LayerRecord

    b = prepared.bounds
    compression = compression_for(doc)
    pixels = prepared.pixels
    ncolor = doc.color_channels
    if pixels.shape[2] > ncolor:
        alpha = pixels[:, :, ncolor]
    else:
        alpha = np.full(pixels.shape[:2], np.iinfo(pixels.dtype).max, pixels.dtype)
    record = LayerRecord(top=b.y, left=b.x, bottom=b.y1, right=b.x1, channel_info=[])
    channels = ChannelDataList()
    planes = [(TRANSPARENCY, alpha)] + [(i, pixels[:, :, i]) for i in range(ncolor)]
    for cid, plane in planes:
        data = encode(plane, doc, compression)
        record.channel_info.append(ChannelInfo(id=ChannelID(cid), length=len(data.data) + 2))
        channels.append(data)
    layer = PixelLayer(parent, record, channels)
    _set_name(layer, prepared.name)
    layer.visible = prepared.visible
    return layer


def _add_mask(doc: Document, layer: Any, prepared: PreparedLayer) -> None:
    if prepared.mask is None:
        return
    from PIL import Image as PILImage

    layer.create_mask(PILImage.fromarray(np.ascontiguousarray(prepared.mask), "L"),
                      top=prepared.bounds.y, left=prepared.bounds.x,
                      compression=compression_for(doc))


def ensure_layered(doc: Document, background: Image | None) -> Any | None:
    """A flat PSD (merged image only) gets its picture as a 'Background' layer first.

    Otherwise adding a layer would make Photoshop show only that layer: it
    ignores the merged image of a document that has layers.
    """
    if len(doc.psd) > 0 or background is None:  # type: ignore[arg-type]
        return None
    prepared = PreparedLayer("Background", background.pixels, Bounds.of(background.extent), None)
    layer = pixel_layer(doc, doc.psd, prepared)
    doc.psd.append(layer)  # type: ignore[attr-defined]
    _assign_ids(doc.psd, [layer._record])
    return layer


def place(doc: Document, source: Any | None, results: list[PreparedLayer]) -> Placement:
    """Insert results (first = top) where the module docstring says; returns what was added."""
    psd = doc.psd
    group: Any | None
    if source is None:
        top = psd[-1] if len(psd) else None  # type: ignore[arg-type,index]
        created = not (_is_ours(top) and not top.clipping)
        group = _new_group(doc, psd, len(psd)) if created else top  # type: ignore[arg-type]
        return _fill_group(doc, group, created, results)
    container = source.parent
    index = container.index(source)
    end = _stack_end(container, index)
    if _is_ours(container) or source.clipping:
        # Inside our group already: no group in a group. A clipped source: its result
        # joins the clipping stack as a clipped layer at its end; a clipped *group*
        # is not something Photoshop-compatible readers (psd-tools included) honour.
        added = []
        for prepared in results:
            layer = pixel_layer(doc, container, prepared)
            container.insert(end + 1, layer)
            layer.clipping = bool(source.clipping)
            _add_mask(doc, layer, prepared)
            added.append(layer)
        _assign_ids(psd, [la._record for la in added])
        return Placement(container if _is_ours(container) else None, False, added)
    above = container[end + 1] if end + 1 < len(container) else None
    reuse = above if _is_ours(above) and not above.clipping else None
    created = reuse is None
    group = _new_group(doc, container, end + 1) if created else reuse
    return _fill_group(doc, group, created, results)


def _fill_group(doc: Document, group: Any, created: bool,
                results: list[PreparedLayer]) -> Placement:
    added = []
    for prepared in reversed(results):  # appended bottom-up: the first result ends on top
        layer = pixel_layer(doc, group, prepared)
        group.append(layer)
        _add_mask(doc, layer, prepared)
        added.append(layer)
    added.reverse()
    _assign_ids(doc.psd, [la._record for la in added])
    return Placement(group, created, added)


def coverage(prepared: PreparedLayer) -> np.ndarray:
    """The layer's effective alpha at its depth: transparency times layer mask."""
    pixels = prepared.pixels
    top = np.iinfo(pixels.dtype).max
    ncolor = pixels.shape[2] - 1 if pixels.shape[2] in (2, 4) else pixels.shape[2]
    alpha = (pixels[:, :, ncolor] if pixels.shape[2] > ncolor
             else np.full(pixels.shape[:2], top, pixels.dtype))
    if prepared.mask is None:
        return alpha
    shown = (alpha.astype(np.uint32) * prepared.mask + 127) // 255
    return shown.astype(pixels.dtype)


def _covers(prepared: PreparedLayer, extent: Extent) -> bool:
    """Whether the layer alone paints every pixel of the canvas fully."""
    if not prepared.bounds.contains(Bounds.of(extent)) or not prepared.visible:
        return False
    inside = Bounds.of(extent).relative_to(prepared.bounds)
    top = np.iinfo(prepared.pixels.dtype).max
    return bool(np.all(coverage(prepared)[inside.slices] == top))


def new_document(doc: Document, extent: Extent, results: list[PreparedLayer]) -> Document:
    """A fresh document of `extent` (same mode, depth, ICC, resolution) holding only the results.

    It is transparent (merged image with an alpha channel, as Photoshop writes one)
    unless the results cover the whole canvas.
    """
    from psd_tools import PSDImage
    from psd_tools.constants import Resource

    from bridge.errors import TooLarge
    from bridge.psd.document import Header

    if max(extent.width, extent.height) > PSB_MAX_SIDE:
        raise TooLarge(f"{extent} exceeds Photoshop's largest document ({PSB_MAX_SIDE} px a side)")
    transparent = not any(_covers(p, extent) for p in results)
    mode = ("RGB" if doc.color_channels == 3 else "L") + ("A" if transparent else "")
    # color=1.0: where nothing is painted the merged image is white, as Photoshop stores it.
    psd = PSDImage.new(mode, (extent.width, extent.height), color=1.0, depth=doc.depth)
    if transparent:
        psd._merged_alpha = True  # a negative layer count: the last channel is transparency
    header = psd._record.header
    if doc.header.version == 2 or max(extent.width, extent.height) > PSD_MAX_SIDE:
        header.version = 2
    for key in (Resource.ICC_PROFILE, Resource.ICC_UNTAGGED_PROFILE, Resource.RESOLUTION_INFO):
        if key in doc.psd.image_resources:  # type: ignore[attr-defined]
            psd.image_resources[key] = doc.psd.image_resources[key]  # type: ignore[attr-defined]
    out = Document(doc.path, psd, Header(header.version, header.channels, header.height,
                                         header.width, header.depth, int(header.color_mode)),
                   layer_compression=compression_for(doc))  # packed as the source's layers
    added = []
    for prepared in reversed(results):
        layer = pixel_layer(out, psd, prepared)
        psd.append(layer)
        _add_mask(out, layer, prepared)
        added.append(layer)
    _assign_ids(psd, [la._record for la in added])
    return out
