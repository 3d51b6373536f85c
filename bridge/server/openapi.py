"""OpenAPI 3.1 description, generated from the live route table so it cannot drift.

Summaries come from handler docstrings; request and response shapes for the
endpoints that take or give pixels are spelled out here.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp import web

import bridge
from bridge.ops.registry import operations

ERROR = {"$ref": "#/components/schemas/Error"}

JOB_FORM = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "op": {"type": "string", "description": "operation name (POST /v1/jobs only)"},
        "params": {"type": "string", "description": "JSON object of parameters"},
        "image": {"type": "string", "format": "binary",
                  "description": "PNG, TIFF, JPEG or WebP bytes, or raw pixels with 'raw'"},
        "raw": {"type": "string", "description": 'JSON {"width","height","channels","depth"}'},
        "mask": {"type": "string", "format": "binary", "description": "grey selection mask"},
        "mask_raw": {"type": "string", "description": 'JSON {"width","height","depth"}'},
        "icc": {"type": "string", "format": "binary", "description": "ICC profile bytes"},
        "priority": {"type": "string", "enum": ["interactive", "batch"]},
    },
}

PSD_FORM = {
    "type": "object",
    "required": ["psd", "op"],
    "properties": {
        "psd": {"type": "string", "format": "binary", "description": "the PSD or PSB file"},
        "op": {"type": "string", "description": "operation name"},
        "params": {"type": "string", "description": "JSON object of parameters"},
        "layer": {"type": "string", "description": "source layer: a name, a Group/Layer path, #N or id:N"},
        "composite": {"type": "string", "enum": ["1", "true", "yes", "0", "false", "no"],
                      "description": "1: work on the merged image instead of a layer"},
        "mask": {"type": "string", "format": "binary", "description": "grey selection mask"},
        "mask_raw": {"type": "string", "description": 'JSON {"width","height","depth"}'},
        "mask_from_layer": {"type": "string", "description": "use this layer's mask as selection"},
        "priority": {"type": "string", "enum": ["interactive", "batch"]},
    },
}

RECIPE_FORM = {
    "type": "object",
    "required": ["recipe", "image"],
    "properties": {
        "recipe": {"type": "string", "description": "the recipe, TOML or JSON"},
        "image": {"type": "string", "format": "binary",
                  "description": "PNG, TIFF, JPEG or WebP bytes, or raw pixels with 'raw'"},
        "raw": {"type": "string", "description": 'JSON {"width","height","channels","depth"}'},
        "icc": {"type": "string", "format": "binary", "description": "ICC profile bytes"},
        "reference": {"type": "string", "format": "binary",
                      "description": "reference image for steps whose file parameter is @reference"},
        "priority": {"type": "string", "enum": ["interactive", "batch"]},
    },
}

PIXELS = {
    "description": "pixels; layout in X-Width, X-Height, X-Channels, X-Depth, X-Bounds, X-Extent",
    "content": {mime: {"schema": {"type": "string", "format": "binary"}}
                for mime in ("image/png", "image/tiff", "image/jpeg", "image/webp",
                             "application/octet-stream")},
}

# Endpoints that start work and answer at once with 202 Accepted.
ACCEPTED = {("POST", "/v1/jobs"), ("POST", "/v1/models/{id}/pull"), ("POST", "/v1/psd/apply"),
            ("POST", "/v1/recipes/run")}

HEALTH_PARAMS = [
    {"name": "challenge", "in": "query", "required": False,
     "description": "a fresh client nonce; the answer then carries `proof`, hex "
                    "HMAC-SHA256(key=pairing token, msg='retouch-bridge-identity-v2:' + port + "
                    "':' + nonce), port being the one the bridge's own socket listens on, in "
                    "decimal; a client checks it against the port it connected to",
     "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"}},
]

HEALTH = {"description": "status, version, protocol; `proof` when a challenge was sent",
          "content": {"application/json": {"schema": {
              "type": "object", "required": ["status", "version", "protocol"],
              "properties": {"status": {"const": "ok"}, "version": {"type": "string"},
                             "protocol": {"type": "integer"},
                             "proof": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}}}}

FORMAT_PARAMS = [
    {"name": "format", "in": "query", "schema": {"enum": ["png", "tiff", "jpeg", "webp", "raw"]}},
    {"name": "quality", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "full", "in": "query", "schema": {"enum": ["0", "1"]}},
    {"name": "depth", "in": "query", "schema": {"enum": ["8", "16", "32"]}},
]


def _request_body(path: str) -> dict[str, Any] | None:
    if path in ("/v1/jobs", "/v1/ops/{op}"):
        return {"required": True, "content": {
            "multipart/form-data": {"schema": JOB_FORM},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }}
    forms = {"/v1/psd/apply": PSD_FORM, "/v1/recipes/run": RECIPE_FORM}
    if path in forms:
        return {"required": True, "content": {"multipart/form-data": {"schema": forms[path]}}}
    return None


def _responses(method: str, path: str) -> dict[str, Any]:
    errors = {str(code): {"description": desc, "content": {"application/json": {"schema": ERROR}}}
              for code, desc in (("400", "bad input"), ("401", "missing or wrong token"),
                                 ("403", "foreign Host or Origin"), ("404", "not found"))}
    if path == "/v1/health":
        # Only a malformed challenge is refused; health never needs the token.
        return {"200": HEALTH, "400": errors["400"]}
    if "/result" in path or path == "/v1/ops/{op}":
        ok = PIXELS
    elif path == "/v1/events":
        ok = {"description": "WebSocket upgrade: a stream of JSON events"}
    elif path.endswith(("/preview", "/thumbnail")):
        ok = {"description": "PNG preview", "content": {"image/png": {}}}
    else:
        ok = {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}
    status = "202" if (method, path) in ACCEPTED else "200"
    return {status: ok, **errors}


def api_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(METHOD, path, handler) for every API route, HEAD excluded."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or route.method in ("HEAD", "*") or not path.startswith("/v1/"):
            continue
        out.append((route.method, path, route.handler))
    return out


def build_spec(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in api_routes(app):
        doc = inspect.getdoc(handler) or ""
        item: dict[str, Any] = {
            "summary": doc.splitlines()[0] if doc else path,
            "operationId": f"{method.lower()}_{handler.__name__}",
            "responses": _responses(method, path),
        }
        if path != "/v1/health":
            item["security"] = [{"bearer": []}]
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _path_names(path)]
        if "/result" in path or path == "/v1/ops/{op}":
            params += FORMAT_PARAMS
        if path == "/v1/health":
            params += HEALTH_PARAMS
        if params:
            item["parameters"] = params
        body = _request_body(path)
        if body and method == "POST":
            item["requestBody"] = body
        paths.setdefault(path, {})[method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "Retouch Bridge", "version": bridge.__version__,
                 "x-protocol": bridge.PROTOCOL_VERSION},
        "servers": [{"url": "http://127.0.0.1:{port}",
                     "variables": {"port": {"default": str(bridge.DEFAULT_PORT)}}}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "details": {"type": "object"}}}}},
                "Operations": {"type": "object", "properties": {
                    op.name: op.params.json_schema() for op in operations().values()}},
            },
        },
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


async def openapi(request: web.Request) -> web.Response:
    """This description (OpenAPI 3.1)."""
    return web.json_response(build_spec(request.app))
