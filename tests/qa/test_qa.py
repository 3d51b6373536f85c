"""QA metrics with known answers, outlier rules, and the report files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import color, data

from bridge.imaging.image import Image
from bridge.qa.metrics import clipping, colour_distance, measure
from bridge.qa.outliers import RULES, flag, majority_flags, robust_z
from bridge.qa.report import build, render_html, write_report
from tests.batch.products import product_image


def test_mean_colour_of_a_flat_patch_is_its_lab():
    red = np.zeros((30, 40, 3), np.uint8)
    red[..., 0] = 255
    m = measure(Image(red))
    np.testing.assert_allclose(m["mean_lab"], color.rgb2lab(red[:1, :1] / 255.0)[0, 0], atol=0.05)
    assert m["margins"] is None and m["measured_on"] == "image"
    assert colour_distance([50, 0, 0], [53, 4, 0]) == 5.0


def test_clipping_counts_pixels_with_any_channel_at_the_ends():
    px = np.full((10, 10, 3), 100, np.uint16) * 257
    px[0, :5, 1] = 65535  # 5 highlights
    px[1, :3] = 0         # 3 shadows
    low, high = clipping(Image(px))
    assert (low, high) == (0.03, 0.05)
    rgba = np.dstack([px, np.full((10, 10), 65535, np.uint16)])
    rgba[1, :3, 3] = 0  # the black ones are transparent: they do not count
    low, high = clipping(Image(rgba))
    assert low == 0 and high == pytest.approx(5 / 97)


def test_sharpness_falls_with_blur_and_margins_follow_the_subject():
    sharp = measure(Image(data.astronaut()))["sharpness"]
    soft = measure(Image(cv2.GaussianBlur(data.astronaut(), (0, 0), 2)))["sharpness"]
    assert soft < 0.3 * sharp
    canvas = np.full((100, 200, 3), 255, np.uint8)
    canvas[20:70, 50:110] = (30, 90, 200)
    m = measure(Image(canvas))
    assert m["margins"] == {"left": 25.0, "top": 20.0, "right": 45.0, "bottom": 30.0,
                            "min": 20.0}
    assert m["measured_on"] == "subject"
    assert m["clipped_share"] == 0  # the white backdrop is not "blown out"
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[5:45, 10:40] = (10, 10, 10, 255)
    assert measure(Image(rgba))["margins"]["min"] == 10.0


def test_robust_flags():
    normal = {f"n{i}": 50 + d for i, d in enumerate([-1.0, 0.5, 0.2, -0.4, 0.9, -0.7, 0.1])}
    rule = next(r for r in RULES if r.metric == "lightness")
    assert flag(normal, rule) == {}
    flagged = flag({**normal, "dark": 30.0, "none": None}, rule)
    assert set(flagged) == {"dark"} and flagged["dark"]["z"] < -3.5
    # One-sided rules: a sharper image is not a problem.
    sharp_rule = next(r for r in RULES if r.metric == "sharpness")
    values = {f"s{i}": 100 + i for i in range(8)}
    assert flag({**values, "crisp": 400.0}, sharp_rule) == {}
    assert set(flag({**values, "soft": 20.0}, sharp_rule)) == {"soft"}
    # Differences too small to matter are not flagged even when the spread is tiny.
    tiny = {f"c{i}": 0.0001 * i for i in range(8)}
    clip_rule = next(r for r in RULES if r.metric == "clipped_share")
    assert flag({**tiny, "x": 0.003}, clip_rule) == {}
    assert set(flag({**tiny, "x": 0.05}, clip_rule)) == {"x"}
    # Too few images to know what is normal.
    assert flag({"a": 1.0, "b": 1.0, "c": 90.0}, rule) == {}
    # All equal but one: the mean deviation stands in for a zero MAD.
    same = {f"e{i}": 50.0 for i in range(9)}
    assert set(flag({**same, "odd": 60.0}, rule)) == {"odd"}
    assert robust_z([1, 1, 1])[1] == 0


def test_majority_flags():
    sizes = {"a": "2000x2000", "b": "2000x2000", "c": "1999x2000"}
    assert set(majority_flags(sizes, "size", "x")) == {"c"}
    assert majority_flags({"a": 1, "b": 2}, "depth", "x") == {}


def record(name: str, metrics: dict | None, status: str = "done") -> dict:
    return {"input": name, "output": name if metrics else None, "status": status,
            "metrics": metrics, "thumbs": {"before": None, "after": None},
            "error": None if metrics else {"message": "broken <file> & co"}}


def test_report_flags_outliers_against_a_reference_image(tmp_path):
    from bridge.imaging.codecs import write_image

    ref = tmp_path / "ref.png"
    write_image(Image(product_image(colour=(180, 40, 40))), ref)
    records = []
    for i in range(8):
        records.append(record(f"p{i}.jpg", measure(Image(product_image(colour=(178 + i, 40, 40),
                                                                       seed=i)))))
    records.append(record("blue.jpg", measure(Image(product_image(colour=(40, 40, 180))))))
    records.append(record("bad <1>.jpg", None, "failed"))
    report = build(records, {"recipe_name": "t", "in_dir": "in", "out_dir": "out"}, str(ref))
    rows = {r["input"]: r for r in report["images"]}
    assert report["reference"]["kind"] == "reference image"
    assert rows["p3.jpg"]["metrics"]["colour_distance"] < 3
    assert {f["metric"] for f in rows["blue.jpg"]["flags"]} >= {"colour_distance"}
    assert not any(rows[f"p{i}.jpg"]["flags"] for i in range(8))
    assert report["counts"] == {"done": 9, "failed": 1, "total": 10, "flagged": 1}
    html = render_html(report, tmp_path)
    assert "bad &lt;1&gt;.jpg" in html and "broken &lt;file&gt; &amp; co" in html
    assert "<1>" not in html
    assert 'class="flagged"' in html and 'class="failed"' in html


def test_report_files_and_the_dashboard_copy(tmp_path):
    thumbs = tmp_path / "thumbs"
    thumbs.mkdir()
    _, jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    (thumbs / "k-after.jpg").write_bytes(jpg.tobytes())
    rec = record("a.jpg", measure(Image(product_image())))
    rec["thumbs"] = {"before": "missing.jpg", "after": "k-after.jpg"}
    report = build([rec], {"recipe_name": "shop / web"})
    out = tmp_path / "out"
    out.mkdir()
    paths = write_report(report, out, thumbs, tmp_path / "cache")
    assert json.loads((out / "qa-report.json").read_text())["images"][0]["input"] == "a.jpg"
    html = (out / "qa-report.html").read_text()
    assert html.count("data:image/jpeg;base64,") == 1
    assert paths["cache_html"].startswith(str(tmp_path / "cache" / "reports"))
    assert "shop-web" in paths["cache_html"]
    assert (tmp_path / "cache" / "reports").joinpath(paths["cache_html"]).read_text() == html
    assert not list(out.glob(".*.tmp"))
