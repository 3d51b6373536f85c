"""Small network facts shared by the server and the downloader."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """True for localhost and any loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str | None) -> bool:
    """True for the any-address binds, 0.0.0.0 and :: (every interface of the machine)."""
    try:
        return bool(host) and ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def is_ip_literal(name: str) -> bool:
    """True for an IPv4 or IPv6 address written out (a zone like %eth0 allowed), not a name."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
