"""The dashboard in headless Chromium against the real bridge: what a person would see.

Screenshots go to test-artifacts/dashboard/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from tests.dashboard.cdp import CHROMIUM, Page, chromium_page
from tests.support.images import gradient, png_bytes
from tests.support.server import ROOT

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/system-deps.sh installs it)")

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"


def row(job_id: str) -> str:
    return f"document.querySelector('#jobs tr[data-job-id=\"{job_id}\"]')"


async def open_dashboard(page: Page, bridge) -> None:
    await page.goto(f"{bridge.url}/dashboard?token={bridge.token}")
    await page.wait_for("document.body.dataset.live === '1'")


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def test_a_job_appears_and_its_progress_moves(bridge_server):
    b = bridge_server

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            # The token left the address bar, and scripts cannot read the cookie.
            assert await page.eval("location.pathname + location.search") == "/dashboard"
            assert await page.eval("document.cookie") == ""

            reply = await in_thread(lambda: b.submit(
                "passthrough", png_bytes(gradient(320, 200)), {"delay_s": 3}))
            job = reply.json()["id"]
            await page.wait_for(f"!!{row(job)}", timeout=5)
            first = await page.wait_for(
                f"{row(job)}.dataset.state === 'running' && Number({row(job)}.dataset.progress) > 0"
                f" && Number({row(job)}.dataset.progress) < 0.6"
                f" && Number({row(job)}.dataset.progress)", timeout=5)
            await page.screenshot(ARTIFACTS / "job-running.png")
            later = await page.wait_for(
                f"Number({row(job)}.dataset.progress) >= {first} + 0.25"
                f" && Number({row(job)}.dataset.progress)", timeout=5)
            assert later > first
            width = await page.eval(f"parseFloat({row(job)}.querySelector('.bar > i').style.width)")
            assert abs(width - round(later * 100)) <= 5  # the bar a person sees moved too
            await page.wait_for(f"{row(job)}.dataset.state === 'done'", timeout=10)
            await page.wait_for(
                f"document.querySelector('.thumb[data-job-id=\"{job}\"] img')?.naturalWidth > 0",
                timeout=10)
            await page.wait_for("document.querySelector('#log').textContent"
                                ".includes('dashboard opened')", timeout=5)
            await page.screenshot(ARTIFACTS / "job-done.png")
            assert not [c for c in page.console if c.startswith("EXCEPTION")], page.console

    asyncio.run(scenario())


def test_pause_button_holds_the_queue_and_cancel_stops_a_job(bridge_server):
    b = bridge_server

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.wait_for("!document.querySelector('#pause-btn').disabled")
            await page.click("#pause-btn")
            await page.wait_for("document.body.dataset.paused === '1'", timeout=5)
            assert (await in_thread(b.get, "/v1/queue")).json()["paused"] is True
            job = (await in_thread(lambda: b.submit(
                "passthrough", png_bytes(gradient(32, 32)), {"delay_s": 30}))).json()["id"]
            await page.wait_for(f"{row(job)}?.dataset.state === 'queued'", timeout=5)
            assert await page.eval("document.querySelector('#pause-btn').textContent") == \
                "Resume queue"
            await page.screenshot(ARTIFACTS / "queue-paused.png")
            await page.click("#pause-btn")
            await page.wait_for(f"{row(job)}.dataset.state === 'running'", timeout=5)
            await page.eval(f"{row(job)}.querySelector('button').click()")
            await page.wait_for(f"{row(job)}.dataset.state === 'cancelled'", timeout=10)
            assert (await in_thread(b.get, f"/v1/jobs/{job}")).json()["state"] == "cancelled"

    try:
        asyncio.run(scenario())
    finally:
        b.request("POST", "/v1/queue/resume")


def test_settings_form_saves_and_says_what_needs_a_restart(bridge_server):
    b = bridge_server
    config = b.home / "config" / "config.toml"

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.click("#tab-settings")
            await page.wait_for(f"document.querySelector('#set-port').value === '{b.port}'")
            # The browser itself refuses a port below 1024 (the field's min): no request.
            await page.eval("(() => { const i = document.querySelector('#set-port');"
                            " i.value = '80'; i.dispatchEvent(new Event('input')); })()")
            assert not await page.eval("document.querySelector('#settings-form').checkValidity()")
            # The server refuses what only it can judge, and the page says which field.
            await page.eval("(() => { const i = document.querySelector('#set-models-dir');"
                            f" i.value = 'relative/dir'; document.querySelector('#set-port').value"
                            f" = '{b.port}'; i.dispatchEvent(new Event('input')); }})()")
            await page.click("#settings-save")
            await page.wait_for("document.querySelector('#settings-msg').className"
                                ".includes('err')", timeout=5)
            assert "absolute" in await page.eval(
                "document.querySelector('#settings-msg').textContent")
            assert await page.eval("document.querySelector('#set-models-dir').classList"
                                   ".contains('invalid')")
            assert not config.exists() or "relative" not in config.read_text()
            models_dir = (await in_thread(b.get, "/v1/settings")).json()["running"]["models_dir"]
            await page.eval("(() => { const i = document.querySelector('#set-budget');"
                            " i.value = '6144'; document.querySelector('#set-models-dir').value = "
                            f"{json.dumps(models_dir)}; i.dispatchEvent(new Event('input')); }})()")
            await page.click("#settings-save")
            msg = await page.wait_for(
                "document.querySelector('#settings-msg').className.includes('ok') && "
                "document.querySelector('#settings-msg').textContent", timeout=5)
            assert "restart" in msg.lower() and "memory_budget_mb" in msg
            assert not await page.eval("document.querySelector('#restart-badge').hidden")
            await page.screenshot(ARTIFACTS / "settings-saved.png")
            assert tomllib.loads(config.read_text())["memory_budget_mb"] == 6144

    try:
        asyncio.run(scenario())
    finally:
        b.request("PUT", "/v1/settings", json.dumps({"memory_budget_mb": 0}).encode(),
                  headers={"Content-Type": "application/json"})


def test_a_port_away_from_7847_warns_that_the_panel_cannot_follow(bridge_server):
    b = bridge_server
    warnings = "document.querySelector('#settings-warnings')"

    async def save_port(page: Page, port: int) -> None:
        await page.eval("(() => { const i = document.querySelector('#set-port');"
                        f" i.value = '{port}'; i.dispatchEvent(new Event('input')); }})()")
        await page.click("#settings-save")
        await page.wait_for("document.querySelector('#settings-msg').className.includes('ok')",
                            timeout=5)

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.click("#tab-settings")
            await page.wait_for(f"document.querySelector('#set-port').value === '{b.port}'")
            await save_port(page, 7847)
            await page.wait_for(f"{warnings}.hidden", timeout=5)
            await save_port(page, 9123)
            text = await page.wait_for(f"!{warnings}.hidden && {warnings}.textContent",
                                       timeout=5)
            assert "Photoshop panel only connects on port 7847" in text
            assert "Lightroom" in text and "http://127.0.0.1:9123" in text
            assert await page.eval(f"{warnings}.getBoundingClientRect().height") > 0
            await page.screenshot(ARTIFACTS / "settings-port-warning.png")
            # The warning is there on a fresh load too, not only after saving.
            await open_dashboard(page, b)
            await page.click("#tab-settings")
            await page.wait_for(f"!{warnings}.hidden", timeout=5)

    try:
        asyncio.run(scenario())
    finally:
        b.request("PUT", "/v1/settings", json.dumps({"port": b.port}).encode(),
                  headers={"Content-Type": "application/json"})


def test_reports_tab_links_to_a_batch_qa_report(bridge_server, tmp_path):
    from bridge.imaging.image import Image
    from bridge.qa.metrics import measure
    from bridge.qa.report import build, write_report

    b = bridge_server
    records = [{"input": f"{name}.png", "output": f"{name}.jpg", "status": "done",
                "metrics": measure(Image(gradient(64 + i, 48)))}
               for i, name in enumerate(("front", "back"))]
    written = write_report(build(records, {"recipe_name": "shop white"}), tmp_path, tmp_path,
                           b.home / "cache")
    html_name, json_name = Path(written["cache_html"]).name, Path(written["cache_json"]).name

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.click("#tab-reports")
            await page.wait_for("!document.querySelector('#page-reports').hidden")
            links = await page.wait_for(
                "document.querySelectorAll('#reports li a').length === 2 && "
                "[...document.querySelectorAll('#reports li a')]"
                ".map(a => [a.textContent, a.href, a.target])", timeout=5)
            assert sorted(text for text, _, _ in links) == sorted([html_name, json_name])
            for text, href, target in links:
                assert href == f"{b.url}/v1/reports/{text}" and target == "_blank"
            assert await page.eval("document.querySelector('#reports-count').textContent") == "2"
            assert await page.eval("document.querySelector('#reports-empty').hidden")
            await page.screenshot(ARTIFACTS / "reports.png")
            # The link serves the report to this browser (the dashboard's session, no token
            # in the address): the HTML page a person would open.
            href = next(h for text, h, _ in links if text == html_name)
            await page.goto(href)
            await page.wait_for("document.readyState === 'complete'")
            assert await page.eval("document.title") == "QA: shop white"
            assert await page.eval("document.querySelectorAll('tbody tr').length") == 2
            served = await page.eval(f"fetch({json.dumps(f'/v1/reports/{json_name}')})"
                                     ".then(r => r.json()).then(j => j.counts.total)")
            assert served == 2

    asyncio.run(scenario())


def test_screenshot_paths_are_under_test_artifacts():
    # The artefacts folder is ignored by git: screenshots never end up in a commit.
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "test-artifacts/" in ignored and Path(ARTIFACTS).is_relative_to(ROOT / "test-artifacts")
