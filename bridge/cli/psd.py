"""`retouch-bridge psd ...`: apply an operation to a PSD, list its layers, export one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bridge.errors import InvalidParams

LAYER_HELP = ("a layer: its name, a path 'Group/Layer', '#N' (number in `psd layers`, "
              "0 = top) or 'id:N' (Photoshop's layer id)")


def register(subparsers: Any) -> None:
    psd = subparsers.add_parser("psd", help="work on layered Photoshop files",
                                description="Work on layered Photoshop files (PSD, PSB).")
    sub = psd.add_subparsers(dest="psd_command", metavar="SUBCOMMAND", required=True)

    apply = sub.add_parser(
        "apply", help="run an operation on a layer or the composite; add the result as a layer",
        description="Run an operation on one layer (or the composite) and save the PSD with the "
                    "result added in a 'Retouch Bridge' group. Nothing else in the file changes.",
    )
    apply.add_argument("input", type=Path, metavar="IN.psd")
    apply.add_argument("-o", "--output", type=Path, metavar="OUT.psd",
                       help="where to write (required unless --in-place)")
    apply.add_argument("--op", required=True, help="operation name (see capabilities)")
    source = apply.add_mutually_exclusive_group(required=True)
    source.add_argument("--layer", metavar="NAME", help=LAYER_HELP)
    source.add_argument("--composite", action="store_true", help="use the flattened image")
    selection = apply.add_mutually_exclusive_group()
    selection.add_argument("--mask", type=Path, metavar="MASK.png",
                           help="selection: a grey image of the document's size, white = selected")
    selection.add_argument("--mask-from-layer", metavar="NAME",
                           help="selection: that layer's mask, or its transparency if it has none")
    apply.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="operation parameter (repeatable); values are JSON when they parse")
    apply.add_argument("--in-place", action="store_true",
                       help="overwrite the input, keeping the original as IN.psd.bak")
    apply.add_argument("--json", action="store_true", help="print the report as JSON")
    apply.set_defaults(handler=run_apply)

    listing = sub.add_parser("layers", help="list the layer tree",
                             description="List layers top to bottom, as Photoshop shows them.")
    listing.add_argument("input", type=Path, metavar="IN.psd")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_layers)

    export = sub.add_parser("export", help="export one layer (or the composite) at full depth",
                            description="Write a layer's pixels, with transparency and the "
                                        "document's ICC profile, to a 8/16-bit TIFF.")
    export.add_argument("input", type=Path, metavar="IN.psd")
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument("--layer", metavar="NAME", help=LAYER_HELP)
    what.add_argument("--composite", action="store_true", help="export the flattened image")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.tif")
    export.set_defaults(handler=run_export)


def parse_params(items: list[str]) -> dict[str, Any]:
    from bridge.ops.params import parse_cli_value

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParams(f"--param needs KEY=VALUE, got '{item}'")
        params[key.strip()] = parse_cli_value(value)
    return params


def _progress_printer() -> Any:
    if not sys.stderr.isatty():
        return None

    def show(fraction: float, message: str) -> None:
        sys.stderr.write(f"\r{fraction * 100:5.1f}% {message[:60]:<60}")
        sys.stderr.flush()

    return show


def run_apply(args: argparse.Namespace) -> int:
    from bridge.imaging.codecs import decode_mask
    from bridge.imaging.geometry import Extent
    from bridge.ops.base import OpContext
    from bridge.psd.apply import apply_to_psd
    from bridge.psd.document import read_header

    if args.in_place == (args.output is not None):
        raise InvalidParams("give -o OUT.psd, or --in-place to overwrite the input (not both)")
    params = parse_params(args.param)
    mask = None
    if args.mask is not None:
        header = read_header(args.input)
        mask = decode_mask(Path(args.mask).read_bytes(), Extent(header.width, header.height))
    progress = _progress_printer()
    report = apply_to_psd(
        args.input, args.input if args.in_place else args.output, args.op,
        layer=args.layer, composite=args.composite, mask=mask,
        mask_from_layer=args.mask_from_layer, params=params,
        ctx=OpContext(progress=progress), in_place=args.in_place,
    )
    if progress is not None:
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return 0
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    doc = report.document
    kind = "new document" if report.new_document else "document"
    print(f"wrote {report.output} ({kind} {doc['width']}x{doc['height']}, {doc['mode']} "
          f"{doc['depth']}-bit)")
    for la in report.layers:
        b = la.bounds
        print(f"  added '{la.path}': {b.width}x{b.height} at {b.x},{b.y}, {la.depth}-bit"
              + (", with layer mask" if la.has_mask else ""))
    if report.backup:
        print(f"  original kept as {report.backup}")
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from bridge.psd import layers
    from bridge.psd.document import open_document

    doc = open_document(args.input)
    listed = [layers.describe(e, doc.depth) for e in layers.entries(doc.psd)]
    if args.json:
        body = {"file": str(args.input), **doc.describe(), "layers": listed}
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    d = doc.describe()
    print(f"{args.input.name}: {d['format'].upper()} {d['mode']} {d['depth']}-bit "
          f"{d['width']}x{d['height']}, {len(listed)} layers, "
          f"ICC profile: {'yes' if d['icc'] else 'no'}")
    for item in listed:
        print(format_layer(item))
    return 0


def format_layer(item: dict[str, Any]) -> str:
    x, y, w, h = item["bounds"]
    mask = item["mask"]
    parts = [
        f"#{item['index']:<3}",
        "  " * item["level"] + f"{item['name']!r}",
        f"[{item['kind']}]",
        f"{w}x{h}{x:+d}{y:+d}",
        f"opacity {round(item['opacity'] * 100 / 255)}%",
        item["blend_mode"].replace("_", " "),
        f"{item['depth']}-bit",
    ]
    if mask is not None:
        mx, my, mw, mh = mask["bounds"]
        parts.append(f"mask {mw}x{mh}{mx:+d}{my:+d}" + (" (disabled)" if mask["disabled"] else ""))
    if item["vector_mask"]:
        parts.append("vector mask")
    if item["clipping"]:
        parts.append("clipped")
    if not item["visible"]:
        parts.append("hidden")
    parts.append(f"id {item['id']}")
    return "  ".join(parts)


def run_export(args: argparse.Namespace) -> int:
    from bridge.imaging.codecs import write_image
    from bridge.psd import layers, pixels
    from bridge.psd.document import open_document

    doc = open_document(args.input)
    if args.composite:
        image = pixels.read_composite(doc)
        label = "composite"
    else:
        entry = layers.find_layer(doc.psd, args.layer)
        image, _bounds = pixels.read_layer(doc, entry.layer, entry.path)
        label = f"layer '{entry.path}'"
    if Path(args.output).suffix.lower() not in (".tif", ".tiff"):
        raise InvalidParams(f"export writes TIFF files (.tif, .tiff), not '{Path(args.output).suffix}'")
    write_image(image, args.output, "tiff")
    print(f"wrote {args.output}: {label}, {image.width}x{image.height}, {image.depth}-bit"
          + (", alpha" if image.has_alpha else "") + (", ICC" if image.icc else ""))
    return 0
