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
    assert files_under(disk.cache) == []  # neither the upload nor a half-written result

    # An upload larger than the room left: refused while it streams in, as JSON.
    disk.room(len(doc) // 2)
    r = post_psd(b, doc)
    assert r.status == 507 and r.error_code == "disk_full", (r.status, r.body[:300])
    assert files_under(disk.cache) == []

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
    assert files_under(disk.cache) == []
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
