"""The Ray engine on a local Ray instance: same outputs, journal and resume as the local engine;
actors that ask for a GPU when the recipe wants one; an actor that dies mid-batch.

The instance declares one GPU (`num_gpus=1`): a resource Ray schedules by, no device
needed. What an actor got is seen from inside it: a subclass of the engine's actor
(`observed_actors`) adds Ray's GPU ids and its process id to each record.
"""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from bridge.batch import ray_engine
from bridge.batch.run import run_batch
from bridge.imaging.codecs import read_image
from bridge.recipes import parse_recipe
from tests.batch.products import product_image

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'retouch-bridge[batch]')")

RECIPE = """
name = "ray shop"
[output]
format = "png"
[[steps]]
op = "standardize"
matte = "border-color"
canvas_width = 64
canvas_height = 64
"""


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def test_ray_batch_matches_the_local_engine_and_resumes(tmp_path, local_ray):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        rgb = product_image(96, 72, seed=i, colour=(60 + 30 * i, 40, 160))
        cv2.imwrite(str(src / f"p{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    recipe = parse_recipe(RECIPE)

    out_ray = tmp_path / "ray"
    summary = run_batch(src, recipe, out_ray, engine="ray", workers=2)
    assert summary.engine == "ray"
    assert summary.done == 6 and [n for n, _ in summary.failed] == ["bad.png"]
    out_local = tmp_path / "local"
    run_batch(src, recipe, out_local, engine="local", workers=2, report=False)
    for i in range(6):
        a = read_image(out_ray / f"p{i}.png").pixels
        b = read_image(out_local / f"p{i}.png").pixels
        np.testing.assert_array_equal(a, b)
    assert not list(out_ray.rglob("*.tmp"))
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()} == before
    report = json.loads((out_ray / "qa-report.json").read_text())
    assert report["batch"]["engine"] == "ray" and report["counts"]["done"] == 6

    again = run_batch(src, recipe, out_ray, engine="ray", workers=2)
    assert (again.done, again.skipped, len(again.failed)) == (0, 6, 1)


GPU_RECIPE = """
name = "gpu"
[output]
format = "png"
[[steps]]
op = "upscale"
scale = 2
model = "lanczos"
"""


def inputs(folder, n: int) -> list[str]:
    folder.mkdir()
    for i in range(n):
        rgb = product_image(48, 40, seed=i, colour=(60 + 20 * i, 40, 160))
        cv2.imwrite(str(folder / f"p{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return [f"p{i}.png" for i in range(n)]


@pytest.fixture
def observed_actors(monkeypatch):
    """The options the engine gives `ray.remote` for its actor class, and the actors made
    from a subclass (pickled by value, so it reaches the workers) whose records also say
    which GPUs Ray gave the actor and its pid. `die_on` (a file name, a marker path):
    the first actor to meet that file exits at once, as a crashed worker would."""
    seen: dict = {"options": [], "die_on": None}
    real_remote = ray.remote

    def remote(*args, **options):
        if args or not options:
            return real_remote(*args, **options)
        seen["options"].append(options)
        die_on = seen["die_on"]

        def make(cls):
            class Observed(cls):
                def process(self, task):
                    import os as _os

                    import ray as _ray

                    if die_on is not None and task.rel == die_on[0] and not _os.path.exists(
                            die_on[1]):
                        open(die_on[1], "w").close()
                        _os._exit(1)
                    record = super().process(task)
                    record["gpu_ids"] = [str(g) for g in _ray.get_gpu_ids()]
                    record["actor_pid"] = _os.getpid()
                    return record

            return real_remote(**options)(Observed)

        return make

    monkeypatch.setattr(ray, "remote", remote)
    return seen


def journal_records(out) -> list[dict]:
    lines = (out / ".retouch-batch" / "journal.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == "file"]


def test_a_recipe_that_wants_a_gpu_gets_actors_that_hold_one(tmp_path, local_ray,
                                                              observed_actors):
    names = inputs(tmp_path / "in", 4)
    summary = run_batch(tmp_path / "in", parse_recipe(GPU_RECIPE), tmp_path / "out",
                        engine=ray_engine.RayEngine(), report=False)
    assert summary.done == 4 and not summary.failed
    assert observed_actors["options"] == [{"num_cpus": 1, "num_gpus": 1.0}]
    records = journal_records(tmp_path / "out")
    assert sorted(r["input"] for r in records) == names
    assert all(r["gpu_ids"] == ["0"] for r in records), records  # Ray gave it the GPU
    assert len({r["actor_pid"] for r in records}) == 1  # one GPU: one actor


@pytest.mark.parametrize(("workers", "per", "wants", "resources", "expected"), [
    (None, None, True, {"CPU": 8, "GPU": 2}, (2, 1.0)),   # auto: one actor per GPU
    (4, None, True, {"CPU": 8, "GPU": 1}, (1, 1.0)),      # capped at what fits
    (4, 0.5, False, {"CPU": 8, "GPU": 1}, (2, 0.5)),      # half a GPU each: two fit
    (2, 1.0, False, {"CPU": 8}, (2, 1.0)),                # no GPU yet: as asked
    (None, None, True, {"CPU": 3}, (3, 0.0)),             # wants one, none there: CPUs
    (None, None, False, {"CPU": 8, "GPU": 1}, (5, 0.0)),  # CPU recipe; 5 files
])
def test_actor_plan(workers, per, wants, resources, expected):
    assert ray_engine.actor_plan(workers, per, wants, resources, tasks=5) == expected


@pytest.mark.timeout(60)  # before the cap, this hung for good
def test_more_workers_than_gpus_are_capped_not_left_waiting(tmp_path, local_ray,
                                                            observed_actors):
    """--workers 2 with one GPU: a second GPU actor could never be placed, and the files
    queued on it would wait forever (the batch hung before the cap)."""
    inputs(tmp_path / "in", 4)
    summary = run_batch(tmp_path / "in", parse_recipe(GPU_RECIPE), tmp_path / "out",
                        engine=ray_engine.RayEngine(workers=2), report=False)
    assert summary.done == 4
    records = journal_records(tmp_path / "out")
    assert len({r["actor_pid"] for r in records}) == 1
    assert all(r["gpu_ids"] == ["0"] for r in records)


def test_a_cpu_recipe_asks_for_no_gpu_even_where_there_is_one(tmp_path, local_ray,
                                                              observed_actors):
    inputs(tmp_path / "in", 2)
    summary = run_batch(tmp_path / "in", parse_recipe(RECIPE), tmp_path / "out",
                        engine=ray_engine.RayEngine(workers=2), report=False)
    assert summary.done == 2
    assert observed_actors["options"] == [{"num_cpus": 1, "num_gpus": 0.0}]
    assert all(r["gpu_ids"] == [] for r in journal_records(tmp_path / "out"))


def test_an_actor_that_dies_mid_batch_has_its_files_retried_once_each(
        tmp_path, local_ray, observed_actors):
    names = inputs(tmp_path / "in", 8)
    marker = tmp_path / "died"
    observed_actors["die_on"] = ("p3.png", str(marker))
    out = tmp_path / "out"
    summary = run_batch(tmp_path / "in", parse_recipe(RECIPE), out,
                        engine=ray_engine.RayEngine(workers=2), report=False)
    assert marker.exists(), "no actor died: the test proved nothing"
    assert summary.done == 8 and not summary.failed
    records = journal_records(out)
    # summary.done counts every record the driver got: a file done twice would make it 9.
    assert sorted(r["input"] for r in records) == names
    assert all(r["status"] == "done" for r in records)
    died = next(r for r in records if r["input"] == "p3.png")
    assert died["status"] == "done" and died["actor_pid"] > 0  # redone by a live actor
    outputs = sorted(p.name for p in out.iterdir() if p.is_file())
    assert outputs == names and not list(out.rglob("*.tmp"))
