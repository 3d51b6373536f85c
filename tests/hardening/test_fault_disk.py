"""The disk filling while the bridge writes: PSD uploads and results, recipe references,
image files (codecs.write_image), PSD files (CLI apply) and batch outputs.

What must hold: the failure is a clear 507 `disk_full` (a failed job, or the answer to
the request), nothing half-written stays behind, the server keeps serving, and the same
work succeeds once there is room.

Two ways to fill a disk, as the machine allows:
- `tmpfs`: the bridge's cache folder on a small tmpfs (ENOSPC, exactly what a user
  gets); needs root, skipped otherwise;
- `fsize`: a file-size limit on the server process (RLIMIT_FSIZE, EFBIG; Python ignores
  SIGXFSZ), which any Linux user may set on their own process.
"""

from __future__ import annotations

import io
import resource
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.hardening.helpers import leftovers
from tests.hardening.smalldisk import files_under, resize, small_disk, used_bytes
from tests.support.images import png_bytes
from tests.support.server import Bridge, running_bridge

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="fills a disk with tmpfs or RLIMIT_FSIZE (Linux)")


def psd_bytes(side: int, seed: int) -> bytes:
    """An RGB document with one layer of noise (it does not compress)."""
    from psd_tools import PSDImage

    psd = PSDImage.new("RGB", (side, side), depth=8)
    rng = np.random.default_rng(seed)
    layer = rng.integers(0, 256, (side, side, 4)).astype(np.float32) / 255
    layer[..., 3] = 1.0
    psd.create_pixel_layer_from_array(layer, name="Photo", top=0, left=0)
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


@dataclass
class Disk:
    """Room for the server's writes in its cache folder, set in bytes."""

    kind: str
    bridge: Bridge
    cache: Path

    def room(self, nbytes: int | None) -> None:
        if self.kind == "tmpfs":
            resize(self.cache, (nbytes or 64 << 20) // 1024)
        else:
            soft = nbytes if nbytes is not None else resource.RLIM_INFINITY
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.prlimit(self.bridge.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))


@pytest.fixture(params=["tmpfs", "fsize"])
def disk(request, tmp_path: Path) -> Iterator[Disk]:
    cache = tmp_path / "cache"
    if request.param == "tmpfs":
        with small_disk(cache, 64 << 10), \
                running_bridge(tmp_path / "home", env={"RB_CACHE_DIR": str(cache)}) as b:
            yield Disk("tmpfs", b, cache)
    else:
        cache.mkdir()
        with running_bridge(tmp_path / "home", env={"RB_CACHE_DIR": str(cache)}) as b:
            yield Disk("fsize", b, cache)


def post_psd(b: Bridge, data: bytes):
    return b.post_form("/v1/psd/apply", [("psd", data, "image/vnd.adobe.photoshop"),
                                         ("op", "passthrough", None), ("layer", "Photo", None)])


def test_psd_results_and_uploads_that_do_not_fit(disk: Disk):
    b = disk.bridge
    doc = psd_bytes(192, seed=1)
    # Room for the upload, not for the upload and the result side by side.
    disk.room(len(doc) * 3 // 2)
    r = post_psd(b, doc)
    assert r.status == 202, r.body
    job = b.wait(r.json()["id"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "disk_full", job["error"]
    assert "disk is full" in job["error"]["message"]
    assert leftovers(disk.cache) == []  # neither the upload nor a half-written result

    # An upload larger than the room left: refused while it streams in, as JSON.
    disk.room(len(doc) // 2)
    r = post_psd(b, doc)
    assert r.status == 507 and r.error_code == "disk_full", (r.status, r.body[:300])
    assert leftovers(disk.cache) == []

    assert b.alive()
    disk.room(None)
    job = b.wait(post_psd(b, doc).json()["id"])
    assert job["state"] == "done", job
    assert b.get(f"/v1/jobs/{job['id']}/result").body[:4] == b"8BPS"


RECIPE = """
name = "match"
[[steps]]
op = "color-match"
reference = "@reference"
"""


def test_a_reference_image_that_does_not_fit(disk: Disk):
    b = disk.bridge
    rng = np.random.default_rng(2)
    reference = png_bytes(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8))
    image = png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    fields = [("recipe", RECIPE, None), ("image", image, "image/png"),
              ("reference", reference, "image/png")]
    disk.room(len(reference) // 2)
    r = b.post_form("/v1/recipes/run", fields)
    assert r.status == 507 and r.error_code == "disk_full", (r.status, r.body[:300])
    assert leftovers(disk.cache) == []
    disk.room(None)
    r = b.post_form("/v1/recipes/run", fields)
    assert r.status == 202, r.body
    assert b.wait(r.json()["id"])["state"] == "done"


def test_tmpfs_is_really_full(tmp_path: Path):
    """The mechanism itself: the small disk refuses what does not fit with ENOSPC."""
    with small_disk(tmp_path / "d", 64) as d:
        with pytest.raises(OSError) as e:
            (d / "x").write_bytes(b"\0" * (128 << 10))
        assert e.value.errno == 28
        assert used_bytes(d) > 0


# -- files written in-process: a small tmpfs (root only) ---------------------------------------
def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_write_image_on_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    from bridge.errors import DiskFull
    from bridge.imaging import codecs
    from bridge.imaging.image import Image

    with small_disk(tmp_path / "d", 256) as d:
        target = d / "out.tiff"
        codecs.write_image(Image(noise(32, 32, 1)), target)
        before = target.read_bytes()
        with pytest.raises(DiskFull, match="disk is full") as e:
            codecs.write_image(Image(noise(400, 400, 2)), target)
        assert e.value.status == 507 and e.value.code == "disk_full"
        assert target.read_bytes() == before
        assert files_under(d) == ["out.tiff"]


def test_psd_apply_on_a_full_disk_leaves_the_folder_as_it_was(tmp_path: Path):
    from bridge.psd.apply import apply_to_psd

    src = tmp_path / "doc.psd"
    src.write_bytes(psd_bytes(160, seed=3))
    original = src.read_bytes()
    with small_disk(tmp_path / "d", (len(original) // 1024) // 2) as d:
        (d / "old.psd").write_bytes(b"8BPS an older result")
        with pytest.raises(OSError) as e:
            apply_to_psd(src, d / "old.psd", "passthrough", layer="Photo")
        assert e.value.errno == 28
        assert (d / "old.psd").read_bytes() == b"8BPS an older result"
        assert files_under(d) == ["old.psd"]
    assert src.read_bytes() == original


BATCH_RECIPE = 'name = "copy"\n[output]\nformat = "png"\n[[steps]]\nop = "passthrough"\n'


def test_a_batch_whose_disk_fills_stops_clearly_and_resumes_without_duplicates(tmp_path: Path):
    import cv2

    from bridge.batch.journal import Journal
    from bridge.batch.run import run_batch
    from bridge.errors import DiskFull
    from bridge.recipes import parse_recipe

    src = tmp_path / "in"
    src.mkdir()
    images = {f"img_{i:02d}.png": noise(64, 64, 10 + i) for i in range(16)}
    for name, px in images.items():
        cv2.imwrite(str(src / name), px)
    recipe = parse_recipe(BATCH_RECIPE)
    with small_disk(tmp_path / "out", 160) as out:
        with pytest.raises(DiskFull, match="run the same command again to resume"):
            run_batch(src, recipe, out, workers=1, report=False)
        written = [n for n in images if (out / n).exists()]
        assert 0 < len(written) < len(images)
        resize(out, 8 << 10)
        summary = run_batch(src, recipe, out, workers=1, report=False)
        assert summary.ok and summary.done + summary.skipped == len(images)
        assert summary.skipped >= 1  # what was finished before is not done again
        assert sorted(p for p in files_under(out) if not p.startswith(".retouch-batch")) \
            == sorted(images)
        for name, px in images.items():
            assert np.array_equal(cv2.imread(str(out / name)), px), name
        records = [r for r in Journal(out).records() if r.get("type") == "file"]
        assert sorted(r["input"] for r in records) == sorted(images)  # once each
        assert all(r["status"] == "done" for r in records)
