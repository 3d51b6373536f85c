"""The pairing token: created once, readable by its owner only."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from bridge.private_dirs import make_dir


def load_or_create_token(path: Path) -> str:
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            _restrict(path)
            return token
    make_dir(path.parent)
    token = secrets.token_urlsafe(32)
    # Created with 0600 from the start, so no other user can read it even briefly.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def _restrict(path: Path) -> None:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def token_matches(expected: str, offered: str | None) -> bool:
    if not offered:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), offered.encode("utf-8"))
