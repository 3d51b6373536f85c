"""What the tray shows for a queue state: kind, counts, tooltip, and the drawn icon."""

from __future__ import annotations

import numpy as np

from bridge.server.jobs import Job
from bridge.tray.icon import COLOURS, render
from bridge.tray.status import ERROR_WINDOW_S, TrayStatus, status_of

NOW = 1_800_000_000.0


def job(state: str, finished: float | None = None, error: str | None = None) -> Job:
    j = Job(op="upscale", work=lambda ctx: None)
    j.state = state  # type: ignore[assignment]
    j.finished = finished
    if error:
        j.error = {"code": "internal_error", "message": error}
    return j


def test_idle_busy_paused():
    assert status_of([], False, now=NOW) == TrayStatus("idle")
    jobs = [job("running"), job("queued"), job("queued"), job("done", NOW - 5)]
    busy = status_of(jobs, False, now=NOW)
    assert (busy.kind, busy.running, busy.queued, busy.jobs) == ("busy", 1, 2, 3)
    assert busy.tooltip() == "Retouch Bridge: busy (1 running, 2 queued)"
    paused = status_of(jobs, True, now=NOW)
    assert paused.kind == "paused" and paused.tooltip().endswith("paused (1 running, 2 queued)")
    idle = status_of([job("done", NOW - 5), job("done", NOW - 4)], False, now=NOW)
    assert idle.tooltip() == "Retouch Bridge: idle (2 recent results)"


def test_a_failure_shows_until_a_later_success_or_it_ages():
    failed = job("failed", NOW - 10, "CUDA out of memory")
    st = status_of([job("done", NOW - 20), failed], False, now=NOW)
    assert st.kind == "error" and "CUDA out of memory" in st.tooltip()
    assert status_of([failed, job("done", NOW - 1)], False, now=NOW).kind == "idle"
    assert status_of([failed], False, now=NOW + ERROR_WINDOW_S).kind == "idle"
    # A cancelled job is the user's choice, not an error.
    assert status_of([failed, job("cancelled", NOW - 1)], False, now=NOW).kind == "error"
    assert status_of([job("cancelled", NOW - 1)], False, now=NOW).kind == "idle"


def test_server_error_wins():
    st = status_of([job("running")], False, server_error="port taken", now=NOW)
    assert st.kind == "error" and st.tooltip() == "Retouch Bridge: error: port taken"


def ring_colour(img) -> tuple[int, int, int]:
    """The most common strongly coloured pixel: the ring's colour."""
    px = np.asarray(img.convert("RGBA")).reshape(-1, 4)
    px = px[(px[:, 3] == 255) & (px[:, :3].max(axis=1) > 100)]
    values, counts = np.unique(px[:, :3], axis=0, return_counts=True)
    return tuple(int(v) for v in values[counts.argmax()])


def test_icon_colour_follows_the_state():
    for kind in ("idle", "busy", "paused", "error", "stopping"):
        img = render(TrayStatus(kind, running=1 if kind in ("busy", "paused") else 0))  # type: ignore[arg-type]
        assert img.size == (64, 64) and img.mode == "RGBA"
        seen = np.array(ring_colour(img))
        nearest = min(COLOURS, key=lambda k: np.abs(np.array(COLOURS[k]) - seen).sum())
        assert nearest == kind and np.abs(np.array(COLOURS[kind]) - seen).max() <= 3, kind


def test_badge_shows_the_job_count():
    one = np.asarray(render(TrayStatus("busy", 1, 0)))
    twelve = np.asarray(render(TrayStatus("busy", 1, 11)))
    none = np.asarray(render(TrayStatus("idle")))
    corner = (slice(36, 64), slice(36, 64))
    assert not np.array_equal(one[corner], twelve[corner])  # different digits
    assert not np.array_equal(one[corner], none[corner])    # a badge at all
    # Same status, same picture (the icon is only re-sent when something changed).
    assert np.array_equal(one, np.asarray(render(TrayStatus("busy", 1, 0))))
    # Away from the badge, the count changes nothing.
    assert np.array_equal(one[:30, :30], twelve[:30, :30])
