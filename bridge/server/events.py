"""Event hub: job and model events fanned out to WebSocket subscribers.

Publishing is safe from any thread (the worker, a download thread); delivery
happens on the event loop, each connection through its own bounded queue so a
slow client cannot hold up the others or grow memory without limit. A client that
falls behind loses its oldest progress and preview events, never a final state; one
whose queue holds nothing but final states reads nothing at all and is disconnected
(close code 1013): it reconnects and resynchronises with GET /v1/jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger("bridge.events")

# Progress events closer together than this are coalesced (the last one wins).
PROGRESS_INTERVAL_S = 0.05
QUEUE_LIMIT = 1000


def droppable(event: dict[str, Any]) -> bool:
    """Events a later one of the same kind supersedes; final states are never among them."""
    kind = event.get("type")
    return kind in ("progress", "preview") or (
        kind == "model-progress" and event.get("state") == "downloading")


class Subscriber:
    def __init__(self, ws: web.WebSocketResponse | None) -> None:
        self.ws = ws
        self.jobs: set[str] | None = None  # None: every job
        self.pending: deque[dict[str, Any]] = deque()
        self.ready = asyncio.Event()
        self.overflowed = False

    def wants(self, event: dict[str, Any]) -> bool:
        job = event.get("job")
        return self.jobs is None or job is None or job in self.jobs

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed:
            return
        if len(self.pending) >= QUEUE_LIMIT and not self._drop_oldest_progress():
            # Only final states queued: this client reads nothing. Cut it off rather
            # than hold its events forever; it resynchronises when it reconnects.
            self.overflowed = True
            self.pending.clear()
        else:
            self.pending.append(event)
        self.ready.set()

    def _drop_oldest_progress(self) -> bool:
        for i, old in enumerate(self.pending):
            if droppable(old):
                del self.pending[i]
                return True
        return False


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
        assert sub.ws is not None
        while True:
            await sub.ready.wait()
            sub.ready.clear()
            if sub.overflowed:
                await sub.ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                                   message=b"too far behind: reconnect, then GET /v1/jobs")
                return
            while sub.pending and not sub.overflowed:
                event = sub.pending.popleft()
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
