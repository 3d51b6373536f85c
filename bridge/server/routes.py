"""HTTP handlers. Small on purpose: checks live in middlewares, work in jobs and ops."""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from typing import Any

import numpy as np
from aiohttp import web

import bridge
from bridge import identity
from bridge.errors import InvalidInput, InvalidParams, NotFound, status_for_code
from bridge.imaging.composite import paste_masked
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.resident import resident_models
from bridge.ops.base import Layer, OpResult
from bridge.ops.registry import get_operation, operations, prepare, run_operation
from bridge.server import transport
from bridge.server.jobs import FileResult, Job
from bridge.server.security import listening_port
from bridge.server.state import STATE, ServerState, dumps

routes = web.RouteTableDef()


def state(request: web.Request) -> ServerState:
    return request.app[STATE]


def json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    """Liveness, and proof of identity for ?challenge=; the only endpoint that needs no token."""
    body = {"status": "ok", "version": bridge.__version__, "protocol": bridge.PROTOCOL_VERSION}
    challenges = request.query.getall("challenge", [])
    if not challenges:
        return json(body)
    if len(challenges) != 1 or not identity.valid_nonce(challenges[0]):
        raise InvalidParams(f"challenge must be {identity.NONCE_RULE}", param="challenge")
    body["proof"] = identity.proof(state(request).token, listening_port(request), challenges[0])
    response = json(body)
    response.headers["Cache-Control"] = "no-store"  # an answer for one nonce, never reused
    return response


@routes.get("/v1/capabilities")
async def capabilities(request: web.Request) -> web.Response:
    """Protocol, operations with parameter schemas, models and their state, device."""
    st = state(request)
    return json({
        "protocol": bridge.PROTOCOL_VERSION,
        "version": bridge.__version__,
        "operations": [op.describe() for op in operations().values()],
        "models": await st.model_states(),
        "resident": resident_models().snapshot(),
        "device": await st.device_info(),
        "limits": {"max_pixels": st.settings.max_pixels,
                   "max_body_mb": st.settings.max_body_mb,
                   "queue_limit": st.settings.queue_limit,
                   "queue_memory_mb": st.queue.bytes_limit >> 20},
    })


# -- jobs ---------------------------------------------------------------------
async def _submit(request: web.Request, op_name: str | None) -> Job:
    st = state(request)
    sub = await transport.read_submission(
        request, st.settings.max_body_mb << 20, st.settings.max_pixels)
    name = op_name or sub.op
    if not name:
        raise InvalidInput("name the operation in the 'op' part")
    op = get_operation(name)
    loop = asyncio.get_running_loop()
    manager = await loop.run_in_executor(None, st.manager)
    # Off the event loop: an operation's checks may hash a model file changed on disk.
    params = await loop.run_in_executor(
        None, prepare, op, sub.image, sub.mask, sub.params, manager)
    image, mask = sub.image, sub.mask

    def work(ctx: Any) -> OpResult:
        return run_operation(name, image, mask, params, ctx)

    job = Job(op=name, work=work, priority=sub.priority, source_format=image.source_format,
              source=image, describe_result=transport.describe_result,
              held_bytes=image.pixels.nbytes + (mask.data.nbytes if mask is not None else 0))
    return st.queue.submit(job)


@routes.post("/v1/jobs")
async def submit_job(request: web.Request) -> web.Response:
    """Submit a job (multipart: op, params, image, mask, raw, icc, priority). Answers 202."""
    job = await _submit(request, None)
    return json({"id": job.id, "state": job.state}, status=202)


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """Recent jobs, oldest first."""
    return json({"jobs": [j.status() for j in state(request).queue.jobs()]})


@routes.get("/v1/jobs/{id}")
async def job_status(request: web.Request) -> web.Response:
    """One job's state, progress and result description."""
    return json(state(request).queue.get(request.match_info["id"]).status())


@routes.delete("/v1/jobs/{id}")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel: a queued job ends now, a running one at its next tile or step."""
    job = state(request).queue.cancel(request.match_info["id"])
    return json(job.status(), status=202 if job.state == "running" else 200)


def _finished_result(job: Job) -> OpResult:
    if job.state != "done":
        raise NotFound(f"job '{job.id}' has no result: it is {job.state}", state=job.state)
    if not isinstance(job.result, OpResult):
        raise NotFound(f"job '{job.id}' has no pixel result")
    return job.result


def _flatten(source: Image, result: OpResult) -> Image:
    """The whole document with the primary layer composited through its mask."""
    layer = result.primary
    if result.extent != source.extent or layer.image.channels != source.channels:
        if layer.bounds == Bounds.of(result.extent):
            return layer.image
        raise InvalidParams("full=1 is not available for this result")
    pixels = np.array(source.pixels, copy=True)
    mask_data = layer.mask if layer.mask is not None else np.full(
        (layer.bounds.height, layer.bounds.width), 255, np.uint8)
    paste_masked(pixels, layer.image.pixels, layer.bounds, Mask(layer.bounds, mask_data))
    return source.with_pixels(pixels)


def _output_hint(result: OpResult) -> tuple[str | None, int]:
    """The format and quality a result asks to be written in when the client does not say.

    A recipe's [output] or standardize's `format`/`quality` land in metadata["output"];
    they are defaults only: `?format=` and `?quality=` win, and choose_format still
    falls back from JPEG/WebP where the pixels need it (alpha, 16-bit)."""
    hint = result.metadata.get("output")
    if not isinstance(hint, dict):
        return None, 95
    fmt = hint.get("format")
    quality = hint.get("quality")
    fmt = fmt if isinstance(fmt, str) and fmt in transport.OUTPUT_FORMATS else None
    quality = quality if isinstance(quality, int) and 1 <= quality <= 100 else 95
    return fmt, quality


async def _send_layer(request: web.Request, job_id: str, layer_name: str | None,
                      want_mask: bool) -> web.StreamResponse:
    job = state(request).queue.get(job_id)
    if job.state == "done" and isinstance(job.result, FileResult):
        if layer_name is not None or want_mask:
            raise NotFound("this job's result is a single file; fetch /result")
        return web.FileResponse(job.result.path, headers={
            "Content-Type": job.result.media_type, "X-Job-Id": job.id,
            "Content-Disposition": f'attachment; filename="{job.result.filename}"'})
    result = _finished_result(job)
    layer: Layer | None = result.primary if layer_name is None else result.layer(layer_name)
    if layer is None:
        names = ", ".join(la.name for la in result.layers)
        raise NotFound(f"no layer '{layer_name}' in this result; layers: {names}")
    q = request.query
    default_format, default_quality = _output_hint(result)
    try:
        quality = int(q.get("quality", str(default_quality)))
    except ValueError:
        raise InvalidParams("quality must be an integer from 1 to 100") from None
    if not 1 <= quality <= 100:
        raise InvalidParams("quality must be an integer from 1 to 100")
    if want_mask:
        if layer.mask is None:
            raise NotFound(f"layer '{layer.name}' has no mask")
        image = Image(layer.mask, source_format="generated")
        fmt = transport.choose_format(q.get("format"), "raw" if job.source_format == "raw"
                                      else "png", image)
    else:
        image = layer.image
        if q.get("full") == "1":
            if job.source is None:
                raise NotFound("the source image of this job is no longer kept")
            loop = asyncio.get_running_loop()
            image = await loop.run_in_executor(None, _flatten, job.source, result)
        if q.get("depth"):
            loop = asyncio.get_running_loop()
            image = await loop.run_in_executor(None, transport.convert_depth, image, q["depth"])
        fmt = transport.choose_format(q.get("format"), default_format or job.source_format,
                                      image)
    headers = transport.pixel_headers(image, layer.bounds, result, job.id, layer.mask is not None)
    return await transport.pixels_response(request, image, fmt, quality, headers)


@routes.get("/v1/jobs/{id}/result")
async def job_result(request: web.Request) -> web.StreamResponse:
    """The primary layer's pixels (?format=png|tiff|jpeg|webp|raw, ?full=1)."""
    return await _send_layer(request, request.match_info["id"], None, False)


@routes.get("/v1/jobs/{id}/result/{layer}")
async def job_result_layer(request: web.Request) -> web.StreamResponse:
    """A named layer's pixels."""
    return await _send_layer(request, request.match_info["id"], request.match_info["layer"], False)


@routes.get("/v1/jobs/{id}/result/{layer}/mask")
async def job_result_mask(request: web.Request) -> web.StreamResponse:
    """A layer's mask as 8-bit grey."""
    return await _send_layer(request, request.match_info["id"], request.match_info["layer"], True)


@routes.get("/v1/jobs/{id}/preview")
async def job_preview(request: web.Request) -> web.Response:
    """The latest preview (a small PNG) of a running job."""
    job = state(request).queue.get(request.match_info["id"])
    if job.preview is None:
        raise NotFound("no preview yet")
    return web.Response(body=job.preview, content_type="image/png")


CONNECTION_POLL_S = 0.25


async def _wait_while_connected(request: web.Request, waiting: Any) -> None:
    """Await `waiting`, or raise ConnectionResetError as soon as the client disconnects.

    aiohttp does not cancel a handler whose client left (handler_cancellation is off),
    so a long synchronous call would otherwise run on for nobody.
    """
    task = asyncio.ensure_future(waiting)
    try:
        while not task.done():
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("the client disconnected")
            await asyncio.wait({task}, timeout=CONNECTION_POLL_S)
    finally:
        task.cancel()
    task.result()


@routes.post("/v1/ops/{op}")
async def run_op(request: web.Request) -> web.StreamResponse:
    """Run one operation and answer with its primary layer (for the Lightroom plugin)."""
    st = state(request)
    job = await _submit(request, request.match_info["op"])
    try:
        await _wait_while_connected(request, st.wait(job))
    except (asyncio.CancelledError, ConnectionResetError):
        # The client went away: nobody will read the result, stop the work.
        with contextlib.suppress(NotFound):
            st.queue.cancel(job.id)
        raise
    if job.state == "failed":
        err = job.error or {"code": "internal_error", "message": "the job failed"}
        return json({"error": err}, status=status_for_code(str(err.get("code"))))
    if job.state == "cancelled":
        return json({"error": {"code": "cancelled", "message": "the job was cancelled"}},
                    status=409)
    return await _send_layer(request, job.id, None, False)


# -- models and events ---------------------------------------------------------
@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    """The model registry with each model's state, and the models loaded now."""
    return json({"models": await state(request).model_states(),
                 "resident": resident_models().snapshot()})


@routes.post("/v1/resident/unload")
async def unload_models(request: web.Request) -> web.Response:
    """Unload loaded models ({"ids": [...]}, or all without a body): idle ones now, ones
    a running job uses when it ends."""
    body = await transport.read_small_body(request)
    ids = None
    if body.strip():
        try:
            ids = jsonlib.loads(body)["ids"]
        except (ValueError, KeyError, TypeError):
            raise InvalidInput('send {"ids": [...]} (ids from "resident"), or no body for all') from None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidParams("ids must be a list of resident model ids", param="ids")
        known = {m["id"] for m in resident_models().snapshot()["models"]}
        if missing := [i for i in ids if i not in known]:
            raise NotFound(f"not loaded: {', '.join(missing)}")
    loop = asyncio.get_running_loop()
    done = await loop.run_in_executor(None, resident_models().unload, ids)
    return json({**done, "resident": resident_models().snapshot()})


@routes.post("/v1/models/{id}/pull")
async def pull_model(request: web.Request) -> web.Response:
    """Start a download; progress arrives as model-progress events."""
    started = await state(request).start_pull(request.match_info["id"])
    return json(started, status=202)


@routes.get("/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    """WebSocket of job and model events."""
    return await state(request).hub.handle(request)
