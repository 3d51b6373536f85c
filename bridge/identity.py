"""Proof that the server on the port is this bridge, before a client sends it the token.

A client sends a fresh random nonce to `GET /v1/health?challenge=<nonce>` (no token);
the bridge answers `proof` = hex HMAC-SHA256(key=token, msg=CONTEXT + port + ":" + nonce),
where port is the one its own socket listens on. Only a server holding the same pairing
token can answer, and the token itself never travels. Naming the port stops a relay: a
program on port A that forwards the challenge to a real bridge on port B gets a proof for
B, which a client that connected to A refuses. The context string keeps these MACs from
ever meaning anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

CONTEXT = "retouch-bridge-identity-v2:"
NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
NONCE_RULE = "16 to 128 characters of A-Z, a-z, 0-9, '_' and '-'"


def valid_nonce(nonce: str) -> bool:
    return NONCE.fullmatch(nonce) is not None


def new_nonce() -> str:
    """32 URL-safe characters (192 random bits), fresh for every check."""
    return secrets.token_urlsafe(24)


def message(port: int, nonce: str) -> bytes:
    """What is signed: the port in plain decimal (no sign, no leading zeros), then the nonce."""
    if not 0 < port < 65536:
        raise ValueError(f"not a TCP port: {port}")
    return f"{CONTEXT}{port:d}:{nonce}".encode()


def proof(token: str, port: int, nonce: str) -> str:
    return hmac.new(token.encode("utf-8"), message(port, nonce), hashlib.sha256).hexdigest()


def proof_matches(token: str, port: int, nonce: str, offered: object) -> bool:
    """Constant-time check of a server's answer; anything but a string is a mismatch."""
    if not isinstance(offered, str):
        return False
    return hmac.compare_digest(proof(token, port, nonce).encode("ascii"), offered.encode("utf-8"))
