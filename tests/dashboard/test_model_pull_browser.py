"""Model downloads from the dashboard, in headless Chromium against the real bridge.

The bridge reads a mirror registry (RB_MODEL_REGISTRY, the model manager's override)
whose entries point at a local HTTP server started here; it sends slowly, so the
progress a person watches has time to move.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Iterator

import pytest

from bridge.models.registry import builtin_registry
from tests.dashboard.cdp import CHROMIUM, chromium_page
from tests.dashboard.slow_files import slow_file_server
from tests.dashboard.test_dashboard_browser import ARTIFACTS, open_dashboard
from tests.support.server import running_bridge

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/system-deps.sh installs it)")

SLOW_MODEL = "realesr-animevideov3"
BAD_MODEL = "realesr-general-x4v3"
PAYLOAD = bytes(range(256)) * (6 * 4096)  # 6 MiB: six of the downloader's 1 MiB reads


@pytest.fixture(scope="module")
def mirror_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    files = {"anime.pth": PAYLOAD, "general.pth": b"not the file the registry names"}
    with slow_file_server(files) as base:
        home = tmp_path_factory.mktemp("mirror-home")
        registry = home / "mirror.json"
        registry.write_text(json.dumps({"models": mirror_entries(base)}))
        with running_bridge(home, env={"RB_MODEL_REGISTRY": str(registry)}) as b:
            yield b


def mirror_entries(base: str) -> list[dict]:
    """The built-in registry with two entries pointing at the local server."""
    entries = []
    for entry in builtin_registry():
        if entry.id == SLOW_MODEL:
            entry = dataclasses.replace(entry, url=f"{base}/anime.pth", md5=None,
                                        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                                        size=len(PAYLOAD))
        elif entry.id == BAD_MODEL:
            entry = dataclasses.replace(entry, url=f"{base}/general.pth", md5=None, size=None,
                                        sha256=hashlib.sha256(b"the real weights").hexdigest())
        entries.append(entry.to_json())
    return entries


def model(model_id: str) -> str:
    return f"document.querySelector('#models li[data-model-id=\"{model_id}\"]')"


def test_a_model_pull_shows_progress_until_installed(mirror_bridge):
    b = mirror_bridge

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.wait_for(f"{model(SLOW_MODEL)}?.dataset.state === 'missing'")
            await page.eval(f"{model(SLOW_MODEL)}.querySelector('button').click()")
            first = await page.wait_for(
                f"{model(SLOW_MODEL)}.dataset.state === 'downloading'"
                f" && Number({model(SLOW_MODEL)}.dataset.received) > 0"
                f" && Number({model(SLOW_MODEL)}.dataset.received) < {len(PAYLOAD)}"
                f" && Number({model(SLOW_MODEL)}.dataset.received)", timeout=10)
            shown = await page.eval(f"{model(SLOW_MODEL)}.querySelector('small').textContent")
            assert "/ 6.0 MB" in shown  # received / total, as a person reads it
            await page.screenshot(ARTIFACTS / "model-downloading.png")
            later = await page.wait_for(
                f"Number({model(SLOW_MODEL)}.dataset.received) > {first}"
                f" && Number({model(SLOW_MODEL)}.dataset.received)", timeout=10)
            assert later > first
            await page.wait_for(f"{model(SLOW_MODEL)}.dataset.state === 'installed'", timeout=20)
            assert "installed" in await page.eval(f"{model(SLOW_MODEL)}.textContent")
            assert await page.eval("document.querySelector('#models-count').textContent") == \
                f"1/{len(builtin_registry())}"
            await page.screenshot(ARTIFACTS / "model-installed.png")

    asyncio.run(scenario())
    states = {m["id"]: m for m in b.get("/v1/models").json()["models"]}
    assert states[SLOW_MODEL]["state"] == "installed"
    path = b.home / "models" / builtin_registry().get(SLOW_MODEL).filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(PAYLOAD).hexdigest()


def test_a_failed_pull_is_shown_and_the_model_stays_missing(mirror_bridge):
    b = mirror_bridge

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.wait_for(f"{model(BAD_MODEL)}?.dataset.state === 'missing'")
            await page.eval(f"{model(BAD_MODEL)}.querySelector('button').click()")
            toast = await page.wait_for(
                "!document.querySelector('#toast').hidden && "
                "document.querySelector('#toast').textContent", timeout=15)
            assert BAD_MODEL in toast and "failed" in toast
            await page.wait_for(f"{model(BAD_MODEL)}?.dataset.state === 'missing'", timeout=10)
            await page.screenshot(ARTIFACTS / "model-pull-failed.png")

    asyncio.run(scenario())
    states = {m["id"]: m["state"] for m in b.get("/v1/models").json()["models"]}
    assert states[BAD_MODEL] == "missing"


def test_default_models_offer_the_registry_per_task(mirror_bridge):
    b = mirror_bridge

    async def scenario() -> None:
        async with chromium_page(1280, 800) as page:
            await open_dashboard(page, b)
            await page.click("#tab-settings")
            await page.wait_for("document.querySelectorAll('#default-models select').length > 0")
            tasks = await page.eval("[...document.querySelectorAll('#default-models select')]"
                                    ".map(s => s.dataset.task)")
            assert set(tasks) == {e.task for e in builtin_registry()}
            await page.eval("(() => { const s = document.querySelector("
                            "'#default-models select[data-task=\"upscale\"]');"
                            f" s.value = '{SLOW_MODEL}'; s.dispatchEvent(new Event('input',"
                            " {bubbles: true})); })()")
            await page.click("#settings-save")
            await page.wait_for("document.querySelector('#settings-msg').className"
                                ".includes('ok')", timeout=5)
            await page.screenshot(ARTIFACTS / "settings-default-models.png")

    asyncio.run(scenario())
    saved = b.get("/v1/settings").json()
    assert saved["saved"]["default_models"] == {"upscale": SLOW_MODEL}
    assert "default_models" in saved["pending_restart"]
    r = b.request("PUT", "/v1/settings", json.dumps(
        {"default_models": {"upscale": "CodeFormer"}}).encode(),
        headers={"Content-Type": "application/json"})
    assert r.status == 400 and "is for restore-faces" in r.json()["error"]["message"]
