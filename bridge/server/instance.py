"""Is a bridge already running on this port? A second start says so instead of failing.

"Ours" needs proof: the running server must answer a fresh challenge with the HMAC of
our pairing token over the port we asked on (bridge/identity.py). Something that only
looks like a bridge, or relays the challenge to a bridge on another port, is reported as
such, and is never sent the token.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from bridge import identity


@dataclass(frozen=True)
class Found:
    """A server on the port that answers health like a bridge."""

    url: str
    port: int
    health: dict[str, Any]
    ours: bool  # it proved it holds our pairing token


def probe_address(host: str) -> str:
    """Where to knock: a wildcard bind (0.0.0.0, ::) is reached through loopback."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host
    if addr.is_unspecified:
        return "::1" if addr.version == 6 else "127.0.0.1"
    return host


def running_bridge(host: str, port: int, token: str, timeout: float = 1.5) -> Found | None:
    """What answers health on host:port, or None when nothing bridge-like does.

    Anything that is not bridge-like (another program, a half-dead process) gives None,
    so the caller reports a plain port conflict. A bridge-like answer without a valid
    proof for `token` is Found(ours=False): an impostor, or a bridge with another token.
    """
    if not 0 < port < 65536:
        return None  # port 0 asks for any free port: nothing can already be running there
    address = probe_address(host)
    host_header = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    nonce = identity.new_nonce()
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", f"/v1/health?challenge={nonce}", headers={"Host": host_header})
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
    # The proof names the port it was made on: a relay to a bridge elsewhere fails here.
    ours = identity.proof_matches(token, port, nonce, body.get("proof"))
    return Found(url=f"http://{host_header}", port=port, health=body, ours=ours)


def describe(found: Found) -> str:
    h = found.health
    return (f"Retouch Bridge {h.get('version', '?')} is already running on {found.url} "
            f"(protocol {h.get('protocol')}); not starting a second one")


def describe_other(found: Found) -> str:
    return (f"port {found.port} is taken by something else: {found.url} answers like Retouch "
            "Bridge but could not prove it holds this bridge's pairing token, so it is another "
            "program, or another bridge running with a different token (another configuration "
            "folder). Nothing was sent to it. Quit it, or start this bridge on another port "
            "with --port N.")
