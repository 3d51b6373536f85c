"""50 clients against the real bridge at once: nothing lost, nothing 5xx, memory bounded,
/v1/health quick while the worker is busy.

One bounded run per module (`load` fixture), loopback only, stopping by itself: 20 s
of load (at most 5000 requests) then a drain of at most 90 s; RB_LONG_TESTS=1 adds a
5-minute run. The clients submit, poll, fetch and check, and cancel jobs of mixed
sizes and send invalid requests, while four /v1/events WebSockets listen
(tests/hardening/loadgen.py). bench/load.py prints the same figures.
"""

from __future__ import annotations

import os

import pytest

from tests.hardening.loadgen import LoadConfig, LoadReport, run_load
from tests.hardening.procinfo import HAS_PROC
from tests.support.server import running_bridge

LONG = bool(os.environ.get("RB_LONG_TESTS"))
RUNS = {
    "default": LoadConfig(clients=50, duration_s=20, max_requests=5000),
    "long": LoadConfig(clients=50, duration_s=300, max_requests=60000, seed=2),
}
# Growth allowed beyond the pixels the server must hold: the thread pool's and the 50
# connections' buffers, first-use code paths, and the allocator's free lists (glibc keeps
# freed arenas mapped). Measured growth with nothing held is 20-40 MB; 150 MB is generous.
SLACK_MB = 150
# After the drain nothing is in flight: what the server holds beyond start is the done
# jobs' pixels (once: the temporaries are freed) and the allocator's retained free lists.
# Measured: 5-15 MB beyond the held pixels (2 cores, 50 clients); 80 MB is generous, and
# a float32 copy of every result (4x the held pixels) kept by mistake would break it.
END_SLACK_MB = 80


@pytest.fixture(scope="module", params=[
    "default",
    pytest.param("long", marks=pytest.mark.skipif(not LONG, reason="RB_LONG_TESTS=1: 5-minute load")),
])
def load(request, tmp_path_factory) -> LoadReport:
    home = tmp_path_factory.mktemp("load-home")
    # Results outlive the run (TTL 600 s), so every job's status stays readable to the end.
    with running_bridge(home, env={"RB_RESULT_TTL": "600"}) as b:
        report = run_load(b.url, b.token, b.proc.pid, RUNS[request.param])
        assert b.alive()
    print("\n".join(report.lines()))
    return report


def test_no_server_errors_and_every_refusal_was_the_right_one(load: LoadReport):
    assert load.server_errors == []
    assert load.unexpected == []
    # The mix really happened: jobs, refusals of bad input, a full queue, cancels.
    assert load.accepted >= 100
    assert load.statuses[400] and load.statuses[404] and load.statuses[401] and load.statuses[415]
    assert load.refused_busy > 0, "the queue never filled: the load was too light to mean much"
    assert load.by_kind["cancel"] > 0


def test_no_job_lost_and_every_one_seen_in_every_event_stream(load: LoadReport):
    assert load.lost == []
    assert sum(load.final_states.values()) == load.accepted
    assert load.final_states["done"] > 0 and load.final_states["cancelled"] > 0
    assert load.missing_events == {}
    assert load.event_mismatch == []


def test_every_result_is_the_one_asked_for(load: LoadReport):
    assert load.wrong_results == []
    assert load.results_checked == load.final_states["done"]


def test_health_answers_within_100_ms_at_p99_while_the_worker_is_busy(load: LoadReport):
    assert load.busy_fraction > 0.8
    assert len(load.health_ms) > 200 and load.health_errors == 0
    assert load.health_p99_ms < 100, load.lines()


@pytest.mark.skipif(not HAS_PROC, reason="reads the server's memory from /proc")
def test_memory_stays_bounded(load: LoadReport):
    held_mb = load.held_bytes / 2**20
    growth_mb = (load.rss_peak_kb - load.rss_start_kb) / 1024
    # The server holds every done job's source and result (TTL 600 s > the run), and at
    # most queue_limit (64) waiting uploads of under 100 KB: everything above that, times
    # two for numpy's temporaries, plus the slack, would be a leak.
    assert growth_mb < 2 * held_mb + 64 * 0.1 + SLACK_MB, load.lines()
    # Once drained, the growth is what is held, plus a bound on what the allocator keeps.
    end_growth_mb = (load.rss_end_kb - load.rss_start_kb) / 1024
    assert end_growth_mb < held_mb + END_SLACK_MB, load.lines()
