"""A second start finds the running bridge and says so instead of failing on the port."""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

from bridge.server import instance
from tests.support.server import ROOT, free_port


def cli(home, *args, env=None, timeout=60):
    full = {**os.environ, "RB_HOME": str(home), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout)


def test_second_serve_reports_the_running_bridge(bridge_server):
    t0 = time.monotonic()
    r = cli(bridge_server.home, "serve", "--port", str(bridge_server.port))
    # It does not serve, so it fails, but it says why instead of a port error.
    assert r.returncode == 1
    assert (f"Retouch Bridge 0.1.0 is already running on http://127.0.0.1:{bridge_server.port}"
            in r.stderr)
    assert "cannot listen" not in r.stderr
    assert time.monotonic() - t0 < 20
    assert bridge_server.alive()  # the first one is untouched


def test_second_tray_without_a_window_opens_the_dashboard_in_the_browser(bridge_server, tmp_path):
    log = tmp_path / "browser.log"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    # No display at all: the running bridge is found before a desktop is needed.
    env = {"BROWSER": f"{script} %s", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    r = cli(bridge_server.home, "tray", "--port", str(bridge_server.port), env=env)
    assert r.returncode == 0, r.stderr
    assert "already running" in r.stdout and "opened its dashboard in the browser" in r.stdout
    url = log.read_text().split()[0]
    assert url == f"{bridge_server.url}/dashboard?token={bridge_server.token}"


def test_another_program_on_the_port_is_not_mistaken_for_a_bridge(tmp_path):
    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "ok"}).encode()  # JSON, but not ours
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Other)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert instance.running_bridge("127.0.0.1", port) is None
        r = cli(tmp_path, "serve", "--port", str(port))
        assert r.returncode == 2 and "cannot listen" in r.stderr
        assert "already running" not in r.stdout
    finally:
        server.shutdown()
        server.server_close()


def test_probe_of_a_closed_port_is_quick_and_empty():
    port = free_port()
    t0 = time.monotonic()
    assert instance.running_bridge("127.0.0.1", port) is None
    assert time.monotonic() - t0 < 1


def test_probe_of_a_silent_listener_gives_up():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts, never answers
        t0 = time.monotonic()
        assert instance.running_bridge("127.0.0.1", s.getsockname()[1], timeout=0.5) is None
        assert time.monotonic() - t0 < 3


def test_wildcard_binds_are_probed_on_loopback():
    assert instance.probe_address("0.0.0.0") == "127.0.0.1"
    assert instance.probe_address("::") == "::1"
    assert instance.probe_address("127.0.0.1") == "127.0.0.1"
