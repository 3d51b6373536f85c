"""The API description stays in sync with the routes and with docs/API.md."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.config import load_settings
from bridge.server.app import create_app
from bridge.server.openapi import api_routes

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


# Handlers that read a multipart form (transport.read_form), with a path to reach them.
FORM_ROUTES = {"/v1/jobs": "/v1/jobs", "/v1/ops/{op}": "/v1/ops/passthrough",
               "/v1/psd/apply": "/v1/psd/apply", "/v1/recipes/run": "/v1/recipes/run"}


def test_spec_is_served_and_every_operation_is_summarised(bridge_server):
    # (The spec is generated from the route table, so it lists every route by
    # construction; what can go wrong is what is written by hand: summaries and forms.)
    spec = bridge_server.get("/v1/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["summary"] and op["summary"] != path, f"{method} {path} has no docstring"
    assert spec["openapi"].startswith("3.1")


def test_every_route_is_in_the_readable_api_doc():
    app = create_app(load_settings(), token="t")
    table = set(re.findall(r"^\| `(GET|POST|DELETE|PUT) (/v1/[^`]*)`", DOC.read_text(), re.M))
    routes = {(m, p) for m, p, _ in api_routes(app)}
    assert routes == table, f"missing in docs: {routes - table}; stale in docs: {table - routes}"


def test_documented_form_fields_are_those_the_handlers_take(bridge_server):
    """Each multipart endpoint names the parts it accepts when it refuses an unknown
    one; the spec must document exactly those, and no other endpoint a form."""
    spec = bridge_server.get("/v1/openapi.json").json()
    documented = {path: item["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
                  for path, item in spec["paths"].items()
                  if "multipart/form-data" in item.get("post", {}).get("requestBody", {})
                  .get("content", {})}
    assert set(documented) == set(FORM_ROUTES)
    for path, url in FORM_ROUTES.items():
        reply = bridge_server.post_form(url, [("zz-undocumented", "1", None)])
        assert reply.status == 400, (path, reply.body)
        message = reply.json()["error"]["message"]
        found = re.fullmatch(r"unknown part 'zz-undocumented'; expected: (.*)", message)
        assert found, (path, message)
        accepted = set(found[1].split(", "))
        schema = documented[path]
        assert set(schema["properties"]) == accepted, f"{path}: documented " \
            f"{sorted(schema['properties'])}, accepted {sorted(accepted)}"
        assert set(schema["required"]) <= accepted
