"""POST /v1/psd/apply: a PSD in, the same PSD with the result layer out, as a job."""

from __future__ import annotations

import asyncio
import functools
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.errors import InvalidInput, InvalidParams
from bridge.imaging.formats import check_size
from bridge.imaging.geometry import Extent
from bridge.ops.base import OpContext
from bridge.ops.registry import get_operation, prepare
from bridge.server import transport
from bridge.server.jobs import FileResult, Job
from bridge.server.scratch import Scratch
from bridge.server.state import STATE, dumps

routes = web.RouteTableDef()
PSD_MEDIA = "image/vnd.adobe.photoshop"


@routes.post("/v1/psd/apply")
async def psd_apply(request: web.Request) -> web.Response:
    """Run an operation on a PSD layer (or the composite); the result is the PSD with a new layer."""
    from bridge.psd.document import check_merged_bytes, read_header

    st = request.app[STATE]
    folder = request.app[SCRATCH].folder("psd")
    src = folder / "input.psd"
    try:
        form = await transport.read_form(
            request, st.settings.max_body_mb << 20,
            texts={"op", "params", "layer", "composite", "mask_from_layer", "priority", "mask_raw"},
            blobs={"mask"}, files={"psd": src})
        if "psd" not in form.files or src.stat().st_size == 0:
            raise InvalidInput("the 'psd' part is missing or empty")
        loop = asyncio.get_running_loop()
        header = await loop.run_in_executor(None, read_header, src)
        # A small upload can claim a huge, well-compressed document: refuse it now.
        check_size(Extent(header.width, header.height), st.settings.max_pixels, "PSD document")
        check_merged_bytes(header, st.settings.max_pixels, "PSD document")
        manager = await loop.run_in_executor(None, st.manager)
        # Off the loop: the mask decodes here and a model check may hash a changed file.
        job = await loop.run_in_executor(None, functools.partial(
            _make_job, form, src, folder, Extent(header.width, header.height), manager,
            psb=header.version == 2))
        if job.priority not in ("interactive", "batch"):
            raise InvalidParams("priority must be 'interactive' or 'batch'")
        st.queue.submit(job)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return web.json_response({"id": job.id, "state": job.state}, status=202, dumps=dumps)


def _make_job(form: transport.Form, src: Path, folder: Path, extent: Extent, manager: Any,
              *, psb: bool) -> Job:
    """The job, after the checks /v1/jobs makes at submission (parameters, the selection an
    operation needs, its models: 400 or 409 now rather than a job that fails later)."""
    from bridge.imaging.codecs import decode_mask
    from bridge.psd.apply import apply_to_psd

    texts = form.texts
    op_name = texts.get("op") or ""
    if not op_name:
        raise InvalidInput("name the operation in the 'op' part")
    op = get_operation(op_name)
    # Raw: the job's apply_to_psd fills in defaults (the user's default models among them).
    params: dict[str, Any] = transport.json_part("params", texts.get("params")) or {}
    layer = texts.get("layer") or None
    composite = (texts.get("composite") or "").lower() in ("1", "true", "yes")
    if layer is None and not composite:
        raise InvalidInput("name the source: a 'layer' part, or 'composite' = 1")
    if layer is not None and composite:
        raise InvalidInput("give either 'layer' or 'composite', not both")
    mask = None
    if "mask" in form.blobs:
        raw = transport.json_part("mask_raw", texts.get("mask_raw"))
        mask = decode_mask(form.blobs["mask"], extent, raw=raw)
    mask_from_layer = texts.get("mask_from_layer") or None
    if mask is not None and mask_from_layer is not None:
        raise InvalidInput("give one selection: a 'mask' or a 'mask_from_layer', not both")
    prepare(op, None, mask, params, manager, selection_later=mask_from_layer is not None)
    dst = folder / ("output.psb" if psb else "output.psd")

    def work(ctx: OpContext) -> FileResult:
        report = apply_to_psd(src, dst, op_name, layer=layer, composite=composite, mask=mask,
                              mask_from_layer=mask_from_layer, params=params, ctx=ctx)
        src.unlink(missing_ok=True)  # the upload is not needed once the output exists
        out = report.output
        name = "result.psb" if out.suffix.lower() == ".psb" else "result.psd"
        data = report.to_json()
        data.pop("input", None)
        data.pop("output", None)
        return FileResult(out, PSD_MEDIA, name, {"psd": data})

    return Job(op=f"psd:{op_name}", work=work, priority=texts.get("priority") or "interactive",
               source_format="psd", describe_result=lambda r: r.describe(),
               cleanup=lambda: shutil.rmtree(folder, ignore_errors=True))


SCRATCH = web.AppKey("psd_scratch", Scratch)


async def _sweep_scratch(app: web.Application) -> None:
    app[SCRATCH].sweep()  # what a killed bridge left


async def _close_scratch(app: web.Application) -> None:
    app[SCRATCH].close()  # after the queue stopped and released its jobs' folders


def setup(app: web.Application) -> None:
    # PSD jobs keep their upload and result on disk, in this server's scratch folder.
    app[SCRATCH] = Scratch(app[STATE].settings.cache_dir)
    app.on_startup.append(_sweep_scratch)
    app.on_cleanup.append(_close_scratch)
    app.add_routes(routes)
