"""What the kernel says about a process: memory (VmRSS, VmHWM) and open files (Linux /proc)."""

from __future__ import annotations

import os
from pathlib import Path

HAS_PROC = Path("/proc/self/status").exists()


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak resident set since start), in kB; {} where /proc is absent."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return out


def open_files(pid: int) -> list[str]:
    """Paths of the regular files the process holds open (sockets and pipes left out)."""
    found = []
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return []
    for fd in entries:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/"):
            found.append(target)
    return found
