"""Folders for a server's job files, and the sweep of those a killed server left.

Jobs that work on files (PSD uploads and results) keep them in a folder of their
own, `<cache_dir>/jobs/<prefix>-<run>-<random>`. A job frees its folder when it ends,
and the server frees what is left when it stops; a server killed outright (SIGKILL,
a crash, a power cut) frees nothing. So from its first job folder on, a server holds
a lock on `<cache_dir>/job-owners/<run>.lock` for as long as it runs, and at start-up
deletes every job folder whose run's lock can be taken (or has no lock file): those
belong to a server that is gone. Two servers sharing a cache folder (the tray app and
`serve` on another port) never sweep each other's files: a live server's lock cannot
be taken. Folders whose name does not follow this pattern are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

from bridge.file_lock import try_lock
from bridge.private_dirs import make_dir

log = logging.getLogger("bridge.server")

_FOLDER = re.compile(r"[a-z]+-(r[0-9a-f]{12})-[0-9a-f]{32}")


def _try_lock(path: Path) -> IO[Any] | None:
    """An open file holding an exclusive lock on `path`, or None if another process has it."""
    try:
        fh = path.open("a+")
    except OSError:
        return None
    if not try_lock(fh):
        fh.close()
        return None
    return fh


class Scratch:
    def __init__(self, cache_dir: Path) -> None:
        self.jobs = cache_dir / "jobs"
        self.owners = cache_dir / "job-owners"
        self.run = "r" + uuid.uuid4().hex[:12]
        self._lock: IO[Any] | None = None

    def folder(self, prefix: str) -> Path:
        """A new, empty folder for one job."""
        if self._lock is None:
            make_dir(self.owners)
            self._lock = _try_lock(self.owners / f"{self.run}.lock")
        path = self.jobs / f"{prefix}-{self.run}-{uuid.uuid4().hex}"
        make_dir(path)  # owner-only: PSD uploads and results wait here
        return path

    def sweep(self) -> int:
        """Delete the job folders of servers that are gone; returns how many."""
        if not self.jobs.is_dir():
            return 0
        alive: dict[str, bool] = {self.run: True}
        swept = 0
        for child in self.jobs.iterdir():
            found = _FOLDER.fullmatch(child.name)
            if found is None or not child.is_dir():
                continue
            run = found.group(1)
            if run not in alive:
                alive[run] = self._owner_alive(run)
            if not alive[run]:
                shutil.rmtree(child, ignore_errors=True)
                swept += 1
        for run, live in alive.items():
            if not live:
                with contextlib.suppress(OSError):
                    (self.owners / f"{run}.lock").unlink()
        if swept:
            log.info("removed %d job folder(s) left by a bridge that stopped without "
                     "cleaning up", swept)
        return swept

    def _owner_alive(self, run: str) -> bool:
        lock_file = self.owners / f"{run}.lock"
        if not lock_file.exists():
            return False
        lock = _try_lock(lock_file)
        if lock is None:
            return True
        lock.close()  # before deleting it: Windows cannot delete an open file
        return False

    def close(self) -> None:
        """At a clean stop, once every job has freed its folder."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None
            with contextlib.suppress(OSError):
                (self.owners / f"{self.run}.lock").unlink()
