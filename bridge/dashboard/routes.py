"""The dashboard page and the endpoints it (and the tray) needs beyond the core API.

`/dashboard?token=...` trades the pairing token for an HttpOnly, SameSite=Strict
cookie and redirects to `/dashboard`, so the token leaves the address bar and the
page's own requests and WebSocket authenticate with the cookie (the Guard accepts
it). Every path here, the page included, needs the token or the cookie.

Hook for batch QA reports: `retouch-bridge batch` writes its reports into
`<cache_dir>/reports/` (HTML, JSON or CSV, with an optional folder of images per
report); `GET /v1/reports` lists them and the dashboard links to each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import bridge
from bridge.dashboard import logtail, settings_file
from bridge.dashboard.thumbs import ThumbnailCache, thumbnail_png
from bridge.errors import BridgeError, InvalidInput, InvalidParams, NotFound
from bridge.models.resident import resident_models
from bridge.server.security import COOKIE
from bridge.server.state import STATE, ServerState

STATIC_DIR = Path(__file__).with_name("static")
LOG_NAME = "bridge.log"  # what cli/serve.py's setup_logging writes
THUMB_SIDES = (64, 128, 160, 256, 384, 512)

log = logging.getLogger("bridge.dashboard")


@dataclass
class Dashboard:
    """Per-app state: when it started, the settings file as read at start, hooks."""

    started: float
    startup_defaults: dict[str, str]
    thumbs: ThumbnailCache = field(default_factory=ThumbnailCache)
    # Set by the tray app: brings its dashboard window to the front.
    show_window: Callable[[], None] | None = None


DASHBOARD = web.AppKey("dashboard", Dashboard)
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    st = app[STATE]
    try:
        saved = settings_file.read_file(st.settings.config_file)
    except InvalidParams:
        saved = {}
    defaults = {str(k): str(v) for k, v in (saved.get("default_models") or {}).items()}
    app[DASHBOARD] = Dashboard(started=time.time(), startup_defaults=defaults)
    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/", to_page)
    app.router.add_static("/dashboard/static", STATIC_DIR, show_index=False)
    app.add_routes(routes)


def _state(request: web.Request) -> ServerState:
    return request.app[STATE]


def _dash(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def to_page(request: web.Request) -> web.Response:
    return _redirect("/dashboard")


async def page(request: web.Request) -> web.StreamResponse:
    # The Guard has already checked the token (query, header or cookie).
    if "token" in request.query:
        log.info("dashboard opened from %s", request.headers.get("User-Agent", "?")[:80])
        resp = _redirect("/dashboard")
        resp.set_cookie(COOKIE, _state(request).token, httponly=True, samesite="Strict",
                        path="/")
        return resp
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    host = request.host
    return web.Response(text=html, content_type="text/html", headers={
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
            f"script-src 'self'; connect-src 'self' ws://{host}; frame-ancestors 'none'"),
    })


# -- system and queue -----------------------------------------------------------------
def process_memory() -> dict[str, int] | None:
    """This process's resident memory (Linux), else its peak where the OS tells it."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return {"rss": int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")}
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"peak_rss": peak if sys.platform == "darwin" else peak * 1024}
    except (ImportError, OSError):
        return None


def gpu_memory_now(device: dict[str, Any]) -> dict[str, int] | None:
    """Live free/total GPU memory, only once torch is loaded anyway (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None or device.get("kind") != "cuda":
        return device.get("gpu_memory")
    try:
        free, total = torch.cuda.mem_get_info()
        return {"free": free, "total": total, "allocated": torch.cuda.memory_allocated()}
    except Exception:
        return device.get("gpu_memory")


def queue_info(st: ServerState) -> dict[str, Any]:
    running = st.queue.running
    return {"paused": st.queue.paused, "counts": st.queue.counts(),
            "running": running.id if running else None, "limit": st.queue.limit}


@routes.get("/v1/system")
async def system(request: web.Request) -> web.Response:
    """Version, device, memory (system, process, GPU), folders and queue, for the dashboard."""
    from bridge.device import system_memory

    st = _state(request)
    try:
        device = await st.device_info()
    except Exception as e:  # a broken GPU driver must not take the dashboard down
        device = {"kind": "unknown", "name": "unknown", "error": f"{type(e).__name__}: {e}"}
    s = st.settings
    return web.json_response({
        "version": bridge.__version__,
        "protocol": bridge.PROTOCOL_VERSION,
        "pid": os.getpid(),
        "uptime_s": round(time.time() - _dash(request).started, 1),
        "url": f"http://{request.host}",
        "device": device,
        "memory": system_memory(),
        "gpu_memory": gpu_memory_now(device),
        "process": process_memory(),
        "memory_budget_mb": s.memory_budget_mb,
        "resident": resident_models().snapshot(),
        "paths": {"config_dir": str(s.config_dir), "models_dir": str(s.models_dir),
                  "cache_dir": str(s.cache_dir), "log_file": str(s.log_dir / LOG_NAME),
                  "reports_dir": str(reports_dir(st))},
        "queue": queue_info(st),
        "window": _dash(request).show_window is not None,
        "event_clients": st.hub.subscriber_count,
    })


@routes.get("/v1/queue")
async def queue_state(request: web.Request) -> web.Response:
    """Whether the queue is paused, job counts per state, the running job."""
    return web.json_response(queue_info(_state(request)))


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    st = _state(request)
    st.queue.set_paused(paused)
    st.hub.publish({"type": "queue", "paused": paused})
    return web.json_response(queue_info(st))


@routes.post("/v1/queue/pause")
async def pause_queue(request: web.Request) -> web.Response:
    """Pause: queued jobs wait, the running one finishes; new jobs are still accepted."""
    return await _set_paused(request, True)


@routes.post("/v1/queue/resume")
async def resume_queue(request: web.Request) -> web.Response:
    """Resume running queued jobs."""
    return await _set_paused(request, False)


# -- results ----------------------------------------------------------------------------
@routes.get("/v1/jobs/{id}/thumbnail")
async def job_thumbnail(request: web.Request) -> web.Response:
    """A small PNG of a finished job's primary layer (?size=64..512), else its latest preview."""
    try:
        side = int(request.query.get("size", "160"))
    except ValueError:
        side = 0
    if side not in THUMB_SIDES:
        raise InvalidParams(f"size must be one of {', '.join(map(str, THUMB_SIDES))}",
                            param="size")
    job = _state(request).queue.get(request.match_info["id"])
    dash = _dash(request)
    if job.state != "done":
        if job.preview is None:
            raise NotFound(f"job '{job.id}' is {job.state} and has no preview yet", state=job.state)
        return web.Response(body=job.preview, content_type="image/png",
                            headers={"Cache-Control": "no-store"})
    key = (job.id, side)
    data = dash.thumbs.get(key)
    if data is None:
        primary = getattr(job.result, "primary", None)
        if primary is None:
            raise NotFound(f"job '{job.id}' has no pixel result")
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, thumbnail_png, primary.image.pixels, side)
        dash.thumbs.put(key, data)
    return web.Response(body=data, content_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})


# -- log ----------------------------------------------------------------------------------
@routes.get("/v1/log")
async def log_tail(request: web.Request) -> web.Response:
    """The last lines of the bridge's log file (?lines=N, at most 2000)."""
    try:
        lines = int(request.query.get("lines", "200"))
    except ValueError:
        raise InvalidParams("lines must be a whole number", param="lines") from None
    path = _state(request).settings.log_dir / LOG_NAME
    loop = asyncio.get_running_loop()
    text = await loop.run_in_executor(None, logtail.tail, path, lines)
    return web.json_response({"path": str(path), "exists": path.exists(), "lines": text})


# -- settings -----------------------------------------------------------------------------
def _registry_facts(st: ServerState) -> tuple[tuple[str, ...] | None, dict[str, str] | None]:
    """Tasks and model id -> task from the model registry, or (None, None) without it."""
    try:
        from bridge.models.registry import TASKS

        models = {m["id"]: m["task"] for m in st.manager().states()}
        return tuple(TASKS), models
    except (ImportError, BridgeError) as e:  # no manager, or an unusable registry file
        log.warning("settings: model registry unavailable (%s); default models unchecked", e)
        return None, None


def _settings_body(st: ServerState, dash: Dashboard) -> dict[str, Any]:
    data = settings_file.read_file(st.settings.config_file)
    running = settings_file.running_values(st.settings, dash.startup_defaults)
    saved = settings_file.saved_values(st.settings, data)
    return {
        "config_file": str(st.settings.config_file),
        "running": running,
        "saved": saved,
        "pending_restart": [k for k in settings_file.EDITABLE if saved[k] != running[k]],
        "help": settings_file.HELP,
        # The port the next start uses (the running one unless another is saved).
        "warnings": settings_file.port_warnings(saved["port"]),
    }


@routes.get("/v1/settings")
async def get_settings(request: web.Request) -> web.Response:
    """Editable settings: running values, values saved in config.toml, which await a restart."""
    st = _state(request)
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, _settings_body, st, _dash(request))
    return web.json_response(body)


@routes.put("/v1/settings")
async def put_settings(request: web.Request) -> web.Response:
    """Save some settings to config.toml; the answer names those that need a restart."""
    st = _state(request)
    from bridge.server.transport import read_small_body

    body = await read_small_body(request)  # not aiohttp's json(): that reads --max-body-mb
    try:
        changes = json.loads(body)
    except ValueError:
        raise InvalidInput("send the settings as a JSON object") from None
    loop = asyncio.get_running_loop()

    def work() -> dict[str, Any]:
        tasks, models = _registry_facts(st)
        checked = settings_file.validate(changes, tasks, models)
        settings_file.save(st.settings.config_file, checked)
        body = _settings_body(st, _dash(request))
        body["changed"] = sorted(checked)
        return body

    body = await loop.run_in_executor(None, work)
    log.info(
        "settings saved to %s: %s (restart to apply: %s)", st.settings.config_file,
        ", ".join(body["changed"]), ", ".join(body["pending_restart"]) or "nothing")
    return web.json_response(body)


# -- batch QA reports ------------------------------------------------------------------------
def reports_dir(st: ServerState) -> Path:
    return st.settings.cache_dir / "reports"


def _list_reports(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        if p.is_file() and not p.name.startswith("."):
            stat = p.stat()
            out.append({"name": p.name, "size": stat.st_size, "modified": stat.st_mtime,
                        "url": f"/v1/reports/{p.name}"})
    return sorted(out, key=lambda r: -r["modified"])


@routes.get("/v1/reports")
async def list_reports(request: web.Request) -> web.Response:
    """Batch QA reports found in <cache_dir>/reports, newest first."""
    folder = reports_dir(_state(request))
    loop = asyncio.get_running_loop()
    reports = await loop.run_in_executor(None, _list_reports, folder)
    return web.json_response({"dir": str(folder), "reports": reports})


@routes.get(r"/v1/reports/{name:.+}")
async def get_report(request: web.Request) -> web.StreamResponse:
    """One report file (or a file its report links to, in a sub-folder)."""
    folder = reports_dir(_state(request)).resolve()
    try:
        target = (folder / request.match_info["name"]).resolve()
    except (ValueError, OSError):  # a NUL in the name, a symlink loop
        raise NotFound(f"no report '{request.match_info['name']}'") from None
    if not target.is_relative_to(folder) or not target.is_file():
        raise NotFound(f"no report '{request.match_info['name']}'")
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return web.FileResponse(target, headers={"Content-Type": ctype,
                                             "X-Content-Type-Options": "nosniff",
                                             "Cache-Control": "no-store"})


# -- the tray's window --------------------------------------------------------------------------
@routes.post("/v1/ui/show")
async def show_window(request: web.Request) -> web.Response:
    """Bring the tray app's dashboard window to the front (a second `tray` start asks this)."""
    hook = _dash(request).show_window
    if hook is None:
        raise NotFound("this bridge has no dashboard window (it runs as `serve`); open "
                       "/dashboard in a browser")
    await asyncio.get_running_loop().run_in_executor(None, hook)
    return web.json_response({"shown": True})
