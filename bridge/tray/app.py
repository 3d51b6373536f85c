"""The tray app: a status icon with a menu, the dashboard window, the server behind them.

Threads (Linux, Windows):
  main            pywebview's GUI loop with the dashboard window; pystray runs detached
                  on the same loop (GTK) or its own thread (Xlib, Win32)
  bridge-server   the server's asyncio loop (plus the queue's worker and its executor)
  tray-status     turns the queue's state into the icon, tooltip and menu twice a second
  tray-actions    runs menu commands, so a slow one (Quit waits for a job) never
                  blocks the GUI loop
macOS: AppKit wants both the status item and the web view on the main thread of their
process, so (as pywebview documents for pystray) the window lives in a child process
(`python -m bridge.tray.window`) and the tray's main thread runs pystray.
Without any web view toolkit the dashboard opens in the default browser instead.

Quit: waiting jobs are cancelled, the running one may finish within a grace period
and is cancelled after it, downloads are cancelled; every thread above then ends.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.dashboard.routes import DASHBOARD, LOG_NAME
from bridge.private_dirs import make_dir
from bridge.tray import autostart, desktop
from bridge.tray.icon import render
from bridge.tray.server_thread import BridgeThread
from bridge.tray.status import TrayStatus, status_of

log = logging.getLogger("bridge.tray")

STATUS_INTERVAL_S = 0.5
WINDOW_SIZE = (1240, 820)
WINDOW_MIN = (960, 600)
TITLE = "Retouch Bridge"


class TrayApp:
    def __init__(self, server: BridgeThread, window_mode: str, gui: str | None = None,
                 hidden: bool = False, grace_s: float = 20.0) -> None:
        """window_mode: 'inprocess' (pywebview here), 'subprocess' (macOS), 'browser'."""
        self.server = server
        self.settings = server.settings
        self.window_mode = window_mode
        self.gui = gui
        self.hidden = hidden
        self.grace_s = grace_s
        self.status = TrayStatus("idle")
        self.stop_report: dict[str, Any] | None = None
        self.icon: Any = None
        self.window: Any = None
        self._child: subprocess.Popen[bytes] | None = None
        self._quitting = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._actions: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._run_actions, name="tray-actions"),
                         threading.Thread(target=self._watch, name="tray-status")]

    # -- running -----------------------------------------------------------------------
    def dashboard_url(self) -> str:
        return f"{self.server.url}/dashboard?token={self.server.state.token}"

    def run(self) -> None:
        """Blocks on the main thread until Quit; every thread it started has ended after."""
        import pystray

        self.status = self._current_status()
        self.icon = pystray.Icon(autostart.APP_ID, render(self.status), self.status.tooltip(),
                                 menu=self._menu(pystray))
        _gtk_tooltip(self.icon, self.status.tooltip())
        dash = self.server.app[DASHBOARD]
        dash.show_window = self.open_dashboard
        for t in self._threads:
            t.start()
        try:
            if self.window_mode == "inprocess":
                self._run_with_window()
            else:
                self._install_signals()
                if not self.hidden:
                    self.do(self.open_dashboard)
                self.icon.run(setup=self._icon_ready)
        finally:
            dash.show_window = None
            if not self._quitting:  # the GUI loop ended by itself (window manager, error)
                self._quit_now()
            self._finish()

    def _run_with_window(self) -> None:
        import webview

        self.window = webview.create_window(
            TITLE, self.dashboard_url(), width=WINDOW_SIZE[0], height=WINDOW_SIZE[1],
            min_size=WINDOW_MIN, hidden=self.hidden, background_color="#0f1113")
        self.window.events.closing += self._on_closing
        self.icon.run_detached(setup=self._icon_ready)
        # After pystray: its GTK backend resets SIGINT to the default (kill) handler.
        self._install_signals()
        webview.start(gui=None if self.gui == "native" else self.gui, private_mode=True)

    def _icon_ready(self, icon: Any) -> None:
        _quiet_notifier(icon)  # created by now: the backend is initialised before setup runs
        # pystray's GTK backend builds its menu only in update_menu(): without this call a
        # right click before the first status change finds no menu at all.
        icon.update_menu()
        icon.visible = True
        _gui_loop_caught_up()
        log.info("tray: icon shown (%s)", type(icon).__module__)

    def _install_signals(self) -> None:
        """SIGINT/SIGTERM quit like the menu does. Under a GLib loop, Python's own handlers
        would only run when Python code next runs, so GLib delivers them instead."""
        glib = sys.modules.get("gi.repository.GLib")
        for sig in (signal.SIGINT, signal.SIGTERM):
            if glib is not None and hasattr(glib, "unix_signal_add"):
                glib.unix_signal_add(glib.PRIORITY_HIGH, sig, self._on_signal)
                continue
            # ValueError/OSError: not the main thread, or not a signal on this OS.
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, lambda *_: self.request_quit())

    def _on_signal(self, *_: Any) -> bool:
        self.request_quit()
        return True  # keep the handler: a second signal during Quit changes nothing

    def _on_closing(self) -> bool:
        """Closing the window hides it; the bridge keeps running in the tray."""
        if self._quitting:
            return True
        self.window.hide()
        return False

    def do(self, action: Callable[[], None]) -> None:
        """Run a menu command on the actions thread."""
        self._actions.put(action)

    def _run_actions(self) -> None:
        while (action := self._actions.get()) is not None:
            try:
                action()
            except Exception:
                log.exception("tray: %s failed", getattr(action, "__name__", "a menu command"))

    def _watch(self) -> None:
        while not self._done.wait(STATUS_INTERVAL_S):
            if not self._quitting:
                self._show(self._current_status())

    def _current_status(self) -> TrayStatus:
        error = None
        if not self.server.running and not self._quitting:
            error = f"the server stopped ({self.server.error or 'unknown reason'})"
        q = self.server.state.queue
        return status_of(q.jobs(), q.paused, error)

    def _show(self, status: TrayStatus) -> None:
        if status == self.status:
            return
        previous, self.status = self.status, status
        if self.icon is not None:
            self.icon.icon = render(status)
            self.icon.title = status.tooltip()
            _gtk_tooltip(self.icon, status.tooltip())
            self.icon.update_menu()
        if status.kind != previous.kind:
            log.info("tray status: %s", status.tooltip().removeprefix(f"{TITLE}: "))

    # -- menu --------------------------------------------------------------------------
    def _menu(self, pystray: Any) -> Any:
        item, sep = pystray.MenuItem, pystray.Menu.SEPARATOR

        def cmd(fn: Callable[[], None]) -> Callable[[Any, Any], None]:
            return lambda icon, menu_item: self.do(fn)

        return pystray.Menu(
            item(lambda _: self.status.tooltip().removeprefix(f"{TITLE}: ").capitalize(), None,
                 enabled=False),
            sep,
            item("Open dashboard", cmd(self.open_dashboard), default=True),
            item(lambda _: "Resume queue" if self.server.state.queue.paused else "Pause queue",
                 cmd(self.toggle_pause)),
            sep,
            item("Copy pairing token", cmd(self.copy_token)),
            item("Open models folder", cmd(self.open_models)),
            item("Open log", cmd(self.open_log)),
            sep,
            item("Start at login", cmd(self.toggle_autostart),
                 checked=lambda _: autostart.is_enabled()),
            sep,
            item("Quit", cmd(self.quit)),
        )

    def open_dashboard(self) -> None:
        if self.window_mode == "inprocess" and self.window is not None:
            self.window.show()
            self.window.restore()
            log.info("tray: dashboard window shown")
        elif self.window_mode == "subprocess":
            self._show_child_window()
        else:
            desktop.open_url(self.dashboard_url())

    def _show_child_window(self) -> None:
        if self._child is not None and self._child.poll() is None:
            assert self._child.stdin is not None
            self._child.stdin.write(b"show\n")
            self._child.stdin.flush()
            return
        # The URL (it holds the token) goes through a pipe, not argv: others can read argv.
        self._child = subprocess.Popen([sys.executable, "-m", "bridge.tray.window"],
                                       stdin=subprocess.PIPE)
        assert self._child.stdin is not None
        self._child.stdin.write(self.dashboard_url().encode() + b"\n")
        self._child.stdin.flush()

    def toggle_pause(self) -> None:
        q = self.server.state.queue
        q.set_paused(not q.paused)
        self.server.state.hub.publish({"type": "queue", "paused": q.paused})
        log.info("tray: queue %s", "paused" if q.paused else "resumed")
        self._show(self._current_status())
        if self.icon is not None:
            self.icon.update_menu()

    def copy_token(self) -> None:
        ok = desktop.copy_text(self.server.state.token)
        log.info("tray: pairing token %s", "copied to the clipboard" if ok else
                 "could not be copied (no clipboard tool)")

    def open_models(self) -> None:
        make_dir(self.settings.models_dir)
        desktop.open_path(self.settings.models_dir)

    def open_log(self) -> None:
        path = self.settings.log_dir / LOG_NAME
        desktop.open_path(path if path.exists() else self.settings.log_dir)

    def toggle_autostart(self) -> None:
        if autostart.is_enabled():
            autostart.disable()
            log.info("tray: start at login off")
        else:
            path = autostart.enable(log_dir=self.settings.log_dir)
            log.info("tray: start at login on (%s)", path)
        if self.icon is not None:
            self.icon.update_menu()

    # -- quitting ----------------------------------------------------------------------
    def request_quit(self) -> None:
        """From a signal handler: hand over to the actions thread, return at once."""
        self.do(self.quit)

    def quit(self) -> None:
        with self._lock:
            if self._quitting:
                return
            self._quitting = True
        running = self.server.state.queue.running
        self._show(TrayStatus("stopping", detail=f"finishing {running.op}" if running else ""))
        log.info("tray: quit")
        self._quit_now()

    def _quit_now(self) -> None:
        self._quitting = True
        if self.stop_report is None:
            self.stop_report = self.server.stop(self.grace_s)
        self._done.set()
        if self.icon is not None:
            self.icon.stop()
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()
            try:
                self._child.wait(5)
            except subprocess.TimeoutExpired:
                self._child.kill()
        if self.window is not None:
            try:
                self.window.destroy()
            except Exception as e:  # already gone: the loop ended with it
                log.debug("window: %s", e)

    def _finish(self) -> None:
        self._done.set()
        self._actions.put(None)
        for t in self._threads:
            if t is not threading.current_thread() and t.is_alive():
                t.join(self.grace_s + 15)
        # Short-lived helper threads (pystray's setup, pywebview's event handlers) end
        # on their own within moments of the loops stopping.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(threading.enumerate()) > 1:
            time.sleep(0.05)


def _gui_loop_caught_up(timeout: float = 10.0) -> None:
    """Wait until a GLib loop has run what was queued so far (pystray's GTK and
    AppIndicator backends queue menu and visibility changes on it)."""
    glib = sys.modules.get("gi.repository.GLib")
    if glib is None:
        return
    done = threading.Event()

    def mark() -> bool:
        done.set()
        return False  # once

    glib.idle_add(mark)
    done.wait(timeout)


def _gtk_tooltip(icon: Any, text: str) -> None:
    """pystray's GTK backend shows `title` only to screen readers; hovering shows the tooltip."""
    status_icon = getattr(icon, "_status_icon", None)
    glib = sys.modules.get("gi.repository.GLib")
    if status_icon is not None and glib is not None:
        def apply() -> bool:
            status_icon.set_tooltip_text(text)
            return False  # once

        glib.idle_add(apply)


def _quiet_notifier(icon: Any) -> None:
    """pystray's GTK backend hides its notification at exit through D-Bus and prints a
    traceback when no notification service runs; that is not an error for us."""
    notifier = getattr(icon, "_notifier", None)
    hide = getattr(notifier, "hide", None)
    if hide is None:
        return

    def quiet_hide() -> None:
        try:
            hide()
        except Exception as e:
            log.debug("notification service: %s", e)

    notifier.hide = quiet_hide
