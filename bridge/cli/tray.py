"""`tray`: the bridge in the background with a status icon and a dashboard window."""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from bridge.cli.serve import add_server_options, settings_from, setup_logging
from bridge.config import Settings
from bridge.errors import BridgeError

if TYPE_CHECKING:
    from bridge.server.instance import Found


def cmd_tray(args: argparse.Namespace) -> int:
    from bridge.pairing import load_or_create_token
    from bridge.server import instance
    from bridge.tray import backends

    settings = settings_from(args)
    token = load_or_create_token(settings.token_file)
    found = instance.running_bridge(settings.host, settings.port, token)
    if found and not found.ours:
        raise BridgeError(instance.describe_other(found))
    if found:
        print(instance.describe(found), flush=True)
        print(show_running(found, token, settings), flush=True)
        return 0
    if not backends.has_display():
        raise BridgeError("no desktop session here (no DISPLAY or WAYLAND_DISPLAY): the tray "
                          "needs one; `retouch-bridge serve` runs the bridge without it")
    backends.select_pystray_backend()
    gui = None if args.browser else backends.webview_gui()
    mode = "browser" if gui is None else "subprocess" if sys.platform == "darwin" else "inprocess"
    setup_logging(settings, args.verbose)

    from bridge.tray.app import TrayApp
    from bridge.tray.server_thread import BridgeThread

    server = BridgeThread(settings)
    server.start()
    app = TrayApp(server, mode, gui, hidden=args.hidden, grace_s=args.quit_grace)
    try:
        app.run()
    except ImportError as e:  # pystray found no usable backend
        server.stop(grace_s=0)
        raise BridgeError(f"no tray icon support here ({e}); `retouch-bridge serve` runs the "
                          "bridge without one") from None
    if args.exit_report:
        write_exit_report(args.exit_report, app)
    print("Retouch Bridge stopped", flush=True)
    return 0


def show_running(found: Found, token: str, settings: Settings) -> str:
    """Ask the running bridge (proven ours) to show its window; else open its dashboard."""
    from bridge.server.instance import probe_address
    from bridge.tray import desktop

    address = probe_address(settings.host)
    conn = http.client.HTTPConnection(address, settings.port, timeout=10)
    try:
        conn.request("POST", "/v1/ui/show", headers={
            "Host": found.url.removeprefix("http://"), "Authorization": f"Bearer {token}",
            "Content-Length": "0"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        conn.close()
    if status == 200:
        return "showing its dashboard window"
    if status == 401:
        return ("it uses another pairing token (another configuration folder?); open its "
                "dashboard from its own tray icon")
    url = f"{found.url}/dashboard?token={token}"
    if desktop.open_url(url):
        return "opened its dashboard in the browser"
    return f"open {found.url}/dashboard?token=<pairing token> to see its dashboard"


def write_exit_report(path: str, app: Any) -> None:
    """For tests and bug reports: which threads outlived Quit and how the jobs ended."""
    alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    report = {
        "threads": alive,
        "stop": app.stop_report,
        "jobs": {j.id: j.state for j in app.server.state.queue.jobs()},
        "time": time.time(),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tray", help="run the bridge with a tray icon and dashboard window",
        description="Run the bridge in the background with a status icon (idle, busy, error, "
                    "job count) and a dashboard window. A second start shows the running "
                    "one's dashboard.")
    add_server_options(p)
    p.add_argument("--hidden", action="store_true",
                   help="start in the tray without opening the dashboard (used at login)")
    p.add_argument("--browser", action="store_true",
                   help="open the dashboard in the default browser instead of a window")
    p.add_argument("--quit-grace", type=float, default=20.0, metavar="S",
                   help="seconds a running job may take to finish on Quit before it is "
                        "cancelled (default 20)")
    p.add_argument("--exit-report", help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_tray)
