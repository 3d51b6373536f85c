"""The batch's memory: one JSON line per finished file, appended and synced as it happens.

A process killed at any moment leaves at worst a torn last line, which reading
skips; every complete line is a file that was finished (its output already
renamed into place) or that failed. At the end of a run the journal is rewritten
with one line per input (atomically: a new file renamed over the old).

Lines: {"type": "batch", ...} once per run (recipe digest, time), then
{"type": "file", "input", "size", "mtime_ns", "sha256", "status": "done"|"failed",
 "output", "error", "seconds", "metrics", "thumbs", "warnings", "recipe", "at"}.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, TextIO

from bridge.batch.plan import STATE_DIR
from bridge.errors import BridgeError, DiskFull, is_disk_full
from bridge.file_lock import try_lock

JOURNAL = "journal.jsonl"
# The temporary names codecs.write_image uses: ".<name>.<8 hex>.tmp".
_TMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")


class BatchLocked(BridgeError):
    status = 409
    code = "batch_locked"


class Journal:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.dir = out_dir / STATE_DIR
        self.path = self.dir / JOURNAL
        self.thumbs = self.dir / "thumbs"
        self._fh: TextIO | None = None
        self._lock_fh: Any = None

    # -- reading ---------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn line from a killed run
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last record of each input."""
        return {r["input"]: r for r in self.records()
                if r.get("type") == "file" and isinstance(r.get("input"), str)}

    # -- writing ----------------------------------------------------------------
    def open(self, header: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.thumbs.mkdir(exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self.append({"type": "batch", "at": time.time(), **header})

    def append(self, record: dict[str, Any]) -> None:
        assert self._fh is not None, "journal not open"
        try:
            self._fh.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as e:
            if not is_disk_full(e):
                raise
            # Without its journal a batch cannot resume safely: stop here, say how to go on.
            raise disk_full_stop(self.out_dir) from None

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError as e:  # a full disk: what did not reach it is redone on resume
                if not is_disk_full(e):
                    raise

    def compact(self, header: dict[str, Any]) -> None:
        """Rewrite with the header and the latest record per input, atomically.

        On a full disk the journal stays as appended (a resume reads it just as well)."""
        latest = self.latest()
        tmp = self.dir / f".{JOURNAL}.{secrets.token_hex(4)}.tmp"
        try:
            with tmp.open("x", encoding="utf-8") as fh:
                fh.write(json.dumps({"type": "batch", "at": time.time(), **header}) + "\n")
                for rec in latest.values():
                    fh.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if not is_disk_full(e):
                raise

    # -- one batch at a time ------------------------------------------------------------
    def lock(self) -> None:
        """Refuse a second batch on the same OUT_DIR while this one runs."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = (self.dir / "lock").open("a+")
        if not try_lock(fh):
            fh.close()
            raise BatchLocked(f"another batch is writing to {self.out_dir}")
        self._lock_fh = fh

    def unlock(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


def disk_full_stop(out_dir: Path) -> DiskFull:
    return DiskFull(f"the disk holding {out_dir} is full: the batch stopped. Free some space "
                    "and run the same command again to resume; finished files are kept")


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete half-written files a killed run left (write_image's temporary names only)."""
    removed = 0
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if _TMP.fullmatch(name):
                try:
                    (Path(root) / name).unlink()
                    removed += 1
                except OSError:
                    pass
    return removed
