"""Server identity: GET /v1/health?challenge= proves the server holds the pairing token
and listens on the port the client connected to."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import secrets
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import identity
from bridge.server import instance
from tests.support.relay import Relay
from tests.support.server import running_bridge


def expected_proof(token: str, port: int, nonce: str) -> str:
    # Written out from the contract in docs/API.md, not taken from bridge.identity.
    msg = ("retouch-bridge-identity-v2:" + str(port) + ":" + nonce).encode()
    return hmac.new(token.encode(), msg, hashlib.sha256).hexdigest()


def test_a_challenge_is_answered_with_the_hmac_of_the_token_and_needs_no_token(bridge_server):
    for nonce in ("a" * 16, secrets.token_urlsafe(24), "Z-_9" * 32):
        r = bridge_server.get(f"/v1/health?challenge={nonce}", token=False)
        assert r.status == 200, r.body
        body = r.json()
        assert body["status"] == "ok" and body["protocol"] == 1
        assert body["proof"] == expected_proof(bridge_server.token, bridge_server.port, nonce)
        assert body["proof"] != expected_proof("another-token", bridge_server.port, nonce)
        assert body["proof"] != expected_proof(bridge_server.token, bridge_server.port + 1, nonce)
        assert r.headers["Cache-Control"] == "no-store"


def test_the_proof_names_the_port_of_the_socket_never_the_host_header(bridge_server):
    # A relay passes on the Host header it was sent; the bridge must not sign that.
    nonce = identity.new_nonce()
    for host in ("127.0.0.1:1", "localhost:7847", "[::1]:65535", "localhost"):
        r = bridge_server.get(f"/v1/health?challenge={nonce}", token=False,
                              headers={"Host": host})
        assert r.status == 200, (host, r.body)
        assert r.json()["proof"] == expected_proof(bridge_server.token, bridge_server.port, nonce)


def test_each_nonce_gets_its_own_proof(bridge_server):
    a = bridge_server.get("/v1/health?challenge=" + "a" * 16, token=False).json()["proof"]
    b = bridge_server.get("/v1/health?challenge=" + "a" * 15 + "b", token=False).json()["proof"]
    assert a != b


def test_plain_health_carries_no_proof(bridge_server):
    assert "proof" not in bridge_server.get("/v1/health", token=False).json()


@pytest.mark.parametrize("query", [
    "challenge=",                              # empty
    "challenge=" + "a" * 15,                   # one too short
    "challenge=" + "a" * 129,                  # one too long
    "challenge=" + "a" * 16 + "%21",           # '!'
    "challenge=" + "a" * 16 + "%2F",           # '/'
    "challenge=" + "a" * 16 + "%20",           # space
    "challenge=" + "a" * 16 + "%0A",           # a newline a lax pattern would let through
    "challenge=" + "a" * 16 + "%C3%A9",        # non-ASCII
    "challenge=" + "a" * 16 + "&challenge=" + "b" * 16,  # two of them
])
def test_malformed_challenges_are_400(bridge_server, query):
    r = bridge_server.get(f"/v1/health?{query}", token=False)
    assert r.status == 400
    assert r.error_code == "invalid_params"
    assert r.json()["error"]["details"]["param"] == "challenge"
    assert "proof" not in r.body.decode()


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=140),
                 st.text(alphabet="abcXYZ019_-", min_size=10, max_size=140),
                 st.text(alphabet="abcXYZ019_-\n\r\t %/.=&+?#\x00é", min_size=14, max_size=20)))
def test_any_challenge_gets_a_correct_proof_or_a_400_never_anything_else(bridge_server, nonce):
    r = bridge_server.get("/v1/health?challenge=" + urllib.parse.quote(nonce, safe=""), token=False)
    if re.fullmatch(r"[A-Za-z0-9_-]{16,128}", nonce):
        assert r.status == 200, r.body
        assert r.json()["proof"] == expected_proof(bridge_server.token, bridge_server.port, nonce)
    else:
        assert r.status == 400, (nonce, r.status, r.body)
        assert r.error_code == "invalid_params"


def test_the_openapi_description_names_the_challenge_and_the_proof(bridge_server):
    spec = bridge_server.get("/v1/openapi.json").json()
    health = spec["paths"]["/v1/health"]["get"]
    param = next(p for p in health["parameters"] if p["name"] == "challenge")
    assert param["in"] == "query"
    assert param["schema"]["pattern"] == "^[A-Za-z0-9_-]{16,128}$"
    props = health["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert "proof" in props
    assert "400" in health["responses"] and "security" not in health


def test_proof_matching_is_strict():
    nonce = identity.new_nonce()
    assert identity.valid_nonce(nonce) and len(nonce) == 32
    assert identity.new_nonce() != nonce
    good = identity.proof("tok", 7847, nonce)
    assert good == expected_proof("tok", 7847, nonce)
    assert identity.proof_matches("tok", 7847, nonce, good)
    for bad in (None, 42, "", good[:-1], good + "0", good.upper(), "é" * 64,
                identity.proof("tok2", 7847, nonce), identity.proof("tok", 7847, nonce + "x"),
                identity.proof("tok", 7848, nonce), identity.proof("tok", 784, "7:" + nonce)):
        assert not identity.proof_matches("tok", 7847, nonce, bad), bad
    for port in (0, -1, 65536):
        with pytest.raises(ValueError):
            identity.proof("tok", port, nonce)


def test_a_relay_to_a_real_bridge_on_another_port_is_refused(bridge_server):
    relay = Relay(bridge_server.port)
    try:
        nonce = identity.new_nonce()
        # The relay works: through it the bridge answers, with its proof for its own port.
        conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
        conn.request("GET", f"/v1/health?challenge={nonce}")
        body = json.loads(conn.getresponse().read())
        conn.close()
        assert body["proof"] == expected_proof(bridge_server.token, bridge_server.port, nonce)
        assert not identity.proof_matches(bridge_server.token, relay.port, nonce, body["proof"])
        # The same check as `serve` and `tray` make: the bridge behind it is not "ours".
        found = instance.running_bridge("127.0.0.1", relay.port, bridge_server.token)
        assert found is not None and not found.ours
        assert relay.requests() and all(
            line.startswith("GET /v1/health?challenge=") for line in relay.requests())
        assert bridge_server.token.encode() not in relay.received()
        # Asked directly, the same bridge is ours: the refusal is about the port alone.
        assert instance.running_bridge("127.0.0.1", bridge_server.port, bridge_server.token).ours
    finally:
        relay.close()


def test_a_bridge_on_port_0_signs_the_port_it_really_got(tmp_path):
    with running_bridge(tmp_path, port=0) as b:
        assert 0 < b.port < 65536
        assert f"listening on http://127.0.0.1:{b.port}" in "".join(b.output)
        nonce = identity.new_nonce()
        proof = b.get(f"/v1/health?challenge={nonce}", token=False).json()["proof"]
        assert proof == expected_proof(b.token, b.port, nonce)
        assert instance.running_bridge("127.0.0.1", b.port, b.token).ours
        # Its dashboard's own origin is on that port too (not on the configured 0).
        own = b.get("/v1/jobs", headers={"Origin": f"http://127.0.0.1:{b.port}"})
        assert own.status == 200, own.body
        assert b.get("/v1/jobs", headers={"Origin": "http://127.0.0.1:0"}).status == 403
