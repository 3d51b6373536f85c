"""The last lines of the bridge's log, read from the end so a large log costs nothing."""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 64 * 1024
MAX_LINES = 2000


def tail(path: Path, lines: int) -> list[str]:
    """Up to `lines` complete last lines (without newlines); [] when there is no log yet."""
    lines = max(1, min(lines, MAX_LINES))
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        pos, data = end, b""
        # One line more than asked: the first one read is usually cut in half.
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    text = data.decode("utf-8", errors="replace").splitlines()
    if pos > 0 and text:
        text = text[1:]
    return text[-lines:]
