"""The bridge's folders are owner-only (0700) whatever the umask, and older open ones are closed.

Config, cache (its job folders, references, reports), log and models folders: made
0700 wherever the bridge makes them, tightened at start-up when an earlier run left
them open. Folders the user chose and that were there before are never changed.
Run with umask 0, where a plain mkdir would give 0777.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bridge.config import load_settings
from tests.support.images import png_bytes
from tests.support.server import running_bridge

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def open_folders(root: Path) -> dict[str, str]:
    """Every folder under root (root too) that group or others can use, with its mode."""
    found = {}
    for p in [root, *root.rglob("*")]:
        if p.is_dir() and not p.is_symlink() and mode(p) & 0o077:
            found[str(p.relative_to(root.parent))] = oct(mode(p))
    return found


def psd_bytes(tmp_path: Path) -> bytes:
    from psd_tools import PSDImage

    psd = PSDImage.new("RGB", (16, 16), depth=8)
    psd.create_pixel_layer_from_array(np.ones((8, 8, 4), np.float32), name="a", top=0, left=0)
    psd.save(tmp_path / "doc.psd")
    return (tmp_path / "doc.psd").read_bytes()


def test_every_folder_the_server_makes_is_owner_only_under_umask_0(tmp_path: Path):
    home = tmp_path / "home"  # not there yet: the bridge makes it, and all below it
    with umask(0):  # the server process inherits it
        bridge_cm = running_bridge(home)
        bridge = bridge_cm.__enter__()
    try:
        # A PSD job keeps its upload in <cache>/jobs/<folder> while it runs.
        r = bridge.post_form("/v1/psd/apply", [
            ("psd", psd_bytes(tmp_path), "image/x-photoshop"), ("op", "passthrough", None),
            ("layer", "a", None),
            ("params", '{"delay_s": 3}', None)])
        assert r.status == 202, r.body
        deadline = time.monotonic() + 10
        while not any((home / "cache" / "jobs").glob("psd-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        job_folders = list((home / "cache" / "jobs").glob("psd-*"))
        assert job_folders and (job_folders[0] / "input.psd").exists()
        running = open_folders(home)
        # A recipe's reference image is kept in <cache>/references.
        image = png_bytes(np.full((8, 8, 3), 90, np.uint8))
        r = bridge.post_form("/v1/recipes/run", [
            ("recipe", '{"steps": [{"op": "color-match", "reference": "@reference"}]}', None),
            ("image", image, "image/png"), ("reference", image, "image/png")])
        assert r.status == 202, r.body
        assert bridge.wait(r.json()["id"])["state"] == "done"
    finally:
        bridge_cm.__exit__(None, None, None)
    assert running == {}
    for name in ("config", "cache", "cache/jobs", "cache/job-owners", "cache/references",
                 "logs"):
        assert mode(home / name) == 0o700, name
    assert open_folders(home) == {}
    assert mode(home / "logs" / "bridge.log") == 0o600


def test_the_model_manager_makes_its_folder_owner_only(tmp_path: Path):
    from bridge.models.manager import ModelManager
    from tests.models import tiny_models as tm

    weights = tm.save(tm.compact(), tmp_path / "w.pth")
    settings = load_settings()
    assert not settings.models_dir.exists()
    with umask(0):
        ModelManager(settings).import_file(weights, as_id="my-denoiser")
    assert mode(settings.models_dir) == 0o700
    assert (settings.models_dir / "manifest.json").is_file()


def test_reports_and_settings_folders_are_owner_only(tmp_path: Path):
    from bridge.dashboard import settings_file
    from bridge.qa.report import build, write_report

    settings = load_settings()
    out = tmp_path / "out"
    out.mkdir()
    with umask(0):
        write_report(build([], {"recipe_name": "r"}), out, out, settings.cache_dir)
        settings_file.save(settings.config_file, {"port": 7900})
    assert mode(settings.cache_dir / "reports") == 0o700
    assert mode(settings.config_dir) == 0o700


@pytest.fixture
def open_home(isolated_home: Path) -> Path:
    """The folders as a bridge before this fix left them under umask 022."""
    for name in ("config", "cache", "cache/jobs", "cache/job-owners", "cache/references",
                 "cache/reports", "logs", "models"):
        (isolated_home / name).mkdir(parents=True, exist_ok=True)
        (isolated_home / name).chmod(0o755)
    return isolated_home


def test_folders_left_open_are_made_owner_only_at_start_up(open_home: Path):
    from bridge.server.app import create_app

    create_app(load_settings(), token="t")
    assert open_folders(open_home / "config") == {}
    assert {name: mode(open_home / name) for name in ("config", "cache", "cache/jobs", "logs",
                                                     "models", "cache/reports")} == {
        name: 0o700 for name in ("config", "cache", "cache/jobs", "logs", "models",
                                 "cache/reports")}


def test_a_models_folder_the_user_chose_is_warned_about_not_changed(
        open_home: Path, tmp_path: Path, monkeypatch, caplog):
    from bridge.server.app import create_app

    shared = tmp_path / "studio-models"
    shared.mkdir()
    shared.chmod(0o755)
    (open_home / "config" / "config.toml").write_text(f'models_dir = "{shared}"\n')
    cache = tmp_path / "my-cache"
    cache.mkdir()
    cache.chmod(0o750)
    monkeypatch.setenv("RB_CACHE_DIR", str(cache))
    with caplog.at_level(logging.WARNING, logger="bridge.folders"):
        create_app(load_settings(), token="t")
    assert mode(shared) == 0o755 and mode(cache) == 0o750
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert str(shared) in warned and str(cache) in warned
    assert mode(open_home / "config") == 0o700  # the bridge's own still closed


def test_a_folder_named_on_the_command_line_is_the_users(open_home: Path, tmp_path: Path):
    settings = load_settings(models_dir=tmp_path / "m")
    assert settings.chosen_dirs == {"models_dir"}
    assert load_settings().chosen_dirs == frozenset()


def test_a_batch_leaves_its_output_folder_as_the_user_made_it(tmp_path: Path):
    from bridge.batch.run import run_batch
    from bridge.recipes import parse_recipe

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    out.chmod(0o755)
    (src / "a.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    recipe = parse_recipe('[output]\nformat = "png"\n[[steps]]\nop = "passthrough"\n')
    assert run_batch(src, recipe, out, workers=1, report=False).ok
    assert mode(out) == 0o755
