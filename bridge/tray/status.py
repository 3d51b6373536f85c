"""What the tray shows: idle, busy, paused or error, and how many jobs, from the queue's state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from bridge.server.jobs import Job

Kind = Literal["idle", "busy", "paused", "error", "stopping"]
# A failure stays visible this long unless a later job succeeds.
ERROR_WINDOW_S = 600.0


@dataclass(frozen=True)
class TrayStatus:
    kind: Kind
    running: int = 0
    queued: int = 0
    detail: str = ""

    @property
    def jobs(self) -> int:
        return self.running + self.queued

    def tooltip(self) -> str:
        head = "Retouch Bridge"
        if self.kind == "stopping":
            return f"{head}: stopping" + (f" ({self.detail})" if self.detail else "")
        if self.kind == "error":
            return f"{head}: error: {self.detail}"
        counts = f"{self.running} running, {self.queued} queued"
        if self.kind == "paused":
            return f"{head}: paused ({counts})"
        if self.kind == "busy":
            return f"{head}: busy ({counts})"
        return f"{head}: idle" + (f" ({self.detail})" if self.detail else "")


def status_of(jobs: list[Job], paused: bool, server_error: str | None = None,
              now: float | None = None) -> TrayStatus:
    now = time.time() if now is None else now
    if server_error:
        return TrayStatus("error", detail=server_error)
    running = sum(1 for j in jobs if j.state == "running")
    queued = sum(1 for j in jobs if j.state == "queued")
    if paused:
        return TrayStatus("paused", running, queued)
    if running or queued:
        return TrayStatus("busy", running, queued)
    finished = [j for j in jobs if j.finished is not None and j.state in ("done", "failed")]
    if finished:
        last = max(finished, key=lambda j: j.finished or 0.0)
        if last.state == "failed" and now - (last.finished or 0.0) < ERROR_WINDOW_S:
            message = (last.error or {}).get("message") or "the last job failed"
            return TrayStatus("error", detail=f"{last.op}: {message}")
    done = sum(1 for j in jobs if j.state == "done")
    return TrayStatus("idle", detail=f"{done} recent result{'s' if done != 1 else ''}" if done else "")
