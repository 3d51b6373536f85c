"""`batch IN_DIR -r RECIPE -o OUT_DIR` and `recipe validate|run`: recipes from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(path: str, reference: str | None):
    from bridge.recipes.recipe import load_recipe

    recipe = load_recipe(path)
    if reference:
        ref = Path(reference).expanduser().resolve()
        if not ref.is_file():
            from bridge.errors import InvalidParams

            raise InvalidParams(f"the reference image '{reference}' does not exist")
        recipe = recipe.with_reference(ref)
    return recipe


def cmd_batch(args: argparse.Namespace) -> int:
    from bridge.batch.progress import Progress
    from bridge.batch.run import run_batch

    recipe = _load(args.recipe, args.reference)
    progress = Progress(enabled=not args.quiet)
    summary = run_batch(args.input, recipe, args.output, engine=args.engine,
                        workers=args.workers, force=args.force, report=not args.no_report,
                        progress=progress, ray_address=args.ray_address)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    elif not args.quiet or not summary.ok:
        print("\n".join(summary.lines()))
    if summary.interrupted:
        return 130
    return 0 if summary.ok else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from bridge.recipes.recipe import check_recipe

    recipe = _load(args.recipe, args.reference)
    if not recipe.uses_reference or args.reference:
        check_recipe(recipe)
    print(f"recipe '{recipe.name}': {len(recipe.steps)} step(s), output {recipe.output.format}")
    for i, step in enumerate(recipe.steps, 1):
        params = ", ".join(f"{k}={v!r}" for k, v in step.params.items())
        print(f"  {i}. {step.op}: {params}")
    if recipe.uses_reference and not args.reference:
        print("note: the recipe uses '@reference'; pass --reference to check it fully")
    return 0


def cmd_recipe_run(args: argparse.Namespace) -> int:
    from bridge.batch.plan import output_format
    from bridge.batch.worker import flatten_alpha
    from bridge.cli.run import progress_printer
    from bridge.imaging.codecs import format_for_suffix, read_image, write_image
    from bridge.ops.base import OpContext
    from bridge.recipes.recipe import check_recipe
    from bridge.recipes.runner import run_recipe

    recipe = _load(args.recipe, args.reference)
    src, dst = Path(args.input), Path(args.output)
    if src.resolve() == dst.resolve():
        from bridge.errors import InvalidParams

        raise InvalidParams("the output must be a new file: the input is never overwritten")
    check_recipe(recipe)
    image = read_image(src)
    ctx = OpContext(progress=progress_printer(not args.quiet and sys.stderr.isatty()))
    result = run_recipe(recipe, image, ctx)
    out = result.primary.image
    fmt = format_for_suffix(dst)
    _, quality = output_format(recipe)
    if fmt == "jpeg" and out.has_alpha:
        out = flatten_alpha(out, recipe.output.background)
    write_image(out, dst, fmt, quality=quality)
    if not args.quiet:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"{recipe.name}: wrote {dst} ({out.width}x{out.height}, {out.depth}-bit)")
        for warning in result.metadata.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="run a recipe over a folder of images",
        description="Run a recipe over every image under IN_DIR and write the results under "
                    "OUT_DIR (same relative paths). Inputs are never modified. Re-running the "
                    "same command skips what is done and resumes the rest. A QA report "
                    "(qa-report.html, qa-report.json) is written to OUT_DIR.")
    p.add_argument("input", metavar="IN_DIR", help="folder of PNG, TIFF, JPEG and WebP images")
    p.add_argument("-r", "--recipe", required=True, help="recipe file (TOML or JSON)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: worker processes on this machine; ray: a Ray cluster")
    p.add_argument("--workers", type=int, help="parallel workers (default: one per core; "
                                               "Ray: one per CPU, or per GPU for GPU recipes)")
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local one)")
    p.add_argument("--reference", help="reference image for steps that say '@reference'")
    p.add_argument("--force", action="store_true", help="redo files that are already done")
    p.add_argument("--no-report", action="store_true",
                   help="no QA report, metrics or thumbnails (less work per file)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, summary on failure")
    p.set_defaults(handler=cmd_batch)

    r = sub.add_parser("recipe", help="check or run a recipe file")
    rsub = r.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    v = rsub.add_parser("validate", help="check a recipe without running it",
                        description="Check operations, parameters, models and files.")
    v.add_argument("recipe", help="recipe file (TOML or JSON)")
    v.add_argument("--reference", help="reference image for '@reference'")
    v.set_defaults(handler=cmd_validate)
    x = rsub.add_parser("run", help="run a recipe on one image",
                        description="Run a recipe on one file and write the result to a new file.")
    x.add_argument("recipe", help="recipe file (TOML or JSON)")
    x.add_argument("input", help="input image")
    x.add_argument("-o", "--output", required=True, help="output file; format from its suffix")
    x.add_argument("--reference", help="reference image for '@reference'")
    x.add_argument("-q", "--quiet", action="store_true")
    x.set_defaults(handler=cmd_recipe_run)
