"""The QA report of a batch: JSON for tools, one self-contained HTML page for people.

Written to OUT_DIR (qa-report.json, qa-report.html) and copied to
<cache_dir>/reports/ where the dashboard lists reports. The HTML carries its
thumbnails inline, so the copy works on its own.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from bridge.private_dirs import make_dir
from bridge.qa.metrics import colour_distance
from bridge.qa.outliers import RULES, flag, majority_flags

REPORT_JSON = "qa-report.json"
REPORT_HTML = "qa-report.html"


def reference_colour(reference: str | None, records: list[dict[str, Any]]
                     ) -> dict[str, Any] | None:
    """The colour every image is compared with: the recipe's reference image, else the
    batch's median colour."""
    if reference:
        try:
            from bridge.imaging.codecs import read_image
            from bridge.qa.metrics import measure

            lab = measure(read_image(reference))["mean_lab"]
            return {"kind": "reference image", "path": reference, "mean_lab": lab}
        except Exception as e:  # the report still helps without it
            return {"kind": "unavailable", "path": reference, "error": str(e), "mean_lab": None}
    labs = [r["metrics"]["mean_lab"] for r in records if r.get("metrics")]
    if not labs:
        return None
    import numpy as np

    med = [round(float(v), 3) for v in np.median(np.asarray(labs), axis=0)]
    return {"kind": "batch median", "mean_lab": med}


def build(records: list[dict[str, Any]], info: dict[str, Any],
          reference: str | None = None) -> dict[str, Any]:
    """The report's data: per-image rows with metrics and flags, and the batch's summary."""
    ref = reference_colour(reference, records)
    rows: list[dict[str, Any]] = []
    for rec in sorted(records, key=lambda r: r["input"]):
        m = dict(rec.get("metrics") or {})
        if m and ref and ref.get("mean_lab"):
            m["colour_distance"] = colour_distance(m["mean_lab"], ref["mean_lab"])
        if m:
            m["margin_min"] = (m.get("margins") or {}).get("min")
        rows.append({"input": rec["input"], "output": rec.get("output"),
                     "status": rec.get("status"), "error": rec.get("error"),
                     "seconds": rec.get("seconds"), "warnings": rec.get("warnings") or [],
                     "metrics": m, "thumbs": rec.get("thumbs") or {}, "flags": []})
    done = {r["input"]: r for r in rows if r["status"] == "done" and r["metrics"]}
    for rule in RULES:
        values = {k: r["metrics"].get(rule.metric) for k, r in done.items()}
        for key, f in flag(values, rule).items():
            done[key]["flags"].append(f)
    sizes = {k: f"{r['metrics']['width']}x{r['metrics']['height']}" for k, r in done.items()}
    for key, f in majority_flags(sizes, "size", "size differs from most outputs").items():
        done[key]["flags"].append(f)
    depths = {k: r["metrics"]["depth"] for k, r in done.items()}
    for key, f in majority_flags(depths, "depth", "bit depth differs from most outputs").items():
        done[key]["flags"].append(f)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", "failed")}
    return {
        "version": 1,
        "created": time.time(),
        "batch": info,
        "reference": ref,
        "counts": {**counts, "total": len(rows),
                   "flagged": sum(1 for r in rows if r["flags"])},
        "rules": [{"metric": r.metric, "side": r.side, "min_difference": r.min_difference,
                   "relative": r.relative} for r in RULES],
        "images": rows,
    }


# -- HTML -------------------------------------------------------------------------
_STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} .sub{color:#666;margin-bottom:16px}
table{border-collapse:collapse;width:100%} th,td{padding:6px 8px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:middle} th{background:#f4f4f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:128px;max-height:128px;display:block;
background:repeating-conic-gradient(#ddd 0 25%,#fff 0 50%) 0 0/12px 12px}
tr.flagged{background:#fff4e0} tr.failed{background:#fde8e8} td.bad{color:#b00;font-weight:600}
.flag{display:block;color:#a55a00} .err{color:#b00}
label{display:inline-block;margin:8px 0 12px}
"""
_SCRIPT = """
document.getElementById('only').addEventListener('change', e => {
  for (const tr of document.querySelectorAll('tbody tr'))
    tr.style.display = e.target.checked && !tr.matches('.flagged,.failed') ? 'none' : '';
});
"""


def _img(thumb_dir: Path, name: str | None) -> str:
    if not name:
        return "<td></td>"
    try:
        data = (thumb_dir / name).read_bytes()
    except OSError:
        return "<td></td>"
    mime = "image/png" if name.endswith(".png") else "image/jpeg"
    return f'<td><img alt="" src="data:{mime};base64,{base64.b64encode(data).decode()}"></td>'


def _num(value: Any, fmt: str, bad: bool = False) -> str:
    text = "" if value is None else format(value, fmt)
    return f'<td class="num{" bad" if bad else ""}">{text}</td>'


def render_html(report: dict[str, Any], thumb_dir: Path) -> str:
    e = html.escape
    b = report["batch"]
    c = report["counts"]
    ref = report.get("reference") or {}
    ref_text = ref.get("kind", "none")
    if ref.get("path"):
        ref_text += f" ({Path(ref['path']).name})"
    rows = []
    for r in report["images"]:
        m = r["metrics"]
        flagged = {f["metric"] for f in r["flags"]}
        cls = "failed" if r["status"] == "failed" else ("flagged" if r["flags"] else "")
        notes = "".join(f'<span class="flag">⚑ {e(str(f["reason"]))} '
                        f'({e(str(f["metric"]))}: {e(str(f["value"]))})</span>' for f in r["flags"])
        if r["error"]:
            notes += f'<span class="err">{e(r["error"].get("message", "failed"))}</span>'
        notes += "".join(f'<span class="flag">{e(w)}</span>' for w in r["warnings"])
        size = f"{m['width']}×{m['height']}" if m else ""
        rows.append(
            f'<tr class="{cls}">{_img(thumb_dir, r["thumbs"].get("before"))}'
            f'{_img(thumb_dir, r["thumbs"].get("after"))}'
            f'<td>{e(r["input"])}<br><small>{e(r["output"] or "")}</small></td>'
            f'<td class="{"bad" if "size" in flagged else ""}">{size}</td>'
            f'{_num(m.get("depth"), "d", "depth" in flagged)}'
            f'{_num(m.get("colour_distance"), ".1f", "colour_distance" in flagged)}'
            f'{_num(None if not m else 100 * m["clipped_share"], ".2f", "clipped_share" in flagged)}'
            f'{_num(m.get("sharpness"), ".0f", "sharpness" in flagged)}'
            f'{_num(m.get("margin_min"), ".1f", "margin_min" in flagged)}'
            f'{_num(m.get("lightness"), ".1f", "lightness" in flagged)}'
            f"<td>{notes}</td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>QA: {e(str(b.get('recipe_name', 'batch')))}</title>
<style>{_STYLE}</style></head><body>
<h1>QA report: {e(str(b.get('recipe_name', 'batch')))}</h1>
<div class="sub">{e(str(b.get('in_dir', '')))} → {e(str(b.get('out_dir', '')))} ·
{c['done']} done, {c['failed']} failed, {c['flagged']} flagged of {c['total']} ·
colour reference: {e(ref_text)} · {time.strftime('%Y-%m-%d %H:%M', time.localtime(report['created']))}</div>
<label><input type="checkbox" id="only"> only flagged and failed</label>
<table><thead><tr><th>before</th><th>after</th><th>file</th><th>size</th><th>depth</th>
<th>ΔE to ref.</th><th>clipped %</th><th>sharpness</th><th>margin %</th><th>L*</th><th>notes</th>
</tr></thead><tbody>
{''.join(rows)}
</tbody></table><script>{_SCRIPT}</script></body></html>
"""


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("x", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_report(report: dict[str, Any], out_dir: Path, thumb_dir: Path,
                 cache_dir: Path | None) -> dict[str, str]:
    """Write the JSON and HTML into OUT_DIR and a copy into <cache_dir>/reports/."""
    text_json = json.dumps(report, indent=1, default=str)
    text_html = render_html(report, thumb_dir)
    paths = {"json": out_dir / REPORT_JSON, "html": out_dir / REPORT_HTML}
    _atomic_write(paths["json"], text_json)
    _atomic_write(paths["html"], text_html)
    out = {k: str(v) for k, v in paths.items()}
    if cache_dir is not None:
        reports = cache_dir / "reports"
        make_dir(reports)
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", str(report["batch"].get("recipe_name", "batch")))
        stem = time.strftime("%Y%m%d-%H%M%S", time.localtime(report["created"])) + "-" + slug[:40]
        _atomic_write(reports / f"{stem}.json", text_json)
        _atomic_write(reports / f"{stem}.html", text_html)
        out["cache_html"] = str(reports / f"{stem}.html")
        out["cache_json"] = str(reports / f"{stem}.json")
    return out
