"""The bridge server on its own thread and event loop, so the main thread can run a GUI.

Stopping is gentle: nothing new starts, waiting jobs are cancelled, the running job
gets a grace period to finish and is cancelled after it; model downloads are
cancelled; then the server closes its connections and every thread it made ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from aiohttp import web

import bridge
from bridge.config import Settings
from bridge.errors import BridgeError
from bridge.server.app import bound_url, create_app
from bridge.server.state import STATE, ServerState

log = logging.getLogger("bridge.tray")


class BridgeThread:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.state: ServerState = self.app[STATE]
        self.url = ""
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bridge-server")

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> str:
        """Bind and serve; the URL once listening. Raises BridgeError if it cannot."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise BridgeError("the bridge server did not start in time")
        if self.error is not None:
            self._thread.join(5)
            raise self.error
        return self.url

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to start() or logged; never lost in a thread
            self.error = self.error or e
            log.exception("bridge server stopped with an error")
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self) -> None:
        s = self.settings
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, s.host, s.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            self.error = BridgeError(
                f"cannot listen on {s.host}:{s.port}: {e.strerror}; another program uses "
                "this port (`retouch-bridge tray --port N` picks another)")
            return
        self.url = bound_url(s.host, runner)
        print(f"Retouch Bridge {bridge.__version__} listening on {self.url}", flush=True)
        log.info("tray: bridge listening on %s", self.url)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            log.info("tray: closing the server")
            await runner.cleanup()
            log.info("tray: server closed")

    def stop(self, grace_s: float = 20.0, timeout: float = 30.0) -> dict[str, Any]:
        """Finish or cancel the work, close the server, join its thread. What happened."""
        queue = self.state.queue
        queue.set_paused(True)  # nothing new starts while we wind down
        waiting = [j for j in queue.jobs() if j.state == "queued"]
        for job in waiting:
            queue.cancel(job.id)
        running = queue.running
        finished_in_grace = None
        if running is not None:
            log.info("tray: quitting; letting job %s (%s) finish for up to %.0f s",
                     running.id, running.op, grace_s)
            finished_in_grace = running.done.wait(grace_s)
            if not finished_in_grace:
                log.info("tray: cancelling job %s", running.id)
                queue.cancel(running.id)
                running.done.wait(10)
        pulls = self.state.cancel_pulls()
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed on its own meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        log.info("tray: server stopped")
        return {"cancelled_waiting": [j.id for j in waiting],
                "running": running.id if running else None,
                "running_state": running.state if running else None,
                "finished_in_grace": finished_in_grace,
                "cancelled_downloads": pulls,
                "stopped": not self._thread.is_alive()}

