"""Jobs: a bounded priority queue and one worker thread that runs model work serially.

A GPU holds one big job at a time, so model work is serial; decoding and
encoding happen outside, in the server's thread pool. Interactive jobs (a
retoucher waiting in Photoshop) run before batch jobs. An operation that raises
fails its own job only.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bridge.errors import (
    BridgeError,
    Busy,
    Cancelled,
    NotFound,
    disk_full,
    is_disk_full,
    is_out_of_memory,
)
from bridge.imaging.image import Image
from bridge.ops.base import CancelToken, OpContext

log = logging.getLogger("bridge.jobs")

State = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")
PRIORITIES = {"interactive": 0, "batch": 1}

Work = Callable[[OpContext], Any]
Listener = Callable[[dict[str, Any]], None]


@dataclass
class FileResult:
    """A job whose result is a file on disk (a PSD), served as a download."""

    path: Path
    media_type: str
    filename: str
    report: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"file": self.filename, "media_type": self.media_type,
                "size": self.path.stat().st_size if self.path.exists() else None, **self.report}


@dataclass
class Job:
    op: str
    work: Work
    priority: str = "interactive"
    # What the client sent, so results default to the same kind of file.
    source_format: str = "png"
    id: str = field(default_factory=lambda: "j-" + uuid.uuid4().hex)
    state: State = "queued"
    progress: float = 0.0
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: dict[str, Any] | None = None
    result: Any = None
    preview: bytes | None = None
    cancel_token: CancelToken = field(default_factory=CancelToken)
    done: threading.Event = field(default_factory=threading.Event)
    # The source image, kept for `?full=1` composites; dropped with the result.
    source: Image | None = None
    # Bytes of decoded input (image, mask) the job holds while it waits; by default
    # its source image's.
    held_bytes: int = 0
    describe_result: Callable[[Any], dict[str, Any]] | None = None
    # Frees what the job holds outside memory (its temporary folder); called once,
    # when the job fails or is cancelled, or when its result expires.
    cleanup: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if not self.held_bytes and self.source is not None:
            self.held_bytes = self.source.pixels.nbytes

    def release(self) -> None:
        self.result = None
        self.source = None
        if self.cleanup is not None:
            cleanup, self.cleanup = self.cleanup, None
            try:
                cleanup()
            except OSError:
                log.exception("cleanup of job %s failed", self.id)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "op": self.op,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "priority": self.priority,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "result": None,
        }
        if self.state == "done" and self.result is not None and self.describe_result:
            out["result"] = self.describe_result(self.result)
        return out


class JobQueue:
    """Holds every job by id, runs them one at a time on a worker thread."""

    def __init__(
        self,
        make_context: Callable[[Job], OpContext],
        limit: int = 64,
        result_ttl_s: float = 3600.0,
        listener: Listener | None = None,
        bytes_limit: int = 0,
    ) -> None:
        self._make_context = make_context
        self.limit = limit
        # Decoded input waiting jobs may hold together (0: no limit). The count limit
        # alone would let 64 waiting 200 MP images pin tens of gigabytes.
        self.bytes_limit = bytes_limit
        self.result_ttl_s = result_ttl_s
        self._listener = listener
        self._jobs: dict[str, Job] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._paused = False
        self.running: Job | None = None
        self._thread = threading.Thread(target=self._loop, name="bridge-worker", daemon=True)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, cancel_running: bool = True, timeout: float = 10.0) -> None:
        """Cancel what is queued (and running), then free every job's temporary files."""
        with self._cond:
            self._stopping = True
            for _, _, job_id in self._heap:
                self._finish_cancelled(self._jobs[job_id])
            self._heap.clear()
            if cancel_running and self.running is not None:
                self.running.cancel_token.cancel()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for job in list(self._jobs.values()):
            job.release()

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    # -- submission and queries ------------------------------------------------
    def submit(self, job: Job) -> Job:
        with self._cond:
            queued = len(self._heap)
            if queued >= self.limit:
                raise Busy(f"the queue is full ({queued} jobs waiting); try again shortly",
                           retry_after=max(1, queued // 4))
            held = sum(self._jobs[job_id].held_bytes for _, _, job_id in self._heap)
            if queued and self.bytes_limit and held + job.held_bytes > self.bytes_limit:
                # A job alone always waits: the per-request limits already bound it.
                raise Busy(f"the {queued} waiting jobs already hold {held >> 20} MB of "
                           f"images (limit {self.bytes_limit >> 20} MB); try again shortly",
                           retry_after=max(1, queued // 2))
            self._jobs[job.id] = job
            heapq.heappush(self._heap, (PRIORITIES[job.priority], next(self._seq), job.id))
            self._cond.notify_all()
        self._emit(job, "queued")
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is not None and job.finished and time.time() - job.finished > self.result_ttl_s:
            self._jobs.pop(job_id, None)
            job.release()
            job = None
        if job is None:
            raise NotFound(f"no job '{job_id}' (unknown, or its result expired)", job=job_id)
        return job

    def jobs(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("queued", "running", "done", "failed", "cancelled")}
        for job in list(self._jobs.values()):
            out[job.state] += 1
        return out

    def cancel(self, job_id: str) -> Job:
        with self._cond:
            job = self.get(job_id)
            if job.state == "queued":
                self._heap = [e for e in self._heap if e[2] != job_id]
                heapq.heapify(self._heap)
                self._finish_cancelled(job)
            elif job.state == "running":
                job.cancel_token.cancel()
                job.message = "cancelling"
        return job

    def expire(self, now: float | None = None) -> int:
        """Drop finished jobs older than the result lifetime; returns how many."""
        now = now or time.time()
        with self._cond:
            old = [j.id for j in self._jobs.values()
                   if j.finished is not None and now - j.finished > self.result_ttl_s]
            expired = [self._jobs.pop(job_id) for job_id in old]
        for job in expired:
            job.release()
        return len(old)

    # -- worker ------------------------------------------------------------------
    def _next(self) -> Job | None:
        with self._cond:
            while not self._stopping and (self._paused or not self._heap):
                self._cond.wait()
            if self._stopping:
                return None
            _, _, job_id = heapq.heappop(self._heap)
            job = self._jobs[job_id]
            job.state, job.started = "running", time.time()
            self.running = job
        return job

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            self._emit(job, "started")
            # The final state is written last: a poller on another thread that sees
            # "done" or "failed" must also see the result or the error, and the end time.
            final = "failed"
            try:
                ctx = self._make_context(job)
                job.result = job.work(ctx)
                if job.cancel_token.cancelled:
                    raise Cancelled("the job was cancelled")
                job.progress, job.message = 1.0, ""
                final = "done"
            except Cancelled:
                job.result = None
                job.message = "cancelled"
                final = "cancelled"
            except BridgeError as e:
                job.error = e.to_json()["error"]
            except Exception as e:
                if is_out_of_memory(e):  # MemoryError, or a library's own (OpenCV, torch)
                    log.warning("job %s (%s) ran out of memory: %s", job.id, job.op, e)
                    job.error = {"code": "out_of_memory",
                                 "message": "not enough memory for this image; try a smaller "
                                            "tile size or a smaller image"}
                elif is_disk_full(e):
                    log.warning("job %s (%s): %s", job.id, job.op, e)
                    job.error = disk_full(e).to_json()["error"]
                else:
                    log.error("job %s (%s) failed:\n%s", job.id, job.op, traceback.format_exc())
                    job.error = {"code": "internal_error", "message": f"{type(e).__name__}: {e}"}
            finally:
                job.finished = time.time()
                if final != "done":
                    job.release()  # before the state: a failed job's files are gone once it says so
                job.state = final
                with self._cond:
                    self.running = None
                job.done.set()
                self._emit(job, job.state)

    def _finish_cancelled(self, job: Job) -> None:
        job.message, job.finished = "cancelled", time.time()
        job.cancel_token.cancel()
        job.release()
        job.state = "cancelled"
        job.done.set()
        self._emit(job, "cancelled")

    def report_progress(self, job: Job, fraction: float, message: str) -> None:
        job.progress, job.message = fraction, message
        self._emit(job, "progress")

    def _emit(self, job: Job, kind: str) -> None:
        if self._listener is None:
            return
        event: dict[str, Any] = {"type": kind, "job": job.id, "op": job.op,
                                 "state": job.state, "progress": round(job.progress, 4),
                                 "message": job.message}
        if kind == "failed":
            event["error"] = job.error
        if kind == "done":
            event["result"] = job.status()["result"]
        try:
            self._listener(event)
        except Exception:
            log.exception("event listener failed")
