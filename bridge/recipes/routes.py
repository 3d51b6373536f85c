"""POST /v1/recipes/run: a recipe on one image, queued as a job like every other.

multipart/form-data parts:
- `recipe` (required): the recipe as TOML or JSON text;
- `image` (required), `raw`, `icc`, `priority`: as for POST /v1/jobs;
- `reference` (optional): a reference image file; steps whose file parameter is
  "@reference" use it. It is kept under <cache_dir>/references/ by content hash,
  so sending the same reference again costs no extra disk.
The recipe is checked (operations, parameters, models, files) before the job is
queued, so a bad recipe is answered at once with 400/404/409, not as a failed job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.errors import InvalidInput, InvalidParams
from bridge.imaging import codecs
from bridge.imaging.image import Image
from bridge.ops.base import OpResult
from bridge.private_dirs import make_dir
from bridge.recipes.recipe import Recipe, check_recipe, parse_recipe
from bridge.recipes.runner import run_recipe
from bridge.server import transport
from bridge.server.jobs import Job
from bridge.server.state import STATE, ServerState

TEXT_PARTS = {"recipe", "raw", "priority"}
BINARY_PARTS = {"image", "icc", "reference"}


def store_reference(data: bytes | bytearray, cache_dir: Path) -> Path:
    """Keep an uploaded reference image by content hash (decodable or refused)."""
    codecs.probe(data)  # a clear 415/400 now rather than a failed job later
    folder = cache_dir / "references"
    make_dir(folder)
    path = folder / hashlib.sha256(data).hexdigest()[:40]
    if not path.exists():
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:  # a full disk: no half-written reference left behind
            tmp.unlink(missing_ok=True)
            raise
    return path


def _decode_image(blobs: dict[str, bytearray], raw_text: str | None, max_pixels: int) -> Image:
    data = blobs["image"]
    if raw_text:
        try:
            raw = json.loads(raw_text)
        except ValueError as e:
            raise InvalidParams(f"part 'raw' is not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise InvalidParams("part 'raw' must be a JSON object")
        layout = []
        for key in ("width", "height", "channels", "depth"):
            value = raw.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidInput(f"'raw' needs an integer '{key}'")
            layout.append(value)
        image = codecs.decode_raw(data, *layout, max_pixels=max_pixels)
    else:
        image = codecs.decode(data, max_pixels=max_pixels)
    if blobs.get("icc"):
        image = image.with_pixels(image.pixels, icc=bytes(blobs["icc"]))
    return image


def _prepare(st: ServerState, texts: dict[str, str], blobs: dict[str, bytearray]
             ) -> tuple[Recipe, Image]:
    """Parse and check the recipe, then decode the image (runs in the thread pool)."""
    recipe = parse_recipe(texts["recipe"], base_dir=None, source="request")
    if blobs.get("reference"):
        recipe = recipe.with_reference(store_reference(blobs["reference"],
                                                       st.settings.cache_dir))
    check_recipe(recipe, st.manager())
    image = _decode_image(blobs, texts.get("raw"), st.settings.max_pixels)
    return recipe, image


async def run_recipe_route(request: web.Request) -> web.Response:
    """Run a recipe on one image (multipart: recipe, image, raw, icc, reference, priority). Answers 202."""
    st = request.app[STATE]
    form = await transport.read_form(request, st.settings.max_body_mb << 20,
                                     texts=TEXT_PARTS, blobs=BINARY_PARTS)
    texts, blobs = form.texts, form.blobs
    if not texts.get("recipe", "").strip():
        raise InvalidInput("the 'recipe' part (TOML or JSON) is missing or empty")
    if not blobs.get("image"):
        raise InvalidInput("the 'image' part is missing or empty")
    priority = texts.get("priority") or "interactive"
    if priority not in ("interactive", "batch"):
        raise InvalidParams("priority must be 'interactive' or 'batch'")
    loop = asyncio.get_running_loop()
    recipe, image = await loop.run_in_executor(None, _prepare, st, texts, blobs)

    def work(ctx: Any) -> OpResult:
        return run_recipe(recipe, image, ctx)

    job = Job(op="recipe", work=work, priority=priority, source_format=image.source_format,
              source=image, describe_result=transport.describe_result)
    st.queue.submit(job)
    return web.json_response({"id": job.id, "state": job.state, "recipe": recipe.name},
                             status=202)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/recipes/run", run_recipe_route)
