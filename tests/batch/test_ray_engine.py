"""The Ray engine on a local Ray instance: same outputs, journal and resume as the local engine."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

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
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
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
