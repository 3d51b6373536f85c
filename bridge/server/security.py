"""Who may talk to the bridge: Host, Origin and pairing-token checks, and JSON errors.

Order matters: the Host check comes first (DNS rebinding: a page on
evil.example whose name resolves to 127.0.0.1 arrives with Host evil.example),
then Origin (a page in the user's browser), then the token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from fnmatch import fnmatchcase

from aiohttp import web

from bridge.errors import BridgeError, disk_full, is_disk_full, is_out_of_memory
from bridge.net import is_ip_literal, is_loopback
from bridge.pairing import token_matches

log = logging.getLogger("bridge.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = frozenset({"/v1/health"})
COOKIE = "rb_token"
# What the hosts send: Lightroom's LrHttp and native clients send no Origin; UXP
# plugins send none or a uxp/file scheme; browsers send their page's origin.
HOST_ORIGINS = ("null", "uxp://*", "file://*")


def error_response(status: int, code: str, message: str, **details: object) -> web.Response:
    body = BridgeError(message, **details).to_json()
    body["error"]["code"] = code  # type: ignore[index]
    headers = {}
    if "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
    return web.json_response(body, status=status, headers=headers)


def host_name(host_header: str) -> str:
    """The name part of a Host header: 'localhost:7847' -> 'localhost', '[::1]:1' -> '::1'."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def listening_port(request: web.Request) -> int:
    """The port this connection came in on, read from the server's own socket.

    Never from the Host header: the client writes that, and a relay would simply pass
    on the one it was sent.
    """
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the connection closed before its port was known")
    sockname = transport.get_extra_info("sockname")
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        raise RuntimeError(f"not a TCP connection (socket name {sockname!r}): no port to sign")
    return int(sockname[1])


class Guard:
    """`ip_literals`: also accept a Host that is any IP address (the user bound 0.0.0.0 or
    ::, so the machine answers on addresses we cannot list). DNS rebinding needs a host
    *name* the attacker's DNS resolves; an address in the Host header names no one's DNS."""

    def __init__(self, token: str, extra_hosts: Iterable[str] = (),
                 extra_origins: Iterable[str] = (), ip_literals: bool = False) -> None:
        self.token = token
        self.extra_hosts = {h.lower() for h in extra_hosts}
        self.ip_literals = ip_literals
        self.origins = (*HOST_ORIGINS, *extra_origins)

    @staticmethod
    def own_origins(request: web.Request) -> tuple[str, ...]:
        """The dashboard's origins: on the port actually bound (also when started on port 0)."""
        port = listening_port(request)
        return tuple(f"http://{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]"))

    def host_ok(self, request: web.Request) -> bool:
        name = host_name(request.headers.get("Host", "")).lower()
        return (is_loopback(name) or name in self.extra_hosts
                or (self.ip_literals and is_ip_literal(name)))

    def origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            # A browser always says where a cross-site request comes from.
            return request.headers.get("Sec-Fetch-Site", "none") in ("none", "same-origin")
        if origin == "null" and request.headers.get("Sec-Fetch-Site") == "cross-site":
            return False  # a sandboxed iframe on some web page
        return (origin in self.own_origins(request)
                or any(fnmatchcase(origin, pattern) for pattern in self.origins))

    def offered_token(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        # Browsers cannot set headers on WebSockets or on a link to the dashboard.
        return request.query.get("token") or request.cookies.get(COOKIE)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.host_ok(request):
            return error_response(
                403, "bad_host",
                f"Host '{request.headers.get('Host', '')}' is not this machine; the bridge "
                "only answers requests addressed to 127.0.0.1 or localhost"
                + (" or to an IP address" if self.ip_literals else ""),
            )
        if not self.origin_ok(request):
            return error_response(
                403, "bad_origin",
                f"requests from origin '{request.headers.get('Origin', '(cross-site)')}' are "
                "not allowed; add it with --allow-origin if you trust it",
            )
        if request.path not in PUBLIC_PATHS and not token_matches(
            self.token, self.offered_token(request)
        ):
            return error_response(
                401, "unauthorized",
                "missing or wrong pairing token: send 'Authorization: Bearer <token>'; "
                "`retouch-bridge token` prints it",
            )
        return await handler(request)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal and failure as {"error": {"code", "message"}}: never an HTML page."""
    try:
        return await handler(request)
    except BridgeError as e:
        return error_response(e.status, e.code, e.message, **e.details)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            e.status, "http_error")
        return error_response(e.status, code, e.reason or e.text or "request refused")
    except (ConnectionResetError, BrokenPipeError) as e:
        # An everyday event (a cancelled upload, a closed laptop), not a server error:
        # one line in the log, and an answer nobody will read instead of a traceback.
        log.info("client went away during %s %s: %s", request.method, request.path, e)
        return error_response(400, "client_gone", "the client disconnected")
    except Exception as e:
        if is_out_of_memory(e):
            log.warning("%s %s ran out of memory: %s", request.method, request.path, e)
            return error_response(507, "out_of_memory", "not enough memory for this request")
        if is_disk_full(e):
            log.warning("%s %s: %s", request.method, request.path, e)
            full = disk_full(e)
            return error_response(full.status, full.code, full.message)
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", f"{type(e).__name__}: {e}")
