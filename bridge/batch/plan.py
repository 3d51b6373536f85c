"""Which files to process and where each result goes.

Inputs: every PNG, TIFF, JPEG and WebP under IN_DIR (recursively, hidden files and
folders skipped, and OUT_DIR skipped when it lies inside IN_DIR), in sorted order.
Outputs: the same relative path under OUT_DIR, the stem plus the recipe's
`suffix`, and the output format's extension (the input's own extension when the
format is "same"). Two inputs that would land on one output (`a.png` and `a.jpg`
written as JPEG) are told apart by their source extension (`a_png.jpg`,
`a_jpg.jpg`); names already recorded in the journal keep their output, so a
resumed batch never renames what it wrote before.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bridge.errors import InvalidParams
from bridge.imaging.formats import FORMATS, format_for_suffix
from bridge.recipes.recipe import Recipe

INPUT_SUFFIXES = {s for name in ("png", "tiff", "jpeg", "webp") for s in FORMATS[name].suffixes}
STATE_DIR = ".retouch-batch"


@dataclass(frozen=True)
class Task:
    index: int
    src: str  # absolute input path
    rel: str  # input path relative to IN_DIR, with forward slashes
    dst: str  # absolute output path
    out_rel: str
    fmt: str
    quality: int
    key: str  # short stable id (thumbnail names)


def find_inputs(in_dir: Path, out_dir: Path) -> list[str]:
    """Relative paths (forward slashes) of the images to process, sorted."""
    in_dir, out_dir = in_dir.resolve(), out_dir.resolve()
    found: list[str] = []
    for root, dirs, files in os.walk(in_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (here / d).resolve() != out_dir)
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in INPUT_SUFFIXES:
                continue
            if not (here / name).is_file():
                continue  # a FIFO or a device (even behind a symlink) would never end reading
            found.append((here / name).relative_to(in_dir).as_posix())
    return sorted(found)


def output_format(recipe: Recipe) -> tuple[str | None, int]:
    """The recipe's output format (None: each input's own) and quality (95 by default)."""
    fmt, quality = recipe.output_choice()
    return fmt, quality or 95


def _preferred(rel: str, fmt: str | None, suffix: str) -> tuple[str, str]:
    p = PurePosixPath(rel)
    own = p.suffix
    chosen = fmt or format_for_suffix(p.name)
    ext = own if fmt is None or own.lower() in FORMATS[chosen].suffixes else \
        FORMATS[chosen].suffixes[0]
    return str(p.with_name(p.stem + suffix + ext)), chosen


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """Refuse an output folder that is the input folder (or its state folder a symlink out).

    Called before anything is created: the journal folder would otherwise appear in
    the very input folder the batch then refuses to write to."""
    in_dir, out_dir = in_dir.resolve(), out_dir.resolve()
    if in_dir == out_dir:
        raise InvalidParams("OUT_DIR must differ from IN_DIR: inputs are never overwritten")
    if not (out_dir / STATE_DIR).resolve().is_relative_to(out_dir):
        raise InvalidParams(f"{out_dir / STATE_DIR} is a symbolic link out of the output folder")


def plan(in_dir: Path, out_dir: Path, recipe: Recipe, inputs: list[str],
         recorded: dict[str, str] | None = None) -> list[Task]:
    """Tasks for every input, output names unique (case-insensitively) and stable."""
    check_folders(in_dir, out_dir)
    in_dir, out_dir = in_dir.resolve(), out_dir.resolve()
    fmt, quality = output_format(recipe)
    recorded = recorded or {}
    taken: dict[str, str] = {}  # lower-cased output -> input
    for rel, out_rel in recorded.items():
        taken[out_rel.lower()] = rel
    wanted = {rel: _preferred(rel, fmt, recipe.output.suffix) for rel in inputs}
    clashes: dict[str, int] = {}
    for rel, (out_rel, _) in wanted.items():
        if rel not in recorded:
            clashes[out_rel.lower()] = clashes.get(out_rel.lower(), 0) + 1
    input_paths = {(in_dir / rel).resolve() for rel in inputs}
    tasks: list[Task] = []
    for i, rel in enumerate(inputs):
        out_rel, chosen = wanted[rel]
        if rel in recorded:
            out_rel = recorded[rel]
        else:
            owner = taken.get(out_rel.lower())
            if clashes[out_rel.lower()] > 1 or (owner is not None and owner != rel):
                out_rel = _disambiguate(out_rel, rel, taken)
        taken[out_rel.lower()] = rel
        dst = out_dir / out_rel
        if not dst.resolve().is_relative_to(out_dir):
            raise InvalidParams(f"the output for '{rel}' would be written outside the output "
                                f"folder, through a symbolic link in {dst.parent}")
        if dst.resolve() in input_paths:
            raise InvalidParams(f"the output for '{rel}' would overwrite an input ({dst})")
        key = hashlib.sha1(rel.encode()).hexdigest()[:16]
        tasks.append(Task(i, str(in_dir / rel), rel, str(dst), out_rel, chosen, quality, key))
    return tasks


def _disambiguate(out_rel: str, rel: str, taken: dict[str, str]) -> str:
    p = PurePosixPath(out_rel)
    source_ext = PurePosixPath(rel).suffix.lstrip(".").lower() or "file"
    base = p.with_name(f"{p.stem}_{source_ext}{p.suffix}")
    candidate, n = base, 2
    while taken.get(str(candidate).lower(), rel) != rel:
        candidate = base.with_name(f"{base.stem}_{n}{base.suffix}")
        n += 1
    return str(candidate)
