"""What one running server holds: settings, token, the job queue, the event hub, models."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import threading
import time
from typing import Any

from aiohttp import web

from bridge.config import Settings
from bridge.imaging.image import Image
from bridge.ops.base import CancelToken, OpContext
from bridge.server.events import EventHub
from bridge.server.inflight import queued_limit_mb
from bridge.server.jobs import FINAL_STATES, Job, JobQueue

log = logging.getLogger("bridge.server")

dumps = functools.partial(json.dumps, default=str)
PREVIEW_SIDE = 512


class ServerState:
    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.hub = EventHub()
        self.queue = JobQueue(self._context_for, settings.queue_limit, settings.result_ttl_s,
                              self._on_event, bytes_limit=queued_limit_mb(settings) << 20)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._manager: Any = None
        self._manager_lock = threading.Lock()
        self._device: dict[str, Any] | None = None
        self._pulls: dict[str, CancelToken] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.hub.bind(loop)

    # -- models ------------------------------------------------------------------
    def manager(self) -> Any:
        """The model manager, created on first use (it never imports torch itself)."""
        with self._manager_lock:
            if self._manager is None:
                from bridge.models.manager import ModelManager

                self._manager = ModelManager(self.settings)
            return self._manager

    async def model_states(self) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        states = await loop.run_in_executor(None, lambda: self.manager().states())
        for s in states:
            if s.get("id") in self._pulls and s.get("state") == "missing":
                s["state"] = "downloading"
        return states

    async def device_info(self) -> dict[str, Any]:
        """The device as torch sees it once torch is loaded (an op needed it); before
        that, what is known without importing it (`probed: false`)."""
        from bridge.device import device_facts, device_info, torch_loaded

        if self._device is not None and self._device.get("probed"):
            return self._device
        probe = device_info if torch_loaded() else device_facts
        if self._device is None or probe is device_info:
            loop = asyncio.get_running_loop()
            self._device = await loop.run_in_executor(None, probe, self.settings.device)
        return self._device

    async def start_pull(self, model_id: str) -> dict[str, Any]:
        manager = self.manager()
        loop = asyncio.get_running_loop()
        # is_usable() hashes a file changed on disk since it was checked: a damaged one is
        # pulled again. Nothing awaits between the check of _pulls and the registration
        # below, so two clicks never start two downloads of one model.
        usable = await loop.run_in_executor(None, manager.is_usable, model_id)
        if model_id in self._pulls:
            return {"model": model_id, "state": "downloading"}
        if usable:
            return {"model": model_id, "state": "installed"}
        token = CancelToken()
        self._pulls[model_id] = token

        def progress(received: int, total: int | None) -> None:
            self.hub.publish({"type": "model-progress", "model": model_id, "state": "downloading",
                              "received": received, "total": total})

        def pull() -> None:
            try:
                manager.pull(model_id, progress=progress, cancel=token)
                self.hub.publish({"type": "model-progress", "model": model_id,
                                  "state": "installed", "received": None, "total": None})
            except Exception as e:
                error = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
                log.warning("pull of %s failed: %s", model_id, error)
                self.hub.publish({"type": "model-progress", "model": model_id,
                                  "state": "failed", "error": error})
            finally:
                self._pulls.pop(model_id, None)

        threading.Thread(target=pull, name=f"pull-{model_id}", daemon=True).start()
        return {"model": model_id, "state": "downloading"}

    def cancel_pulls(self, timeout: float = 10.0) -> list[str]:
        """Stop every running download (Quit); returns the models that were downloading."""
        names = list(self._pulls)
        threads = [t for t in threading.enumerate() if t.name.startswith("pull-")]
        for token in list(self._pulls.values()):
            token.cancel()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return names

    # -- jobs ----------------------------------------------------------------------
    def _context_for(self, job: Job) -> OpContext:
        def progress(fraction: float, message: str) -> None:
            self.queue.report_progress(job, fraction, message)

        def preview(image: Image) -> None:
            job.preview = encode_preview(image)
            self.hub.publish({"type": "preview", "job": job.id,
                              "url": f"/v1/jobs/{job.id}/preview"})

        return OpContext(progress, job.cancel_token, preview, self.manager,
                         max_pixels=self.settings.max_pixels)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.hub.publish(event)
        if event["type"] in FINAL_STATES and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake, event["job"])

    def _wake(self, job_id: str) -> None:
        for fut in self._waiters.pop(job_id, []):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, job: Job) -> None:
        """Until the job reaches a final state, without holding a thread."""
        if job.state in FINAL_STATES:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job.id, []).append(fut)
        if job.state in FINAL_STATES:  # it finished between the check and the wait
            self._wake(job.id)
        await fut


def encode_preview(image: Image) -> bytes:
    from PIL import Image as PILImage

    from bridge.imaging.depth import to_uint8

    pixels = to_uint8(image.pixels)
    pil = PILImage.fromarray(pixels.squeeze(-1) if pixels.shape[2] == 1 else pixels)
    pil.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return buf.getvalue()


STATE = web.AppKey("state", ServerState)
