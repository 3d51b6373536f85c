"""`run OP INPUT -o OUTPUT`: one operation on one file, no server needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.errors import InvalidParams
from bridge.ops.params import parse_cli_value


def parse_params(items: list[str] | None) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidParams(f"--param takes key=value, got '{item}'")
        params[key.strip()] = parse_cli_value(value)
    return params


def progress_printer(enabled: bool):
    last = [-1]

    def show(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if enabled and pct != last[0]:
            last[0] = pct
            print(f"\r{pct:3d}% {message[:60]:<60}", end="", file=sys.stderr, flush=True)

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from bridge.imaging.codecs import decode_mask, read_image, write_image
    from bridge.ops.base import OpContext
    from bridge.ops.registry import run_operation

    params = parse_params(args.param)
    src, dst = Path(args.input), Path(args.output)
    if src.resolve() == dst.resolve():
        raise InvalidParams("the output must be a new file: the input is never overwritten")
    image = read_image(src)
    mask = decode_mask(Path(args.mask).read_bytes(), image.extent) if args.mask else None
    ctx = OpContext(progress=progress_printer(not args.quiet and sys.stderr.isatty()))
    result = run_operation(args.op, image, mask, params, ctx)
    layer = result.layer(args.layer) if args.layer else result.primary
    if layer is None:
        raise InvalidParams(f"no layer '{args.layer}'; layers: "
                            + ", ".join(la.name for la in result.layers))
    write_image(layer.image, dst)
    if args.mask_output and layer.mask is not None:
        from bridge.imaging.image import Image

        write_image(Image(layer.mask), Path(args.mask_output))
    if not args.quiet:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        b = layer.bounds
        print(f"{args.op}: wrote {dst} ({layer.image.width}x{layer.image.height}, "
              f"{layer.image.depth}-bit) at {b.x},{b.y}")
        for warning in result.metadata.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one operation on a file",
                       description="Run one operation on an image file and write the result "
                                   "to a new file (the input is never modified).")
    p.add_argument("op", help="operation name (see `retouch-bridge ops`)")
    p.add_argument("input", help="input image (PNG, TIFF, JPEG, WebP)")
    p.add_argument("-o", "--output", required=True, help="output file; format from its suffix")
    p.add_argument("--mask", help="selection mask image (grey, same size as the input)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="operation parameter (repeatable); values are JSON when they parse")
    p.add_argument("--layer", help="write this result layer instead of the primary one")
    p.add_argument("--mask-output", help="also write the result layer's mask here")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("ops", help="list operations and their parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ops)


def cmd_ops(args: argparse.Namespace) -> int:
    import json

    from bridge.ops.registry import operations

    ops = operations()
    if args.json:
        print(json.dumps([op.describe() for op in ops.values()], indent=2))
        return 0
    for op in ops.values():
        print(f"{op.name:<18} {op.description}")
        for p in op.params:
            default = "" if p.default is None else f" (default {p.default})"
            print(f"    {p.name:<16} {p.type.__name__:<6} {p.description}{default}")
    return 0
