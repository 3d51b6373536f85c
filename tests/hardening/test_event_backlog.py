"""A client that reads its event stream slowly, or not at all, against the hub's promises:
progress may be dropped, final states never; memory stays bounded."""

from __future__ import annotations

import asyncio

from bridge.server.events import QUEUE_LIMIT, Subscriber


def test_final_states_survive_a_backlog_of_progress():
    async def scenario() -> list[dict]:
        sub = Subscriber(None)  # offer() queues; nothing is sent in this test
        sub.offer({"type": "done", "job": "j-first"})
        for i in range(3 * QUEUE_LIMIT):
            sub.offer({"type": "progress", "job": f"j-{i % 9}", "progress": i / (3 * QUEUE_LIMIT)})
            if i % 500 == 0:
                sub.offer({"type": "failed", "job": f"j-final-{i}"})
        sub.offer({"type": "cancelled", "job": "j-last"})
        return list(sub.pending)

    events = asyncio.run(scenario())
    assert len(events) <= QUEUE_LIMIT
    finals = [e["job"] for e in events if e["type"] != "progress"]
    assert finals == ["j-first", *(f"j-final-{i}" for i in range(0, 3 * QUEUE_LIMIT, 500)),
                      "j-last"]
    # What was dropped was the oldest progress: the newest is still there.
    assert events[-2]["type"] == "progress" and events[-2]["progress"] > 0.99


def test_a_reader_that_never_reads_is_cut_off_not_buffered_forever():
    async def scenario() -> Subscriber:
        sub = Subscriber(None)
        for i in range(QUEUE_LIMIT + 5):
            sub.offer({"type": "done", "job": f"j-{i}"})
        return sub

    sub = asyncio.run(scenario())
    assert sub.overflowed
    assert not sub.pending
    sub.offer({"type": "done", "job": "j-after"})  # nothing more is kept for it
    assert not sub.pending
