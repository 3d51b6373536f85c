"""The API description stays in sync with the routes and with docs/API.md."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.config import load_settings
from bridge.server.app import create_app
from bridge.server.openapi import api_routes

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def test_spec_matches_live_routes(bridge_server):
    spec = bridge_server.get("/v1/openapi.json").json()
    app = create_app(load_settings(), token="t")
    routes = {(m.lower(), p) for m, p, _ in api_routes(app)}
    documented = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert routes == documented
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["summary"] and op["summary"] != path, f"{method} {path} has no docstring"
    assert spec["openapi"].startswith("3.1")


def test_every_route_is_in_the_readable_api_doc():
    app = create_app(load_settings(), token="t")
    table = set(re.findall(r"^\| `(GET|POST|DELETE|PUT) (/v1/[^`]*)`", DOC.read_text(), re.M))
    routes = {(m, p) for m, p, _ in api_routes(app)}
    assert routes == table, f"missing in docs: {routes - table}; stale in docs: {table - routes}"
