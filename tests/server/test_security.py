"""Who gets in: token, Host and Origin checks against the real server."""

from __future__ import annotations

import os
import stat

import pytest

from tests.support.images import gradient, png_bytes


def test_health_needs_no_token(bridge_server):
    r = bridge_server.get("/v1/health", token=False)
    assert r.status == 200
    assert r.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/v1/capabilities", "/v1/jobs", "/v1/models", "/v1/openapi.json"])
def test_missing_token_is_401(bridge_server, path):
    r = bridge_server.get(path, token=False)
    assert r.status == 401
    assert r.error_code == "unauthorized"
    assert "token" in r.json()["error"]["message"]


def test_wrong_token_is_401(bridge_server):
    r = bridge_server.get("/v1/capabilities", token="not-the-token")
    assert r.status == 401
    r = bridge_server.submit("passthrough", png_bytes(gradient(8, 8)))
    assert r.status == 200 or r.status == 202  # the right token still works
    r = bridge_server.post_form("/v1/jobs", [("op", "passthrough", None),
                                             ("image", png_bytes(gradient(8, 8)), "image/png")],
                                token="wrong")
    assert r.status == 401


def test_foreign_host_is_403_even_with_token(bridge_server):
    r = bridge_server.get("/v1/capabilities", headers={"Host": "evil.example"})
    assert r.status == 403
    assert r.error_code == "bad_host"
    r = bridge_server.get("/v1/health", token=False, headers={"Host": "evil.example:7847"})
    assert r.status == 403


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "localhost:1234", "127.0.0.5:9"])
def test_loopback_hosts_pass(bridge_server, host):
    assert bridge_server.get("/v1/capabilities", headers={"Host": host}).status == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1.evil.example",
                                    "http://localhost:1"])
def test_foreign_origin_is_403(bridge_server, origin):
    r = bridge_server.get("/v1/capabilities", headers={"Origin": origin})
    assert r.status == 403
    assert r.error_code == "bad_origin"


def test_cross_site_fetch_without_origin_is_403(bridge_server):
    r = bridge_server.get("/v1/capabilities", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403


@pytest.mark.parametrize("origin", [None, "uxp://com.retouchbridge.panel", "null"])
def test_host_app_origins_pass(bridge_server, origin):
    headers = {"Origin": origin} if origin else {}
    assert bridge_server.get("/v1/capabilities", headers=headers).status == 200


def test_own_origin_passes(bridge_server):
    origin = f"http://127.0.0.1:{bridge_server.port}"
    assert bridge_server.get("/v1/capabilities", headers={"Origin": origin}).status == 200


def test_token_file_is_owner_only(bridge_server):
    mode = stat.S_IMODE(os.stat(bridge_server.home / "config" / "token").st_mode)
    assert mode == 0o600


def listening_addresses(port: int) -> list[str]:
    """Local addresses with a socket listening on `port`, read from /proc (no traffic sent)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                local, state = parts[1], parts[3]
                addr_hex, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                    found.append(addr_hex if len(addr_hex) == width else "?")
    return found


def test_listens_on_loopback_only(bridge_server):
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("needs Linux /proc/net/tcp")
    addrs = listening_addresses(bridge_server.port)
    assert addrs, "no listening socket found"
    # 0100007F is 127.0.0.1 in /proc's little-endian hex; 00000000 would be every interface.
    assert addrs == ["0100007F"], addrs
