"""Application factory and the runner behind `retouch-bridge serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import bridge
from bridge.config import Settings
from bridge.net import is_loopback, is_wildcard
from bridge.pairing import load_or_create_token
from bridge.private_dirs import secure_folders
from bridge.server import routes
from bridge.server.inflight import MEMORY, BodyMemory, give_back_body_memory, inflight_limit_mb
from bridge.server.openapi import openapi
from bridge.server.security import Guard, json_errors
from bridge.server.state import STATE, ServerState

log = logging.getLogger("bridge.server")

EXPIRY_INTERVAL_S = 30.0
# Extra route modules (PSD, dashboard, recipes) register here by exposing `setup(app)`.
ROUTE_MODULES: tuple[str, ...] = (
    "bridge.psd.routes",
    "bridge.recipes.routes",
    "bridge.dashboard.routes",
)


def create_app(settings: Settings, token: str | None = None) -> web.Application:
    secure_folders(settings)  # before the token file is read or made in the config folder
    token = token or load_or_create_token(settings.token_file)
    st = ServerState(settings, token)
    guard = Guard(token, extra_origins=settings.allow_origins,
                  extra_hosts=() if is_loopback(settings.host) else (settings.host,),
                  ip_literals=is_wildcard(settings.host))
    # aiohttp's own body limit applies to request.read()/post(); multipart streams are
    # counted by transport.BodyBudget against the same setting.
    app = web.Application(middlewares=[json_errors, guard.middleware, give_back_body_memory],
                          client_max_size=settings.max_body_mb << 20)
    app[STATE] = st
    app[MEMORY] = BodyMemory(inflight_limit_mb(settings) << 20)
    app.add_routes(routes.routes)
    app.router.add_get("/v1/openapi.json", openapi)
    for name in ROUTE_MODULES:
        __import__(name, fromlist=["setup"]).setup(app)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_event_streams)
    return app


def bound_url(host: str, runner: web.AppRunner) -> str:
    """The URL clients use, with the port the socket really got (`--port 0`: any free one)."""
    port = runner.addresses[0][1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _close_event_streams(app: web.Application) -> None:
    # A graceful shutdown waits for open handlers, and a WebSocket never ends by
    # itself: without this every stop with a dashboard open waits out the timeout.
    await app[STATE].hub.close_all()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
    st.bind(asyncio.get_running_loop())
    st.queue.start()
    expiry = asyncio.create_task(_expire_forever(st))
    yield
    expiry.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await expiry
    await asyncio.get_running_loop().run_in_executor(None, st.queue.stop)


async def _expire_forever(st: ServerState) -> None:
    while True:
        await asyncio.sleep(EXPIRY_INTERVAL_S)
        st.queue.expire()


def serve(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM. Prints one 'listening on URL' line once the socket is bound."""
    if not is_loopback(settings.host):
        print(
            "\n" + "!" * 72 + f"\nWARNING: binding to {settings.host}: other machines on the "
            "network can reach\nthe bridge. Anyone with the pairing token can run jobs. Use "
            "--host 127.0.0.1\nunless you know you need this.\n" + "!" * 72 + "\n",
            file=sys.stderr, flush=True,
        )
    asyncio.run(_serve(settings, on_ready))


async def _serve(settings: Settings, on_ready: Callable[[str], None] | None) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        from bridge.errors import BridgeError

        raise BridgeError(
            f"cannot listen on {settings.host}:{settings.port}: {e.strerror}; is another bridge "
            "running? (`retouch-bridge serve --port N` picks another port)") from None
    url = bound_url(settings.host, runner)
    print(f"Retouch Bridge {bridge.__version__} listening on {url}", flush=True)
    if on_ready:
        on_ready(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("Retouch Bridge stopping", flush=True)
        await runner.cleanup()
