"""Batches end to end on real files: outputs, failures, resume, the QA report, the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from bridge.batch.progress import Progress
from bridge.batch.run import run_batch
from bridge.config import load_settings
from bridge.imaging.codecs import probe, read_image
from bridge.recipes import load_recipe, parse_recipe
from tests.batch.products import photo_product, product_image

ROOT = Path(__file__).resolve().parents[2]
SHOP = """
name = "shop"
[output]
format = "jpeg"
quality = 90
[[steps]]
op = "color-match"
white_balance = "grey-world"
[[steps]]
op = "standardize"
matte = "border-color"
canvas_width = 96
canvas_height = 96
margin = 8
"""


def save_rgb(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))


def hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def outputs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".retouch-batch" not in p.parts
                  and not p.name.startswith("qa-report"))


@pytest.fixture
def shoot(tmp_path):
    """Product shots, a real photo, a 16-bit TIFF, a soft one, a corrupt and an empty one."""
    src = tmp_path / "shoot"
    for i in range(8):
        colour = (150 + 10 * i, 50, 60)
        save_rgb(src / f"p{i:02d}.jpg", product_image(120, 90, colour=colour, seed=i))
    save_rgb(src / "sub" / "photo.png", photo_product())
    tifffile.imwrite(src / "sub" / "deep16.tif",
                     product_image(120, 90, seed=9).astype(np.uint16) * 257)
    soft = cv2.GaussianBlur(product_image(120, 90, seed=10), (0, 0), 3.0)
    save_rgb(src / "soft.png", soft)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    save_rgb(src / "blank.png", np.full((40, 40, 3), 200, np.uint8))
    recipe = tmp_path / "shop.toml"
    recipe.write_text(SHOP)
    return src, recipe


def test_batch_writes_everything_reports_failures_and_resumes(shoot, tmp_path, isolated_home):
    src, recipe_path = shoot
    before = hashes(src)
    out = tmp_path / "out"
    recipe = load_recipe(recipe_path)
    summary = run_batch(src, recipe, out, workers=2)
    assert summary.total == 13 and summary.done == 11
    failed = dict(summary.failed)
    assert set(failed) == {"broken.jpg", "blank.png"}
    assert "no subject" in failed["blank.png"]
    assert hashes(src) == before  # inputs untouched
    names = outputs(out)
    assert len(names) == 11 and "sub/deep16.jpg" in names and "p00.jpg" in names
    for name in names:
        fmt, extent = probe((out / name).read_bytes())
        assert (fmt, extent.width, extent.height) == ("jpeg", 96, 96)
    assert not [p for p in out.rglob("*.tmp")]

    # The QA report: JSON, self-contained HTML, a copy for the dashboard.
    report = json.loads((out / "qa-report.json").read_text())
    rows = {r["input"]: r for r in report["images"]}
    assert report["counts"] == {"done": 11, "failed": 2, "total": 13,
                                "flagged": report["counts"]["flagged"]}
    assert rows["broken.jpg"]["status"] == "failed" and rows["broken.jpg"]["error"]["message"]
    m = rows["p03.jpg"]["metrics"]
    assert (m["width"], m["height"], m["depth"]) == (96, 96, 8)
    assert m["measured_on"] == "subject" and abs(m["margins"]["min"] - 8) <= 2
    assert m["colour_distance"] >= 0 and report["reference"]["kind"] == "batch median"
    flagged = {r["input"]: r["flags"] for r in report["images"] if r["flags"]}
    assert "sharpness" in {f["metric"] for f in flagged.get("soft.png", [])}, flagged
    assert not {k for k in flagged if k.startswith("p0")} - {"p00.jpg", "p07.jpg"}
    html = (out / "qa-report.html").read_text()
    assert html.count("data:image/jpeg;base64,") >= 22 and "soft.png" in html
    cached = list((load_settings().cache_dir / "reports").glob("*.html"))
    assert len(cached) == 1 and cached[0].read_text() == html

    # Resume: nothing done is redone; the failures are tried again.
    stamps = {n: (out / n).stat().st_mtime_ns for n in names}
    again = run_batch(src, recipe, out, workers=2)
    assert (again.done, again.skipped, len(again.failed)) == (0, 11, 2)
    assert {n: (out / n).stat().st_mtime_ns for n in names} == stamps
    # A changed input is redone, and only that one.
    save_rgb(src / "p02.jpg", product_image(120, 90, colour=(30, 30, 200), seed=2))
    third = run_batch(src, recipe, out, workers=1)
    assert (third.done, third.skipped) == (1, 10)
    # A changed recipe redoes everything.
    changed = parse_recipe(SHOP.replace("margin = 8", "margin = 12"))
    fourth = run_batch(src, changed, out, workers=2, report=False)
    assert (fourth.done, fourth.skipped) == (11, 0)
    assert outputs(out) == names
    journal = [json.loads(x) for x in (out / ".retouch-batch" / "journal.jsonl").read_text()
               .splitlines()]
    assert sum(1 for r in journal if r["type"] == "file") == 13  # compacted: one per input


def test_force_redoes_and_png_keeps_sixteen_bits(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "a.tif", product_image(64, 48).astype(np.uint16) * 257)
    recipe = parse_recipe('{"output": {"format": "png"}, "steps": [{"op": "color-match",'
                          ' "exposure": "auto"}]}')
    out = tmp_path / "out"
    assert run_batch(src, recipe, out, workers=1, report=False).done == 1
    assert read_image(out / "a.png").depth == 16
    assert run_batch(src, recipe, out, workers=1, force=True, report=False).done == 1


def test_transparency_is_flattened_for_jpeg(tmp_path):
    src = tmp_path / "in"
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 10:30] = (200, 30, 30, 255)
    src.mkdir()
    cv2.imwrite(str(src / "cut.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    recipe = parse_recipe('{"output": {"format": "jpeg", "background": "#000000"},'
                          ' "steps": [{"op": "passthrough"}]}')
    out = tmp_path / "out"
    summary = run_batch(src, recipe, out, workers=1)
    assert summary.done == 1
    px = read_image(out / "cut.jpg").pixels
    assert px[0, 0].max() < 10 and px[20, 20, 0] > 150
    report = json.loads((out / "qa-report.json").read_text())
    assert any("flattened" in w for w in report["images"][0]["warnings"])


def test_a_crashed_worker_is_replaced_and_its_files_retried(tmp_path):
    src = tmp_path / "in"
    for i in range(16):
        save_rgb(src / f"f{i:02d}.png", product_image(48, 36, seed=i))
    recipe = parse_recipe('{"steps": [{"op": "passthrough", "delay_s": 0.1}]}')
    out = tmp_path / "out"
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        s=run_batch(src, recipe, out, workers=2, report=False)))
    runner.start()
    journal = out / ".retouch-batch" / "journal.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"type":"file"') >= 2:
            break
        time.sleep(0.01)
    victims = [p for p in multiprocessing.active_children() if p.name.startswith("rb-batch-")]
    assert victims
    os.kill(victims[0].pid, signal.SIGKILL)
    runner.join(60)
    summary = result["s"]
    assert summary.done == 16 and not summary.failed
    assert len(outputs(out)) == 16


def test_progress_bar_on_a_terminal_and_lines_elsewhere():
    tty = io.StringIO()
    bar = Progress(tty, tty=True)
    bar.start(10, 2)
    for i in range(8):
        bar.update({"status": "done" if i != 3 else "failed", "input": f"x{i}",
                    "error": {"message": "bad"}})
    text = tty.getvalue()
    assert "\r" in text and "8/8 (1 failed)" in text and "img/s" in text and "ETA" in text
    assert "[" + "#" * 28 + "]" in text and "failed: x3: bad" in text
    plain = io.StringIO()
    lines = Progress(plain, tty=False)
    lines.start(100, 0)
    for _ in range(100):
        lines.update({"status": "done"})
    out = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and 10 <= len(out) <= 13
    assert out[-1].startswith("batch: 100/100 (0 failed)")


def cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_command_line(shoot, tmp_path, isolated_home):
    src, recipe = shoot
    out = tmp_path / "cli-out"
    r = cli("batch", str(src), "-r", str(recipe), "-o", str(out), "--workers", "2",
            home=isolated_home)
    assert r.returncode == 1, r.stderr  # two files failed
    assert "batch: 13 of 13 files to process" in r.stderr
    assert "img/s" in r.stderr and "ETA" in r.stderr
    assert "11 done, 0 skipped (already done), 2 failed, of 13 files" in r.stdout
    assert "failed: broken.jpg" in r.stdout and "QA report:" in r.stdout
    r = cli("batch", str(src), "-r", str(recipe), "-o", str(out), "--json", "-q",
            home=isolated_home)
    summary = json.loads(r.stdout)
    assert summary["skipped"] == 11 and len(summary["failed"]) == 2
    v = cli("recipe", "validate", str(recipe), home=isolated_home)
    assert v.returncode == 0 and "2 step(s)" in v.stdout and "standardize" in v.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[steps]]\nop = "standardize"\nmargin = 80\n')
    v = cli("recipe", "validate", str(bad), home=isolated_home)
    assert v.returncode == 2 and "step 1 (standardize): parameter 'margin'" in v.stderr
    one = tmp_path / "one.png"
    r = cli("recipe", "run", str(recipe), str(src / "p01.jpg"), "-o", str(one),
            home=isolated_home)
    assert r.returncode == 0, r.stderr
    assert read_image(one).extent.width == 96
    r = cli("batch", str(tmp_path / "nowhere"), "-r", str(recipe), "-o", str(out),
            home=isolated_home)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_the_dashboard_lists_and_serves_the_report(tmp_path, isolated_home):
    from tests.support.server import running_bridge

    src = tmp_path / "in"
    for i in range(2):
        save_rgb(src / f"p{i}.jpg", product_image(64, 48, seed=i))
    summary = run_batch(src, parse_recipe(SHOP), tmp_path / "out", workers=1)
    name = Path(summary.report["cache_html"]).name
    with running_bridge(isolated_home) as bridge:
        listed = bridge.get("/v1/reports").json()["reports"]
        assert name in [r["name"] for r in listed]
        page = bridge.get(f"/v1/reports/{name}")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert b"QA report: shop" in page.body
