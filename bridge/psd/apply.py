"""Run an operation on a PSD layer (or the composite) and save the PSD with the result added.

`apply_to_psd` is what the CLI and the server's PSD job both call. It works on
file paths, reports progress and honours cancellation through the OpContext,
and writes the output atomically: until the final rename nothing but a
temporary file in the output's folder exists, and the input is never written
(with `in_place`, it is replaced by the rename, after a backup).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bridge.errors import BridgeError, Cancelled, InvalidInput, TooLarge
from bridge.imaging.geometry import Bounds, Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import OpContext, Operation, OpResult
from bridge.ops.registry import get_operation, resolve_params, run_operation
from bridge.psd import files, layers, pixels, preview, writer
from bridge.psd.document import PSD_MAX_SIDE, Document, check_merged_bytes, open_document
from bridge.psd.naming import layer_name

PSD_MAX_BYTES = 2**31 - 1  # Photoshop's limit for a PSD file; PSB has none that matters here


@dataclass
class AddedLayer:
    name: str
    path: str
    index: int  # number in `psd layers` of the output
    layer_id: int
    bounds: Bounds
    depth: int
    channels: int
    has_mask: bool
    visible: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": self.path, "index": self.index, "id": self.layer_id,
            "bounds": self.bounds.as_list(), "depth": self.depth, "channels": self.channels,
            "has_mask": self.has_mask, "visible": self.visible,
        }


@dataclass
class ApplyReport:
    input: Path
    output: Path
    operation: str
    params: dict[str, Any]
    source: str  # the layer's path, or "composite"
    source_bounds: Bounds
    document: dict[str, Any]  # the output document: size, mode, depth, format, icc
    new_document: bool  # True for resizing ops: the output holds only the results
    layers: list[AddedLayer]
    group: str | None = None
    group_created: bool = False
    selection: str | None = None  # what the mask came from
    backup: Path | None = None
    preview: str = "unchanged"  # "updated", "unchanged", "rendered" or "stale"
    preview_pixels: int = 0
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": str(self.input), "output": str(self.output),
            "operation": self.operation, "params": self.params,
            "source": self.source, "source_bounds": self.source_bounds.as_list(),
            "document": self.document, "new_document": self.new_document,
            "group": self.group, "group_created": self.group_created,
            "layers": [la.to_json() for la in self.layers],
            "selection": self.selection,
            "backup": str(self.backup) if self.backup else None,
            "preview": self.preview, "preview_pixels": self.preview_pixels,
            "warnings": self.warnings, "metadata": _jsonable(self.metadata),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def apply_to_psd(
    src: Path,
    dst: Path,
    op: str,
    *,
    layer: str | None = None,
    composite: bool = False,
    mask: Mask | None = None,
    mask_from_layer: str | None = None,
    params: dict[str, Any] | None = None,
    ctx: OpContext | None = None,
    in_place: bool = False,
) -> ApplyReport:
    """Run `op` on `layer` (see bridge.psd.layers for how to name one) or the composite.

    `mask` is a selection in document coordinates; `mask_from_layer` takes the
    selection from a layer's mask (or its transparency when it has none).
    Writes `dst` (a new document of the scaled size for resizing ops); with
    `in_place`, `dst` must be `src`, which is kept as NAME.psd.bak first.
    """
    src, dst = Path(src), Path(dst)
    ctx = ctx or OpContext()
    _check_request(src, dst, layer, composite, mask, mask_from_layer, in_place)
    operation = get_operation(op)
    # Early, so a bad parameter fails before the PSD is read; with the user's default
    # model when none is named (run_operation checks the rest, once).
    values = resolve_params(operation, params, ctx.models)
    if operation.mask == "none" and (mask is not None or mask_from_layer is not None):
        raise InvalidInput(f"operation '{op}' takes no mask")
    if in_place and operation.resizes:
        raise InvalidInput(
            f"'{op}' makes a new document of another size; in place it would replace "
            f"{src.name} and every layer in it. Write it to a new file with -o"
        )

    ctx.progress(0.0, "reading PSD")
    doc = open_document(src)
    _check_pixels(doc.extent, ctx, f"the document {src.name}")
    if ctx.max_pixels is not None:
        check_merged_bytes(doc.header, ctx.max_pixels, f"document {src.name}")
    warnings: list[str] = []
    entry = layers.find_layer(doc.psd, layer) if layer is not None else None
    if entry is not None:
        _check_pixels(layers.record_bounds(entry.layer).extent, ctx, f"layer '{entry.path}'")
    if mask_from_layer is not None:
        holder = layers.find_layer(doc.psd, mask_from_layer).layer
        m = holder.mask if holder.has_mask() else None
        rect = (Bounds.from_corners(m.left, m.top, m.right, m.bottom) if m is not None
                else layers.record_bounds(holder))
        _check_pixels(rect.extent, ctx, f"the selection of layer '{mask_from_layer}'")
    image, source_bounds = _read_source(doc, entry, warnings)
    source = entry.path if entry is not None else "composite"

    selection, selection_label = _selection(doc, mask, mask_from_layer)
    local = None
    if selection is not None:
        local = _in_source(selection, source_bounds)
        if local.is_empty:
            where = "is empty" if selection.is_empty else (
                f"lies outside the source ({source}, {source_bounds})")
            raise InvalidInput(f"the selection ({selection_label}) {where}")

    ctx.progress(0.1, f"running {op}")
    result = run_operation(op, image, local, values, ctx.sub(0.1, 0.85))
    ctx.check_cancelled()
    warnings.extend(str(w) for w in result.metadata.get("warnings", []))
    new_extent, offset = _geometry(operation, result, doc, image.extent, source_bounds)
    prepared = _prepare(operation, values, result, doc, offset, warnings)

    ctx.progress(0.86, "adding layers")
    if new_extent is not None:
        added = _into_new_document(doc, new_extent, prepared, dst, warnings, ctx)
    else:
        added = _into_document(doc, entry, image, prepared, warnings, ctx)

    ctx.progress(0.95, "saving")
    ctx.check_cancelled()
    backup = _save(added.doc, src, dst, in_place)
    ctx.progress(1.0, "done")

    out = added.doc
    listing = {id(e.layer): e for e in layers.entries(out.psd)}
    return ApplyReport(
        input=src, output=dst, operation=op, params=values, source=source,
        source_bounds=source_bounds, document=out.describe(),
        new_document=new_extent is not None,
        layers=[_added(listing[id(la)], out) for la in added.layers],
        group=listing[id(added.group)].path if added.group is not None else None,
        group_created=added.group_created, selection=selection_label, backup=backup,
        preview=added.preview, preview_pixels=added.preview_pixels, warnings=warnings,
        metadata={k: v for k, v in result.metadata.items() if k != "warnings"},
    )


@dataclass
class _Added:
    doc: Document  # the document written: the input's, or a new one
    layers: list[Any]
    group: Any | None = None
    group_created: bool = False
    preview: str = "unchanged"
    preview_pixels: int = 0


def _check_pixels(extent: Extent, ctx: OpContext, what: str) -> None:
    """Refuse what the pixel limit forbids before any of it is decoded: a small file can
    claim a huge, well-compressed document or layer (a decompression bomb)."""
    if ctx.max_pixels is not None and extent.pixels > ctx.max_pixels:
        raise TooLarge(f"{what} is {extent.width}x{extent.height} = {extent.pixels:,} pixels; "
                       f"the limit is {ctx.max_pixels:,} pixels (--max-pixels)")


def _read_source(doc: Document, entry: layers.Entry | None,
                 warnings: list[str]) -> tuple[Image, Bounds]:
    if entry is not None:
        return pixels.read_layer(doc, entry.layer, entry.path)
    if not doc.has_real_composite:
        warnings.append(
            "the file holds no real merged image (saved without Maximize Compatibility); "
            "the composite was rendered by psd-tools and may differ from Photoshop's"
        )
    return pixels.read_composite(doc), Bounds.of(doc.extent)


def _into_document(doc: Document, entry: layers.Entry | None, image: Image,
                   prepared: list[writer.PreparedLayer], warnings: list[str],
                   ctx: OpContext) -> _Added:
    if len(doc.psd) == 0:  # type: ignore[arg-type]
        writer.ensure_layered(doc, image)
        warnings.append("the document had no layers: its image became layer 'Background'")
    placement = writer.place(doc, entry.layer if entry else None, prepared)
    full = not doc.has_real_composite
    region = Bounds.of(doc.extent) if full else Bounds.enclosing(p.bounds for p in prepared)
    state, count = _refresh(doc, region, placement.new_nodes, full, warnings, ctx)
    return _Added(doc, placement.layers, placement.group, placement.group_created, state, count)


def _into_new_document(doc: Document, extent: Extent, prepared: list[writer.PreparedLayer],
                       dst: Path, warnings: list[str], ctx: OpContext) -> _Added:
    out = writer.new_document(doc, extent, prepared)
    if len(prepared) == 1:  # the usual case: the merged image is the layer itself
        state, count = "rendered", preview.flatten(out, prepared[0])
    else:
        state, count = _refresh(out, Bounds.of(extent), [], True, warnings, ctx)
    if max(extent.width, extent.height) > PSD_MAX_SIDE and dst.suffix.lower() != ".psb":
        warnings.append(
            f"{extent} is larger than a PSD allows (30,000 px a side): written in the "
            "large document format (PSB); name the file .psb for Photoshop")
    top_first = list(out.psd)[::-1]  # type: ignore[call-overload]
    return _Added(out, top_first, preview=state, preview_pixels=count)


def _save(out: Document, src: Path, dst: Path, in_place: bool) -> Path | None:
    """Atomic write; in place, the original is kept as a backup just before the rename."""
    backup: list[Path] = []

    def keep_backup() -> None:
        backup.append(files.make_backup(src))

    try:
        files.atomic_write(
            dst, lambda f: _write(out, f),
            mode_from=src if in_place else None,
            before_replace=keep_backup if in_place else None,
        )
    except BaseException:
        for path in backup:  # the input was not replaced: a backup would only confuse
            path.unlink(missing_ok=True)
        raise
    return backup[0] if backup else None


def _write(doc: Document, f: BinaryIO) -> None:
    # The records as they are: psd-tools' save() would re-render the whole merged
    # image, replacing Photoshop's pixels that preview.refresh kept.
    try:
        doc.psd._record.write(f)  # type: ignore[attr-defined]
    except struct.error as e:
        raise TooLarge(f"the result does not fit the {doc.header.kind} format: {e}") from e
    if doc.header.version == 1 and f.tell() > PSD_MAX_BYTES:
        raise TooLarge(
            f"the result would be {f.tell() / 2**30:.1f} GB, over the PSD format's 2 GB; "
            "save the document as PSB (Large Document Format) and apply to that"
        )


def _check_request(src: Path, dst: Path, layer: str | None, composite: bool,
                   mask: Mask | None, mask_from_layer: str | None, in_place: bool) -> None:
    if (layer is None) == (not composite):
        raise InvalidInput("say which pixels to use: a layer or the composite (one of them)")
    if mask is not None and mask_from_layer is not None:
        raise InvalidInput("give one selection: a mask file or a mask layer, not both")
    if not src.is_file():
        raise InvalidInput(f"no such PSD file: {src}")
    same = dst.exists() and os.path.samefile(src, dst)
    if in_place and not same:
        raise InvalidInput("in place writes over the input; the output must be the input file")
    if not in_place and same:
        raise InvalidInput(
            f"refusing to overwrite the input {src.name}; choose another output "
            "or use --in-place (keeps a backup)"
        )
    if not dst.parent.is_dir():
        raise InvalidInput(f"output folder does not exist: {dst.parent}")


def _selection(doc: Document, mask: Mask | None,
               mask_from_layer: str | None) -> tuple[Mask | None, str | None]:
    if mask_from_layer is not None:
        entry = layers.find_layer(doc.psd, mask_from_layer)
        coverage, how = pixels.layer_coverage(doc, entry.layer, entry.path)
        return coverage, f"{how} of '{entry.path}'"
    if mask is not None:
        return mask, "mask"
    return None, None


def _in_source(selection: Mask, source: Bounds) -> Mask:
    """A document-coordinate selection in the source image's coordinates, cropped to it."""
    inside = selection.bounds.intersect(source)
    if inside.is_empty:
        return Mask(Bounds(0, 0, 0, 0), selection.data[:0, :0])
    return Mask(inside.relative_to(source), selection.region(inside)).trimmed()


def _geometry(operation: Operation, result: OpResult, doc: Document, input_extent: Extent,
              source: Bounds) -> tuple[Extent | None, tuple[int, int]]:
    """New document size (None: same document) and where result coordinates start."""
    if result.extent == input_extent:
        return None, (source.x, source.y)
    if not operation.resizes:
        raise BridgeError(
            f"operation '{operation.name}' returned {result.extent} for a {input_extent} "
            "input without declaring that it resizes"
        )
    fx = result.extent.width / input_extent.width
    fy = result.extent.height / input_extent.height
    extent = Extent(round(doc.extent.width * fx), round(doc.extent.height * fy))
    return extent, (round(source.x * fx), round(source.y * fy))


def _prepare(operation: Operation, values: dict[str, Any], result: OpResult, doc: Document,
             offset: tuple[int, int], warnings: list[str]) -> list[writer.PreparedLayer]:
    # Named after what was used, so a layer's name is enough to make it again: the model
    # "auto" chose, and the seed each layer was made with (a random one when none was
    # asked for; seed + i for variation i).
    used = dict(values)
    for key in ("model", "engine"):  # what "auto" chose; remove's LaMa or OpenCV fallback
        if isinstance(result.metadata.get(key), str):
            used[key] = result.metadata[key]
    base = layer_name(operation, used)
    seeds = result.metadata.get("seeds")
    seeded = isinstance(seeds, list) and len(seeds) == len(result.layers)
    prepared = []
    for i, la in enumerate(result.layers):
        if seeded:
            name = layer_name(operation, {**used, "seed": seeds[i]})
        else:
            name = base if i == 0 else f"{base} – {la.name}"[: 255]
        if la.bounds.is_empty:
            warnings.append(f"result layer '{la.name}' is empty and was not added")
            continue
        data = writer.conform(la.image, doc.depth, doc.color_channels, warnings, name)
        prepared.append(writer.PreparedLayer(name, data, la.bounds.offset(*offset), la.mask,
                                             la.visible))
    if not prepared:
        raise BridgeError(f"operation '{operation.name}' returned no pixels to add")
    return prepared


def _refresh(doc: Document, region: Bounds, new_nodes: list[Any], full: bool,
             warnings: list[str], ctx: OpContext) -> tuple[str, int]:
    step = ctx.sub(0.86, 0.95)
    try:
        written = preview.refresh(doc, region, new_nodes, full=full,
                                  progress=lambda f: step.progress(f, "updating the preview"))
    except Cancelled:
        raise
    except Exception as e:  # psd-tools' renderer: a failure costs the preview, not the job
        warnings.append(
            f"merged preview not refreshed ({type(e).__name__}: {e}); Photoshop re-renders "
            "from the layers, other readers show the previous composite"
        )
        return "stale", 0
    if full:
        return "rendered", written
    return ("updated" if written else "unchanged"), written


def _added(entry: layers.Entry, doc: Document) -> AddedLayer:
    la = entry.layer
    return AddedLayer(
        name=la.name, path=entry.path, index=entry.index, layer_id=la.layer_id,
        bounds=layers.record_bounds(la), depth=doc.depth,
        channels=doc.color_channels + 1, has_mask=la.has_mask(), visible=bool(la.visible),
    )
