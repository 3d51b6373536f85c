"""Request bodies held in memory, counted across the whole server.

Each request's body is counted against `--max-body-mb` as it streams in; this counts
what all requests together hold in memory while they are being read (image, mask and
text parts; a PSD streams to a file, so only its chunk in hand counts). A request
that would take the total over `--max-inflight-mb` waits up to BODY_WAIT_S for others
to finish, then gets 503 `busy` with Retry-After: never a crash, and the server keeps
answering. A request alone is always let through, so one upload up to `--max-body-mb`
works even where that is more than the in-flight limit.

Bytes are given back when the request ends. A queued job keeps its decoded image
after that; the queue limit bounds how many do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.config import Settings
from bridge.errors import ServerBusy

BODY_WAIT_S = 2.0
RETRY_AFTER_S = 2
FLOOR_MB = 1024


def inflight_limit_mb(settings: Settings) -> int:
    """The setting, or: twice the largest body, at least 1 GB, at most a quarter of RAM."""
    return settings.max_inflight_mb if settings.max_inflight_mb > 0 else auto_limit_mb(settings)


def queued_limit_mb(settings: Settings) -> int:
    """Decoded images waiting jobs may hold together: the setting, or as for bodies."""
    return settings.queue_memory_mb if settings.queue_memory_mb > 0 else auto_limit_mb(settings)


def auto_limit_mb(settings: Settings) -> int:
    from bridge.device import system_memory

    wanted = max(FLOOR_MB, 2 * settings.max_body_mb)
    memory = system_memory()
    if memory and memory.get("total"):
        wanted = min(wanted, max(1, memory["total"] // 4 >> 20))
    return wanted


class Share:
    """What one request holds, and until when it may wait for more (all its waits together)."""

    __slots__ = ("deadline", "held")

    def __init__(self) -> None:
        self.held = 0
        self.deadline: float | None = None


class BodyMemory:
    def __init__(self, limit: int, wait_s: float = BODY_WAIT_S) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.held = 0
        self._freed = asyncio.Event()

    def _fits(self, share: Share, n: int) -> bool:
        return self.held + n <= self.limit or self.held == share.held  # alone: let it be

    async def take(self, share: Share, n: int) -> None:
        loop = asyncio.get_running_loop()
        while not self._fits(share, n):
            if share.deadline is None:
                share.deadline = loop.time() + self.wait_s
            remaining = share.deadline - loop.time()
            if remaining <= 0:
                raise ServerBusy(
                    f"the bridge is already holding {self.held >> 20} MB of uploads in memory "
                    f"(the limit is {self.limit >> 20} MB, --max-inflight-mb); try again "
                    "shortly", retry_after=RETRY_AFTER_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), remaining)
        self.held += n
        share.held += n

    def release(self, share: Share) -> None:
        if share.held:
            self.held -= share.held
            share.held = 0
            freed, self._freed = self._freed, asyncio.Event()
            freed.set()  # wakes every waiter; each checks whether it fits now


MEMORY = web.AppKey("body_memory", BodyMemory)
# aiohttp >= 3.12 wants typed keys for a request's storage; older ones take a string.
SHARE = web.RequestKey("body_share", Share) if hasattr(web, "RequestKey") else "rb_body_share"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def give_back_body_memory(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever a request held is given back when it ends, however it ends."""
    share = Share()
    request[SHARE] = share
    try:
        return await handler(request)
    finally:
        memory = request.app.get(MEMORY)
        if memory is not None:
            memory.release(share)
