"""Noticing that an installed model file changed on disk since its sha256 was checked,
without hashing it again on every load.

When a file's bytes are checked (a pull, an import, `verify`, or a re-hash at load) its
size and modification time (`stat_of`) are recorded next to its sha256 in the manager's
manifest. Before a model is used the manager compares the file's present stat with that
record: equal, nothing more is done (one `stat` call); different, or never recorded,
the file is hashed again (`sha256_of`, streamed) and compared with the recorded sha256.

Hashes are cached per process by (path, size, mtime_ns), so a large file whose record
cannot be updated (a read-only models folder) is still hashed once, not at every load.

What this cannot see: bytes changed with the size and mtime put back exactly (bit rot
under the file system, or a tool restoring timestamps). `retouch-bridge models verify`
hashes every file regardless and finds those.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_cache: dict[tuple[str, int, int], str] = {}
_cache_lock = threading.Lock()
_path_locks: dict[str, threading.Lock] = {}


def stat_of(path: Path) -> dict[str, int]:
    """What is recorded of a checked file: its size and mtime in nanoseconds."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def unchanged(path: Path, recorded: Any) -> bool:
    """The file's size and mtime are the recorded ones (False when nothing is recorded or
    the file cannot be read)."""
    if not isinstance(recorded, dict):
        return False
    try:
        now = stat_of(path)
    except OSError:
        return False
    return now["size"] == recorded.get("size") and now["mtime_ns"] == recorded.get("mtime_ns")


def hash_file(path: Path) -> str:
    """The file's sha256, streamed (the pull code's own hasher)."""
    from bridge.models.folders import hash_file as streamed_sha256

    return streamed_sha256(path)[0]


def sha256_of(path: Path) -> str:
    """The file's sha256, hashed at most once per process for one (size, mtime)."""
    key_path = str(path)
    with _cache_lock:
        lock = _path_locks.setdefault(key_path, threading.Lock())
    with lock:  # two jobs needing the same changed file hash it once
        before = stat_of(path)
        key = (key_path, before["size"], before["mtime_ns"])
        with _cache_lock:
            found = _cache.get(key)
        if found is not None:
            return found
        sha = hash_file(path)
        if stat_of(path) == before:  # not written to while it was read
            with _cache_lock:
                _cache[key] = sha
        return sha


def forget(path: Path) -> None:
    """Drop cached hashes of a path (a pull or import put new bytes there)."""
    with _cache_lock:
        for key in [k for k in _cache if Path(k[0]) == path or Path(k[0]).is_relative_to(path)]:
            del _cache[key]
