"""The Ray engine: the same recipe and stages on Ray actors, on one machine or a cluster.

Each actor holds one FileProcessor (models load once per actor) and runs files
through load -> compute -> finish. The driver keeps two files queued per actor
so an actor never idles between calls, and keeps everything else the local engine
does: the journal, resume, atomic outputs (written by the actors with the same
temporary-then-rename writes), progress and the report.

Actors ask for one GPU each when the cluster has GPUs and the recipe wants one
(`gpus_per_worker`, auto by default), else one CPU each; `workers` is then capped at
the actors the cluster's GPUs can hold. Paths must mean the
same on every node (a shared or network folder), and the bridge must be
installed on the workers; on a local instance the driver's import path is passed on.
Why actors and not Ray Data: per-file records (status, errors, metrics) go to a
journal as they finish, which map_batches would hide until a block completes.
"""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path
from typing import Any

from bridge.batch.local import OnRecord, limit_threads
from bridge.batch.plan import Task
from bridge.errors import InvalidParams

PER_ACTOR = 2


class _BatchActor:
    def __init__(self, args: dict[str, Any], threads: int) -> None:
        limit_threads(threads)
        from bridge.batch.worker import FileProcessor

        self.proc = FileProcessor(**args)

    def process(self, task: Task) -> dict[str, Any]:
        return self.proc.process(task)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidParams("the Ray engine needs Ray: pip install 'retouch-bridge[batch]' "
                            "(or use --engine local)") from None
    return ray


def actor_plan(workers: int | None, gpus_per_worker: float | None, wants_gpu: bool,
               resources: dict[str, float], tasks: int) -> tuple[int, float]:
    """(how many actors, GPUs each) for a cluster's resources.

    GPU actors are no more than the cluster's GPUs hold: one that cannot be placed would
    keep the files queued on it waiting forever (a cluster with no GPU yet, where an
    autoscaler may add one, gets what was asked, at least one).
    """
    gpus = float(resources.get("GPU", 0))
    per_gpu = gpus_per_worker if gpus_per_worker is not None else (
        1.0 if wants_gpu and gpus >= 1 else 0.0)
    if per_gpu > 0:
        fit = max(1, int(gpus / per_gpu))
        n = min(workers, fit) if workers and gpus > 0 else (workers or fit)
    else:
        n = workers or max(1, int(resources.get("CPU", 1)))
    return max(1, min(n, tasks)), per_gpu


class RayEngine:
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 gpus_per_worker: float | None = None) -> None:
        self.workers = workers
        self.address = address
        self.gpus_per_worker = gpus_per_worker
        self.overhead_s = 0.0  # start-up time, reported by the bench

    def _init(self, ray: Any) -> bool:
        if ray.is_initialized():
            return False
        opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                "configure_logging": False}
        if self.address:
            ray.init(address=self.address, **opts)
        else:
            # Local workers inherit the environment: make sure they can import the bridge.
            root = str(Path(__file__).resolve().parents[2])
            paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            if root not in paths:
                os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
            ray.init(num_cpus=self.workers or os.cpu_count() or 1, **opts)
        return True

    def run(self, args: dict[str, Any], tasks: list[Task], on_record: OnRecord,
            wants_gpu: bool = False) -> None:
        if not tasks:
            return
        ray = import_ray()
        t0 = time.monotonic()
        started_here = self._init(ray)
        try:
            resources = ray.cluster_resources()
            n, per_gpu = actor_plan(self.workers, self.gpus_per_worker, wants_gpu, resources,
                                    len(tasks))
            threads = max(1, int(resources.get("CPU", 1)) // n)
            actor_cls = ray.remote(num_cpus=1, num_gpus=per_gpu)(_BatchActor)
            actors = {i: actor_cls.remote(args, threads) for i in range(n)}
            self.overhead_s = time.monotonic() - t0
            self._drive(ray, actor_cls, actors, args, threads, tasks, on_record)
        finally:
            if started_here:
                ray.shutdown()

    def _drive(self, ray: Any, actor_cls: Any, actors: dict[int, Any], args: dict[str, Any],
               threads: int, tasks: list[Task], on_record: OnRecord) -> None:
        from ray.exceptions import RayActorError, RayTaskError

        pending = collections.deque(tasks)
        refs: dict[Any, tuple[int, Task, Any]] = {}
        held: collections.Counter[int] = collections.Counter()
        attempts: collections.Counter[int] = collections.Counter()

        def feed(i: int) -> None:
            while pending and held[i] < PER_ACTOR:
                task = pending.popleft()
                refs[actors[i].process.remote(task)] = (i, task, actors[i])
                held[i] += 1

        for i in actors:
            feed(i)
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                ref = ready[0]
                i, task, actor = refs.pop(ref)
                held[i] -= 1
                try:
                    record = ray.get(ref)
                except RayActorError as e:
                    attempts[task.index] += 1
                    if attempts[task.index] < 2:
                        pending.appendleft(task)
                        record = None
                    else:
                        record = _failed(task, "worker_died", f"the Ray actor died: {e}")
                    if actors[i] is actor:
                        # Replace it once; its other queued calls fail the same way and
                        # find the new actor already there.
                        ray.kill(actor, no_restart=True)
                        actors[i] = actor_cls.remote(args, threads)
                except RayTaskError as e:
                    record = _failed(task, "internal_error", str(e).splitlines()[0])
                if record is not None:
                    on_record(record)
                feed(i)
        finally:
            for actor in actors.values():
                ray.kill(actor, no_restart=True)


def _failed(task: Task, code: str, message: str) -> dict[str, Any]:
    return {"type": "file", "input": task.rel, "index": task.index, "status": "failed",
            "output": None, "at": time.time(), "error": {"code": code, "message": message}}
