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
import urllib.parse

import pytest

from bridge import identity
from bridge.server import instance
from tests.support.relay import Relay
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
        assert instance.running_bridge("127.0.0.1", port, "tok") is None
        r = cli(tmp_path, "serve", "--port", str(port))
        assert r.returncode == 2 and "cannot listen" in r.stderr
        assert "already running" not in r.stdout
    finally:
        server.shutdown()
        server.server_close()


def test_probe_of_a_closed_port_is_quick_and_empty():
    port = free_port()
    t0 = time.monotonic()
    assert instance.running_bridge("127.0.0.1", port, "tok") is None
    assert time.monotonic() - t0 < 1


def test_probe_of_a_silent_listener_gives_up():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts, never answers
        t0 = time.monotonic()
        assert instance.running_bridge("127.0.0.1", s.getsockname()[1], "tok", timeout=0.5) is None
        assert time.monotonic() - t0 < 3


def test_wildcard_binds_are_probed_on_loopback():
    assert instance.probe_address("0.0.0.0") == "127.0.0.1"
    assert instance.probe_address("::") == "::1"
    assert instance.probe_address("127.0.0.1") == "127.0.0.1"


class Impostor:
    """Answers health like a bridge, with no proof or a wrong one; records what it gets."""

    def __init__(self, proof_mode: str) -> None:
        self.received: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.received.append(f"{self.command} {self.path}\n{self.headers}\n"
                                      + body.decode("latin-1"))
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                nonce = query.get("challenge", [""])[0]
                answer = {"status": "ok", "version": "0.1.0", "protocol": 1}
                if proof_mode == "garbage":
                    answer["proof"] = "0" * 64
                elif proof_mode == "other-token":  # a bridge holding another pairing token
                    answer["proof"] = identity.proof("someone-elses-token", outer.port, nonce)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["none", "garbage", "other-token"])
def impostor(request):
    fake = Impostor(request.param)
    yield fake
    fake.close()


def assert_only_challenged(impostor: Impostor, token: str) -> None:
    assert impostor.received, "the impostor was never asked"
    for seen in impostor.received:
        assert seen.startswith("GET /v1/health?challenge="), seen
        assert token not in seen and "authorization" not in seen.lower(), seen


@pytest.fixture
def relay(bridge_server):
    """A squatter that pipes its port to the real bridge, which holds the same token."""
    squatter = Relay(bridge_server.port)
    yield squatter
    squatter.close()


def assert_relay_only_challenged(relay: Relay, token: str) -> None:
    assert relay.requests(), "the relay was never asked"
    for line in relay.requests():
        assert line.startswith("GET /v1/health?challenge="), line
    seen = relay.received()
    assert token.encode() not in seen and b"authorization" not in seen.lower(), seen


def test_the_probe_calls_a_bridge_ours_only_when_it_proves_our_token(bridge_server):
    found = instance.running_bridge("127.0.0.1", bridge_server.port, bridge_server.token)
    assert found is not None and found.ours
    other = instance.running_bridge("127.0.0.1", bridge_server.port, "another-token")
    assert other is not None and not other.ours
    assert "taken by something else" in instance.describe_other(other)


def test_serve_reports_an_impostor_on_the_port_and_sends_it_nothing(impostor, tmp_path):
    r = cli(tmp_path, "serve", "--port", str(impostor.port))
    assert r.returncode == 2, r.stderr
    assert f"port {impostor.port} is taken by something else" in r.stderr
    assert "could not prove it holds this bridge's pairing token" in r.stderr
    assert "already running" not in r.stderr + r.stdout
    assert "listening on" not in r.stdout
    assert_only_challenged(impostor, (tmp_path / "config" / "token").read_text().strip())


def test_tray_reports_an_impostor_and_never_shows_it_the_token(impostor, tmp_path):
    log = tmp_path / "browser.log"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = {"BROWSER": f"{script} %s", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    r = cli(tmp_path / "home", "tray", "--port", str(impostor.port), env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "taken by something else" in r.stderr
    assert "already running" not in r.stdout
    assert not log.exists(), "no browser was opened with the token"
    assert_only_challenged(impostor, (tmp_path / "home" / "config" / "token").read_text().strip())


def test_serve_refuses_a_relay_to_a_real_bridge_with_the_same_token(relay, bridge_server):
    # Same RB_HOME, so the same token: only the port in the proof gives the relay away.
    r = cli(bridge_server.home, "serve", "--port", str(relay.port))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"port {relay.port} is taken by something else" in r.stderr
    assert "already running" not in r.stderr + r.stdout
    assert_relay_only_challenged(relay, bridge_server.token)
    assert bridge_server.alive()


def test_tray_refuses_a_relay_and_never_shows_it_the_token(relay, bridge_server, tmp_path):
    log = tmp_path / "browser.log"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = {"BROWSER": f"{script} %s", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    r = cli(bridge_server.home, "tray", "--port", str(relay.port), env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "taken by something else" in r.stderr
    assert "already running" not in r.stdout
    assert not log.exists(), "no browser was opened with the token"
    assert_relay_only_challenged(relay, bridge_server.token)

