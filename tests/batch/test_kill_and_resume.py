"""A 200-image batch killed with SIGKILL half-way, then resumed: the promise of `batch`.

A real `retouch-bridge batch` process is killed when its journal shows a little over
half the files done. The re-run must finish the rest: every output exactly once,
nothing half-written left, the inputs' bytes unchanged, and the corrupt file reported.

The corrupt file sorts in the middle (task 100 of 200), so the first run meets it with
good files on both sides: it fails alone and the files after it go on before the kill.
A failed file is not a finished one: the re-run tries it again and reports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
N = 200
CORRUPT = "set1/img_100.png"  # 100 % 3 == 1: where make_inputs would put it
KILL_AFTER = N // 2 + 10  # files journaled: past the corrupt one (task 100)
RECIPE = """
name = "resume"
[output]
format = "png"
[[steps]]
op = "color-match"
white_balance = "grey-world"
[[steps]]
op = "passthrough"
delay_s = 0.02
"""


def make_inputs(folder: Path) -> None:
    rng = np.random.default_rng(7)
    for i in range(N):
        sub = folder / f"set{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        name = f"img_{i:03d}.png"
        if f"{sub.name}/{name}" == CORRUPT:
            good = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
            (sub / name).write_bytes(good[:60])  # a truncated PNG
            continue
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        cv2.rectangle(pixels, (16, 16), (48, 48), (200, 80, 40), -1)
        ok, data = cv2.imencode(".png", pixels)
        assert ok
        (sub / name).write_bytes(data.tobytes())


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def file_records(journal: Path) -> list[dict]:
    """The journal's complete file lines, in the order they were appended."""
    records = []
    for line in journal.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if rec.get("type") == "file":
            records.append(rec)
    return records


def done_count(journal: Path) -> int:
    if not journal.exists():
        return 0
    return journal.read_text(errors="replace").count('"type":"file"')


def test_killed_half_way_then_resumed(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    before = digests(src)
    env = {**os.environ, "RB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bridge", "batch", str(src), "-r", str(recipe), "-o", str(out),
           "--workers", "2"]
    journal = out / ".retouch-batch" / "journal.jsonl"

    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while done_count(journal) < KILL_AFTER and time.monotonic() < deadline:
        assert proc.poll() is None, "the batch ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = done_count(journal)
    assert KILL_AFTER <= killed_at < N - 20, killed_at
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")).index(CORRUPT) == 100
    first_run = file_records(journal)
    order = [r["input"] for r in first_run]
    at = order.index(CORRUPT)  # met in the first run, in the middle of good files
    assert first_run[at]["status"] == "failed"
    assert 10 <= at < len(order) - 5, (at, len(order))
    assert all(r["status"] == "done" for r in first_run[at - 10:at] + first_run[at + 1:at + 6])
    time.sleep(1.5)  # orphaned workers notice within a second; none may write after this
    snapshot = digests(out)
    time.sleep(1.2)
    assert digests(out) == snapshot, "a worker kept writing after the batch was killed"

    resumed = subprocess.run([*cmd, "--json"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=180)
    assert resumed.returncode == 1, resumed.stderr  # one file failed
    summary = json.loads(resumed.stdout)
    assert summary["total"] == N
    assert summary["skipped"] >= killed_at - 3  # at most a couple were in flight and redone
    assert summary["skipped"] + summary["done"] == N - 1
    assert [f["input"] for f in summary["failed"]] == [CORRUPT]  # tried again, failed again

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and ".retouch-batch" not in p.parts)
    images = [f for f in files if not f.startswith("qa-report")]
    expected = sorted(rel for rel in before if rel != CORRUPT)
    assert images == expected  # every output exactly once, under its mirrored path
    assert not [f for f in files if f.endswith(".tmp")]
    for rel in images[::25]:
        decoded = cv2.imread(str(out / rel))
        assert decoded is not None and decoded.shape == (64, 64, 3)
    assert digests(src) == before

    latest = {rec["input"]: rec for rec in file_records(journal)}
    assert len(latest) == N
    assert latest[CORRUPT]["status"] == "failed" and latest[CORRUPT]["error"]["message"]
    assert all(r["status"] == "done" for k, r in latest.items() if k != CORRUPT)
    report = json.loads((out / "qa-report.json").read_text())
    assert report["counts"]["done"] == N - 1 and report["counts"]["failed"] == 1
