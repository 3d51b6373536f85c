"""Is a bridge already running on this port? A second start says so instead of failing."""

from __future__ import annotations

import http.client
import ipaddress
import json
from typing import Any


def probe_address(host: str) -> str:
    """Where to knock: a wildcard bind (0.0.0.0, ::) is reached through loopback."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host
    if addr.is_unspecified:
        return "::1" if addr.version == 6 else "127.0.0.1"
    return host


def running_bridge(host: str, port: int, timeout: float = 1.5) -> dict[str, Any] | None:
    """The health answer of the bridge on host:port, or None when nothing of ours answers.

    Anything else on the port (another program, a half-dead process) gives None, so the
    caller reports a plain port conflict instead of pretending a bridge runs there.
    """
    address = probe_address(host)
    host_header = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/v1/health", headers={"Host": host_header})
        resp = conn.getresponse()
        if resp.status != 200:
            return None
        body = json.loads(resp.read(4096))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if not isinstance(body, dict) or body.get("status") != "ok" or "protocol" not in body:
        return None
    return {**body, "url": f"http://{host_header}"}


def describe(found: dict[str, Any]) -> str:
    return (f"Retouch Bridge {found.get('version', '?')} is already running on {found['url']} "
            f"(protocol {found.get('protocol')}); not starting a second one")
