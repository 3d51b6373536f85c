"""`retouch-bridge tray` as a person meets it, on a real (virtual) desktop: Xvfb, a D-Bus
session, trayer as the tray host, the real pywebview window and pystray icon, clicked
with xdotool. Screenshots go to test-artifacts/tray/.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.support.images import gradient, png_bytes
from tests.support.server import ROOT, Bridge, free_port

ARTIFACTS = ROOT / "test-artifacts" / "tray"


def _window_toolkit() -> str | None:
    probe = ("from bridge.tray.backends import webview_gui; import os; "
             "os.environ.setdefault('DISPLAY', ':0'); print(webview_gui())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() != "None" else None


needs_webview = pytest.mark.skipif(
    _window_toolkit() is None,
    reason="pywebview has no GUI toolkit here: needs PyGObject + WebKit2GTK (Debian "
           "gir1.2-webkit2-4.1) or Qt WebEngine")


@dataclass
class Tray:
    proc: subprocess.Popen[str]
    bridge: Bridge
    report: Path
    browser_log: Path
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    def wait_output(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tray never said {needle!r}:\n{self.text()[-4000:]}")
            time.sleep(0.05)

    def count(self, needle: str) -> int:
        return self.text().count(needle)


def browser_recorder(tmp_path: Path) -> tuple[str, Path]:
    """A stand-in for the user's browser (BROWSER=...): records the URLs it is asked to open."""
    log = tmp_path / "browser.log"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{script} %s", log


def opener_recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in xdg-open, first on PATH: records what the desktop was asked to show."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "opened.log"
    script = bin_dir / "xdg-open"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir, log


def start_tray(desktop, tmp_path: Path, *args: str) -> Tray:
    home = tmp_path / "home"
    port = free_port()
    report = tmp_path / "exit-report.json"
    browser, browser_log = browser_recorder(tmp_path)
    bin_dir, _ = opener_recorder(tmp_path)
    env = {**desktop.env, "RB_HOME": str(home), "PYTHONUNBUFFERED": "1", "BROWSER": browser,
           "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           # Start at login writes here, never into the real home.
           "HOME": str(tmp_path / "user"), "XDG_CONFIG_HOME": str(tmp_path / "user" / "config")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "tray", "--port", str(port), "--exit-report",
         str(report), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    output: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    tray = Tray(proc, Bridge(f"http://127.0.0.1:{port}", port, "", home, proc, output),  # type: ignore[arg-type]
                report, browser_log, output)
    tray.wait_output("listening on")
    tray.bridge.token = (home / "config" / "token").read_text().strip()
    return tray


def stop(tray: Tray) -> None:
    if tray.proc.poll() is None:
        tray.proc.kill()
        tray.proc.wait(10)


def click(desktop, x: int, y: int, button: int) -> None:
    desktop.run("xdotool", "mousemove", str(x), str(y), "click", str(button))


def blue_pixels(path: Path) -> int:
    """Pixels of the dashboard's accent blue (running progress bar, busy icon)."""
    px = np.asarray(PILImage.open(path).convert("RGB"), np.int16)
    target = np.array([77, 155, 255], np.int16)
    return int((np.abs(px - target).sum(axis=2) < 40).sum())


@needs_webview
def test_tray_opens_its_dashboard_shows_busy_and_quits_from_its_menu(desktop, tmp_path):
    tray = start_tray(desktop, tmp_path, "--hidden", "--quit-grace", "15")
    b = tray.bridge
    try:
        tray.wait_output("tray: icon shown")
        assert desktop.visible_windows("Retouch Bridge") == []  # --hidden: tray only
        deadline = time.monotonic() + 10
        while (area := desktop.tray_area())[2] < 16:  # trayer widens as the icon docks
            assert time.monotonic() < deadline, "the icon did not dock in the tray host"
            time.sleep(0.1)
        x, y, w, h = area
        icon = (x + w // 2, y + h // 2)

        click(desktop, *icon, 1)  # a left click runs the default item: Open dashboard
        tray.wait_output("tray: dashboard window shown", timeout=10)
        deadline = time.monotonic() + 20
        while not desktop.visible_windows("Retouch Bridge") or \
                b.get("/v1/system").json()["event_clients"] < 1:
            assert time.monotonic() < deadline, "the dashboard window did not come up live"
            time.sleep(0.1)
        assert tray.browser_log.exists() is False  # a window, not the browser

        job = b.submit("passthrough", png_bytes(gradient(320, 200)), {"delay_s": 3}).json()["id"]
        tray.wait_output("tray status: busy (1 running, 0 queued)", timeout=10)
        time.sleep(1.0)  # let the page paint the running job
        shot = desktop.screenshot(ARTIFACTS / "tray-window-busy.png")
        assert blue_pixels(shot) > 200, "no running progress bar on screen"

        # A second start finds the first and brings its window forward; serve says so too.
        env = {**desktop.env, "RB_HOME": str(b.home), "PYTHONPATH": str(ROOT)}
        shown_before = tray.count("tray: dashboard window shown")
        said = {}
        for cmd in ("tray", "serve"):
            second = subprocess.run([sys.executable, "-m", "bridge", cmd, "--port", str(b.port)],
                                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            said[cmd] = (second.returncode, second.stdout + second.stderr)
        assert said["tray"][0] == 0 and said["serve"][0] == 1  # serve: not serving is a failure
        for _, out in said.values():
            assert f"already running on http://127.0.0.1:{b.port}" in out
        assert "showing its dashboard window" in said["tray"][1]
        assert tray.count("tray: dashboard window shown") == shown_before + 1

        assert b.wait(job)["state"] == "done"
        last = b.submit("passthrough", png_bytes(gradient(64, 64)), {"delay_s": 2}).json()["id"]
        tray.wait_output("tray status: busy", timeout=5)
        time.sleep(0.3)  # the menu is rebuilt on the GUI loop after a status change
        click(desktop, *icon, 3)  # the menu
        time.sleep(0.8)
        desktop.screenshot(ARTIFACTS / "tray-menu.png")
        desktop.run("xdotool", "key", "Up")  # from the bottom: Quit
        desktop.run("xdotool", "key", "Return")
        t0 = time.monotonic()
        assert tray.proc.wait(30) == 0, tray.text()[-3000:]
        took = time.monotonic() - t0
    finally:
        stop(tray)
    report = json.loads(tray.report.read_text())
    assert report["threads"] == [], f"threads left behind: {report['threads']}"
    assert report["stop"]["running"] == last and report["stop"]["finished_in_grace"] is True
    assert report["jobs"][last] == "done"  # Quit let the running job finish
    assert took < 15
    assert "tray: quit" in tray.text()


def test_tray_without_window_uses_the_browser_and_sigterm_cancels_long_jobs(desktop, tmp_path):
    tray = start_tray(desktop, tmp_path, "--browser", "--quit-grace", "0.5")
    b = tray.bridge
    try:
        tray.wait_output("tray: icon shown")
        deadline = time.monotonic() + 10
        while not tray.browser_log.exists():
            assert time.monotonic() < deadline, "the dashboard was not opened in the browser"
            time.sleep(0.05)
        url = tray.browser_log.read_text().split()[0]
        assert url == f"{b.url}/dashboard?token={b.token}"
        opened = b.get(url.removeprefix(b.url), token=False)
        assert opened.status == 303 and "rb_token=" in opened.headers["Set-Cookie"]

        long = b.submit("passthrough", png_bytes(gradient(16, 16)), {"delay_s": 60}).json()["id"]
        waiting = b.submit("passthrough", png_bytes(gradient(16, 16))).json()["id"]
        tray.wait_output("tray status: busy (1 running, 1 queued)", timeout=10)
        t0 = time.monotonic()
        os.kill(tray.proc.pid, signal.SIGTERM)
        assert tray.proc.wait(30) == 0, tray.text()[-3000:]
        took = time.monotonic() - t0
    finally:
        stop(tray)
    report = json.loads(tray.report.read_text())
    assert report["threads"] == [], f"threads left behind: {report['threads']}"
    assert report["jobs"] == {long: "cancelled", waiting: "cancelled"}
    assert report["stop"]["finished_in_grace"] is False
    assert report["stop"]["cancelled_waiting"] == [waiting]
    assert took < 10


def menu_pick(desktop, icon: tuple[int, int], keys: list[str]) -> None:
    """Open the icon's menu and move to an item with the keyboard, as a person could."""
    time.sleep(0.3)  # a menu rebuilt after the last change is in place
    click(desktop, *icon, 3)
    time.sleep(0.6)
    desktop.run("xdotool", "key", *keys, "Return")


def clipboard_text(desktop) -> str:
    read = ("import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk, Gdk; "
            "print(Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD).wait_for_text())")
    return subprocess.run([sys.executable, "-c", read], env=desktop.env, capture_output=True,
                          text=True, timeout=20).stdout.strip()


@needs_webview
def test_tray_menu_commands(desktop, tmp_path):
    tray = start_tray(desktop, tmp_path, "--hidden")
    b = tray.bridge
    # Menu, top to bottom: status (disabled), Open dashboard, Pause queue, Copy pairing
    # token, Open models folder, Open log, Start at login, Quit. Down from the top skips
    # the disabled line; Up from the bottom starts at Quit.
    try:
        tray.wait_output("tray: icon shown")
        deadline = time.monotonic() + 10
        while (area := desktop.tray_area())[2] < 16:
            assert time.monotonic() < deadline, "the icon did not dock in the tray host"
            time.sleep(0.1)
        icon = (area[0] + area[2] // 2, area[1] + area[3] // 2)

        menu_pick(desktop, icon, ["Down", "Down"])
        tray.wait_output("tray: queue paused", timeout=5)
        assert b.get("/v1/queue").json()["paused"] is True
        tray.wait_output("tray status: paused")
        menu_pick(desktop, icon, ["Down", "Down"])  # the same item now reads Resume queue
        tray.wait_output("tray: queue resumed", timeout=5)
        assert b.get("/v1/queue").json()["paused"] is False

        menu_pick(desktop, icon, ["Down"] * 3)
        tray.wait_output("tray: pairing token copied", timeout=5)
        assert clipboard_text(desktop) == b.token

        opened = tmp_path / "opened.log"
        menu_pick(desktop, icon, ["Down"] * 4)
        menu_pick(desktop, icon, ["Down"] * 5)
        deadline = time.monotonic() + 5
        while len(opened.read_text().split() if opened.exists() else []) < 2:
            assert time.monotonic() < deadline, "models folder and log were not opened"
            time.sleep(0.05)
        assert opened.read_text().split() == [str(b.home / "models"),
                                              str(b.home / "logs" / "bridge.log")]

        entry = tmp_path / "user" / "config" / "autostart" / "retouch-bridge.desktop"
        menu_pick(desktop, icon, ["Up", "Up"])
        tray.wait_output("tray: start at login on", timeout=5)
        assert "tray --hidden" in entry.read_text()
        menu_pick(desktop, icon, ["Up", "Up"])
        tray.wait_output("tray: start at login off", timeout=5)
        assert not entry.exists()
        desktop.screenshot(ARTIFACTS / "tray-icon-idle.png")

        os.kill(tray.proc.pid, signal.SIGTERM)
        assert tray.proc.wait(30) == 0, tray.text()[-3000:]
    finally:
        stop(tray)
    assert json.loads(tray.report.read_text())["threads"] == []
