"""The local engine: worker processes, each a three-stage pipeline.

Why processes: decoding, the operations and encoding spend much of their time
in numpy/OpenCV/zlib, which release the GIL, but the Python between those calls
does not. A thread pool does get far on the built-in recipes (bench/batch.py has a
row for it: about 1.6x on 2 cores, the engine 1.6-2.0x in the same runs), but
processes keep scaling when a step holds the GIL longer, and they fence off a
crash or a leak in a native library: one worker dies, its files are retried. So
there is one process per core, and inside each a reader thread (read, hash, decode), the
main thread (the recipe) and a writer thread (encode, atomic write, metrics,
thumbnails), joined by queues of one item: the model work never waits on I/O and
at most three images per worker are in memory.

The parent assigns tasks to each worker (at most `depth` at a time), so it always
knows which files a worker holds: if a worker dies (killed for memory, a crash
in a native library), its files are retried once in a fresh worker and reported
as failed the second time. Workers die with the batch (PR_SET_PDEATHSIG on
Linux fires when the fork server, which exits with the batch, goes; every worker
also checks once a second while idle), so a killed batch leaves no stragglers.
Workers start from a fork server (see worker_context).
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.batch.plan import Task

Record = dict[str, Any]
OnRecord = Callable[[Record], None]


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Native thread pools sized to this worker's share of the cores (BLAS: see
    worker_context; torch and OpenCV can still be told now)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _worker_main(wid: int, args: dict[str, Any], inbox: Any, outbox: Any, parent: int,
                 threads: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    limit_threads(threads)
    from bridge.batch.worker import FileProcessor

    proc = FileProcessor(**args)
    decoded: queue.Queue[Any] = queue.Queue(maxsize=1)
    computed: queue.Queue[Any] = queue.Queue(maxsize=1)

    spawner = os.getppid()  # the fork server; the batch process is `parent`

    def orphaned() -> bool:
        if os.getppid() != spawner:
            return True
        if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
            up = mp.parent_process()
            return up is not None and not up.is_alive()
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def reader() -> None:
        while True:
            try:
                task = inbox.get(timeout=1.0)
            except queue.Empty:
                if orphaned():
                    os._exit(1)
                continue
            decoded.put(None if task is None else proc.load(task))
            if task is None:
                return

    def writer() -> None:
        while (item := computed.get()) is not None:
            try:
                record = proc.finish(item)
            except Exception as e:  # a bug, not a bad file: still report the file
                task = item.task if hasattr(item, "task") else item.loaded.task
                record = {"type": "file", "input": task.rel, "index": task.index,
                          "status": "failed", "output": None,
                          "error": {"code": "internal_error", "message": repr(e)}}
            outbox.put(("done", wid, record))

    threads_ = [threading.Thread(target=reader, daemon=True),
                threading.Thread(target=writer, daemon=True)]
    for t in threads_:
        t.start()
    while (item := decoded.get()) is not None:
        computed.put(proc.compute(item))
    computed.put(None)
    threads_[1].join()
    outbox.put(("exit", wid, {"cpu_s": _cpu_seconds()}))


def _cpu_seconds() -> float:
    try:
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    except ImportError:  # Windows
        return time.process_time()


def worker_context() -> Any:
    """Workers start from a fork server, not a fork of this process: a plain fork copies
    the state of native thread pools (OpenCV's, once any parallel call ran here) without
    their threads, and the child's first parallel call then waits forever. The server
    imports the heavy modules once, so each worker still starts in a fraction of a second.
    """
    if sys.platform == "win32":
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["bridge.batch.worker", "bridge.ops.registry"])
    # Workers are single-threaded inside numpy's BLAS (the processes are the parallelism).
    # BLAS reads these once, when the fork server imports numpy: set them for its start
    # only, so this process's environment is left as it was.
    from multiprocessing import forkserver

    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update({v: "1" for v in _THREAD_VARS})
    try:
        forkserver.ensure_running()
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    return ctx


class LocalEngine:
    name = "local"

    def __init__(self, workers: int | None = None, depth: int = 3) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.depth = depth
        self.cpu_seconds = 0.0  # CPU the workers used, all threads (for the bench)

    def run(self, args: dict[str, Any], tasks: list[Task], on_record: OnRecord) -> None:
        if not tasks:
            return
        n = min(self.workers, len(tasks))
        threads = max(1, (os.cpu_count() or 1) // n)
        ctx = worker_context()
        outbox = ctx.Queue()
        procs: dict[int, tuple[Any, Any]] = {}
        in_flight: dict[int, dict[int, Task]] = {}
        attempts: collections.Counter[int] = collections.Counter()
        pending = collections.deque(tasks)
        next_id = 0

        def start() -> int:
            nonlocal next_id
            wid, next_id = next_id, next_id + 1
            inbox = ctx.Queue()
            p = ctx.Process(target=_worker_main, name=f"rb-batch-{wid}", daemon=True,
                            args=(wid, args, inbox, outbox, os.getpid(), threads))
            p.start()
            procs[wid] = (p, inbox)
            in_flight[wid] = {}
            return wid

        def feed(wid: int) -> None:
            held = in_flight[wid]
            while pending and len(held) < self.depth:
                task = pending.popleft()
                held[task.index] = task
                procs[wid][1].put(task)

        remaining = len(tasks)
        checked = time.monotonic()
        try:
            for _ in range(n):
                feed(start())
            while remaining:
                try:
                    kind, wid, record = outbox.get(timeout=0.5)
                except queue.Empty:
                    kind = "idle"
                if kind == "idle" or time.monotonic() - checked > 1.0:
                    # Also while others keep reporting: a dead worker's files must not wait.
                    checked = time.monotonic()
                    remaining -= self._replace_dead(procs, in_flight, attempts, pending, start,
                                                    feed, on_record)
                if kind == "exit" and record:
                    self.cpu_seconds += record["cpu_s"]
                if kind != "done":
                    continue
                in_flight[wid].pop(record["index"], None)
                remaining -= 1
                on_record(record)
                if wid in procs:
                    feed(wid)
        finally:
            for p, inbox in procs.values():
                if p.is_alive():
                    inbox.put(None)
            deadline = time.monotonic() + 10
            for p, _ in procs.values():
                p.join(max(0.1, deadline - time.monotonic()))
                if p.is_alive():
                    p.terminate()
                    p.join(5)
            while True:  # the workers' last words: how much CPU they used
                try:
                    kind, _, info = outbox.get(timeout=0.05)
                except queue.Empty:
                    break
                if kind == "exit" and info:
                    self.cpu_seconds += info["cpu_s"]

    @staticmethod
    def _replace_dead(procs: dict[int, tuple[Any, Any]], in_flight: dict[int, dict[int, Task]],
                      attempts: collections.Counter[int], pending: collections.deque[Task],
                      start: Callable[[], int], feed: Callable[[int], None],
                      on_record: OnRecord) -> int:
        """Restart crashed workers; returns how many files were given up on."""
        lost = 0
        for wid in [w for w, (p, _) in procs.items() if not p.is_alive()]:
            p, _ = procs.pop(wid)
            held = in_flight.pop(wid)
            for task in held.values():
                attempts[task.index] += 1
                if attempts[task.index] >= 2:
                    lost += 1
                    on_record({"type": "file", "input": task.rel, "index": task.index,
                               "status": "failed", "output": None, "at": time.time(),
                               "error": {"code": "worker_died",
                                         "message": f"the worker process died (exit code "
                                                    f"{p.exitcode}) twice on this file"}})
                else:
                    pending.appendleft(task)
            feed(start())
        return lost
