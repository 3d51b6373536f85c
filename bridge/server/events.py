"""Event hub: job and model events fanned out to WebSocket subscribers.

Publishing is safe from any thread (the worker, a download thread); delivery
happens on the event loop, each connection through its own bounded queue so a
slow client cannot hold up the others or grow memory without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("bridge.events")

# Progress events closer together than this are coalesced (the last one wins).
PROGRESS_INTERVAL_S = 0.05
QUEUE_LIMIT = 1000


class Subscriber:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.jobs: set[str] | None = None  # None: every job
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)

    def wants(self, event: dict[str, Any]) -> bool:
        job = event.get("job")
        return self.jobs is None or job is None or job in self.jobs

    def offer(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            # Drop the oldest progress rather than final states: clients need those.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)


class EventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscriber] = set()
        self._last_progress: dict[str, float] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: dict[str, Any]) -> None:
        """Thread-safe: hand the event to the loop."""
        if self._loop is None or self._loop.is_closed():
            return
        coalesce = event.get("type") == "progress" or (
            event.get("type") == "model-progress" and event.get("state") == "downloading")
        if coalesce:
            key = f"{event.get('type')}:{event.get('job') or event.get('model')}"
            now = time.monotonic()
            if now - self._last_progress.get(key, 0.0) < PROGRESS_INTERVAL_S:
                return
            self._last_progress[key] = now
        else:  # a final state always goes out, and the next progress starts fresh
            key = (f"model-progress:{event.get('model')}" if event.get("type") == "model-progress"
                   else f"progress:{event.get('job')}")
            self._last_progress.pop(key, None)
        event = {**event, "time": time.time()}
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            if sub.wants(event):
                sub.offer(event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        sub = Subscriber(ws)
        self._subscribers.add(sub)
        sender = asyncio.create_task(self._send_loop(sub))
        try:
            await sub.ws.send_json({"type": "hello", "time": time.time()})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_message(sub, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._subscribers.discard(sub)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    def _on_message(self, sub: Subscriber, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            sub.offer({"type": "error", "message": "messages must be JSON"})
            return
        if isinstance(msg, dict) and msg.get("type") == "subscribe":
            jobs = msg.get("jobs")
            sub.jobs = set(map(str, jobs)) if isinstance(jobs, list) else None
            sub.offer({"type": "subscribed", "jobs": sorted(sub.jobs) if sub.jobs else None})

    async def _send_loop(self, sub: Subscriber) -> None:
        while True:
            event = await sub.queue.get()
            if sub.ws.closed:
                return
            try:
                await sub.ws.send_json(event)
            except (ConnectionError, RuntimeError):
                return

    async def close_all(self) -> None:
        for sub in list(self._subscribers):
            with contextlib.suppress(Exception):
                await sub.ws.close()
