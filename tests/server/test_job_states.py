"""A job's final state is published only with everything that goes with it: its error
or result, its end time, and (when it failed) its files already removed."""

from __future__ import annotations

import threading
import time

import pytest

from bridge.errors import InvalidParams
from bridge.ops.base import OpContext
from bridge.server import jobs as jobs_module
from bridge.server.jobs import Job, JobQueue


class SlowLog:
    """Logging that takes a while, as it does under memory pressure: it widens the window
    between a job failing and its error being recorded."""

    def warning(self, *args: object) -> None:
        time.sleep(0.3)

    error = warning


def out_of_memory(ctx: OpContext) -> None:
    raise MemoryError()


def not_a_bridge_error(ctx: OpContext) -> None:
    raise ValueError("boom")


def refused(ctx: OpContext) -> None:
    raise InvalidParams("bad value")


def succeeds(ctx: OpContext) -> str:
    return "result"


@pytest.mark.parametrize("work", [out_of_memory, not_a_bridge_error, refused, succeeds])
def test_a_poller_never_sees_a_final_state_without_its_error_or_result(
        work, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "log", SlowLog())
    queue = JobQueue(lambda job: OpContext())
    queue.start()
    seen: list[dict] = []
    try:
        cleaned = threading.Event()

        def cleanup() -> None:  # a job's files, slow to delete
            time.sleep(0.2)
            cleaned.set()

        job = queue.submit(Job(op="test", work=work, cleanup=cleanup))
        stop = threading.Event()

        def poll() -> None:  # until the job is over and its final state was read
            while not (stop.is_set() and seen[-1]["state"] in ("done", "failed")):
                state = job.state
                seen.append(dict(state=state, error=job.error, result=job.result,
                                 finished=job.finished, progress=job.progress,
                                 cleaned=cleaned.is_set()))

        poller = threading.Thread(target=poll)
        poller.start()
        assert job.done.wait(10)
        stop.set()
        poller.join()
    finally:
        queue.stop()
    final = [s for s in seen if s["state"] in ("done", "failed")]
    assert seen and final, "the poller saw nothing final"
    for s in final:
        assert s["finished"] is not None
        if s["state"] == "failed":
            assert s["error"] is not None and s["error"]["code"]
            assert s["cleaned"], "a failed job must have removed its files when it says so"
        else:
            assert s["result"] == "result" and s["progress"] == 1.0
