"""The server killed (SIGKILL) in the middle of work, then started again on the same port.

The bridge keeps no queue on disk: a killed server's jobs are gone. No shipped client
resubmits them by itself: the Photoshop panel, polling a job, gets a connection error or,
once the bridge is back, a 404 (not_found) and shows that job as failed; the Lightroom
plug-in's requests are synchronous (no job ids), so a photo whose request the kill cut
off fails with a network error in the export's report. The user runs it again. Only
`retouch-bridge batch` resumes on its own, from its journal
(tests/batch/test_kill_and_resume.py). What the server must guarantee, and these tests
check: it starts again at once on the same port, the job files of the
killed run (PSD uploads and results) are swept at that start and no sooner (a second
bridge sharing the cache never deletes a live one's), ids from before answer 404
rather than someone else's result, and a client that resubmits what it did not
collect (this test's own client, standing in for a user running the work again) ends
with every result exactly once.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np

from tests.hardening.helpers import leftovers, raw_layout
from tests.hardening.test_fault_disk import psd_bytes
from tests.support import server as support
from tests.support.server import Bridge, running_bridge


@contextmanager
def bridge_on(home: Path, port: int) -> Iterator[Bridge]:
    with mock.patch.object(support, "free_port", lambda: port), running_bridge(home) as b:
        yield b


def kill(b: Bridge) -> None:
    b.proc.kill()
    b.proc.wait(10)


def job_folders(home: Path) -> list[str]:
    jobs = home / "cache" / "jobs"
    return sorted(p.name for p in jobs.iterdir()) if jobs.exists() else []


def submit_psd(b: Bridge, data: bytes, delay: float) -> str:
    r = b.post_form("/v1/psd/apply", [("psd", data, "image/x-photoshop"),
                                      ("op", "passthrough", None), ("layer", "Photo", None),
                                      ("params", json.dumps({"delay_s": delay}), None),
                                      ("priority", "batch", None)])
    assert r.status == 202, r.body
    return r.json()["id"]


def wait_running(b: Bridge, job: str) -> None:
    deadline = time.monotonic() + 20
    while b.get(f"/v1/jobs/{job}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_killed_servers_job_files_are_swept_at_the_next_start_and_a_live_ones_never(tmp_path):
    home = tmp_path / "home"
    doc = psd_bytes(64, seed=4)
    with running_bridge(home) as a:
        port = a.port
        wait_running(a, submit_psd(a, doc, delay=60))
        folders = job_folders(home)
        assert len(folders) == 1 and (home / "cache" / "jobs" / folders[0] / "input.psd").exists()
        # A second bridge on the same folders (the tray app beside `serve`) starts, sweeps,
        # and leaves the running one's files alone.
        with running_bridge(home) as other:
            assert other.alive()
            assert job_folders(home) == folders
        kill(a)
    assert job_folders(home) == folders  # nothing cleans up after SIGKILL ...
    with bridge_on(home, port) as again:  # ... until the next start, on the same port
        assert again.port == port and again.alive()
        assert job_folders(home) == []
        assert leftovers(home / "cache") == []
        job = again.wait(submit_psd(again, doc, delay=0))
        assert job["state"] == "done"


def test_a_batch_through_a_server_killed_half_way_ends_with_every_result_once(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    rng = np.random.default_rng(8)
    images = {f"img{i:02d}": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(8)}
    psds = {f"doc{i}": psd_bytes(48, seed=20 + i) for i in range(4)}
    submitted: dict[str, str] = {}
    collected: dict[str, int] = {}

    def submit(b: Bridge, name: str) -> None:
        if name in psds:
            submitted[name] = submit_psd(b, psds[name], delay=0.2)
        else:
            px = images[name]
            r = b.submit("passthrough", px.tobytes(), {"delay_s": 0.2}, raw=raw_layout(px),
                         priority="batch")
            assert r.status == 202, r.body
            submitted[name] = r.json()["id"]

    def collect(b: Bridge, stop_after: int | None = None) -> None:
        """Fetch what is done; resubmit what the server does not know (any more)."""
        deadline = time.monotonic() + 60
        while len(collected) < len(images) + len(psds):
            assert time.monotonic() < deadline
            for name, job_id in list(submitted.items()):
                if name in collected:
                    continue
                r = b.get(f"/v1/jobs/{job_id}")
                if r.status == 404:
                    assert "unknown" in r.json()["error"]["message"]
                    submit(b, name)
                    continue
                if r.json()["state"] == "done":
                    res = b.get(f"/v1/jobs/{job_id}/result?format=raw")
                    (out / name).write_bytes(res.body)
                    collected[name] = collected.get(name, 0) + 1
                    if stop_after is not None and len(collected) >= stop_after:
                        return
                else:
                    assert r.json()["state"] in ("queued", "running"), r.json()
            time.sleep(0.05)

    with running_bridge(home) as b:
        port = b.port
        for name in [*images, *psds]:
            submit(b, name)
        collect(b, stop_after=4)
        killed_run = run_id(home)
        kill(b)
    assert any(killed_run in f for f in leftovers(home / "cache"))
    with bridge_on(home, port) as b:
        collect(b)
        assert not any(killed_run in f for f in leftovers(home / "cache"))
    assert sorted(collected) == sorted([*images, *psds])
    assert set(collected.values()) == {1}
    for name, px in images.items():
        assert (out / name).read_bytes() == px.tobytes()
    from psd_tools import PSDImage

    for name in psds:
        doc = PSDImage.open(io.BytesIO((out / name).read_bytes()))
        assert [la.name for la in doc] == ["Photo", "Retouch Bridge"]


def run_id(home: Path) -> str:
    """The run id in the job folders of the one live server (bridge.server.scratch)."""
    owners = list((home / "cache" / "job-owners").glob("*.lock"))
    assert len(owners) == 1
    return owners[0].stem
