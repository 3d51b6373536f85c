"""A non-blocking, exclusive, per-process lock on an open file (released when it closes)."""

from __future__ import annotations

import os
from typing import IO, Any


def try_lock(fh: IO[Any]) -> bool:
    """Lock `fh` for this process; False if another process holds it."""
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
