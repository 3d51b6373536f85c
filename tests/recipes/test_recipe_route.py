"""POST /v1/recipes/run through the real server."""

from __future__ import annotations

import json

import numpy as np
from skimage import data

from bridge.imaging.codecs import decode, encode
from bridge.imaging.image import Image
from tests.batch.products import product_image

RECIPE = """
name = "web white"
[[steps]]
op = "color-match"
reference = "@reference"
channels = "color"
[[steps]]
op = "standardize"
matte = "border-color"
canvas_width = 160
canvas_height = 120
"""


def run(bridge, recipe: str, image: bytes, **parts: bytes | str):
    fields = [("recipe", recipe, None), ("image", image, "application/octet-stream")]
    fields += [(k, v, "application/octet-stream" if isinstance(v, bytes) else None)
               for k, v in parts.items()]
    return bridge.post_form("/v1/recipes/run", fields)


def test_recipe_job_end_to_end_with_a_reference_part(bridge_server):
    png = encode(Image(product_image()), "png")
    ref = encode(Image(data.coffee()), "jpeg")
    reply = run(bridge_server, RECIPE, png, reference=ref, priority="batch")
    assert reply.status == 202, reply.body
    assert reply.json()["recipe"] == "web white"
    status = bridge_server.wait(reply.json()["id"])
    assert status["state"] == "done", status
    assert status["op"] == "recipe" and status["priority"] == "batch"
    res = status["result"]
    assert res["extent"] == [160, 120]
    meta = res["metadata"]
    assert meta["recipe"] == "web white"
    assert [s["op"] for s in meta["steps"]] == ["color-match", "standardize"]
    stored = meta["steps"][0]["transfer"]["reference"]
    assert "/references/" in stored
    pixels = bridge_server.get(f"/v1/jobs/{status['id']}/result?format=png")
    assert pixels.status == 200 and pixels.headers["X-Width"] == "160"
    out = decode(pixels.body).pixels
    assert out.shape == (120, 160, 3) and (out[0, 0] == 255).all()
    # The same reference again is stored once.
    again = run(bridge_server, RECIPE, png, reference=ref)
    assert bridge_server.wait(again.json()["id"])["state"] == "done"
    refs = list((bridge_server.home / "cache" / "references").iterdir())
    assert len(refs) == 1


def test_raw_pixels_and_16_bit(bridge_server):
    pixels = (product_image(80, 60).astype(np.uint16) * 257)
    recipe = '{"steps": [{"op": "standardize", "matte": "border-color", "canvas_width": 50,' \
             ' "canvas_height": 50}]}'
    reply = run(bridge_server, recipe, pixels.tobytes(),
                raw=json.dumps({"width": 80, "height": 60, "channels": 3, "depth": 16}))
    status = bridge_server.wait(reply.json()["id"])
    assert status["state"] == "done"
    got = bridge_server.get(f"/v1/jobs/{status['id']}/result?format=raw")
    assert got.headers["X-Depth"] == "16" and len(got.body) == 50 * 50 * 3 * 2


def test_bad_recipes_are_answered_at_once(bridge_server):
    png = encode(Image(product_image(60, 40)), "png")
    cases = [
        ('{"steps": [{"op": "nope"}]}', 404, "unknown_operation"),
        ('{"steps": [{"op": "standardize", "margin": 99}]}', 400, "invalid_params"),
        ('{"steps": [{"op": "skin-retouch"}]}', 409, "model_missing"),
        ('{"steps": [{"op": "color-match", "reference": "@reference"}]}', 400, "invalid_params"),
        ('{"steps": [{"op": "color-match", "reference": "ref.jpg"}]}', 400, "invalid_params"),
        ("", 400, "invalid_input"),
    ]
    for recipe, status, code in cases:
        reply = run(bridge_server, recipe, png)
        assert (reply.status, reply.error_code) == (status, code), (recipe, reply.body)
    reply = run(bridge_server, '{"steps": [{"op": "skin-retouch"}]}', png)
    assert reply.json()["error"]["details"]["step"] == 1
    reply = bridge_server.post_form("/v1/recipes/run", [
        ("recipe", '{"steps": [{"op": "passthrough"}]}', None),
        ("op", "upscale", None), ("image", png, "application/octet-stream")])
    assert reply.status == 400 and "unknown part 'op'" in reply.json()["error"]["message"]
    reply = run(bridge_server, '{"steps": [{"op": "passthrough"}]}', b"not an image")
    assert reply.status == 415
    reply = run(bridge_server, '{"steps": [{"op": "passthrough"}]}', png,
                reference=b"not an image either")
    assert reply.status == 415
    assert bridge_server.get("/v1/recipes/run").status in (404, 405)
    no_token = bridge_server.post_form("/v1/recipes/run", [("recipe", "x", None)], token=False)
    assert no_token.status == 401


def test_a_failing_step_fails_the_job_with_its_name(bridge_server):
    flat = encode(Image(np.full((40, 40, 3), 90, np.uint8)), "png")
    reply = run(bridge_server, '{"steps": [{"op": "standardize", "matte": "border-color"}]}',
                flat)
    status = bridge_server.wait(reply.json()["id"])
    assert status["state"] == "failed"
    assert status["error"]["message"].startswith("step 1 (standardize): no subject")


def _finished(bridge, recipe: str, image: bytes) -> str:
    reply = run(bridge, recipe, image)
    assert reply.status == 202, reply.body
    status = bridge.wait(reply.json()["id"])
    assert status["state"] == "done", status
    return status["id"]


def test_the_recipe_output_settings_are_the_results_default_format(bridge_server):
    png = encode(Image(product_image(80, 60)), "png")
    steps = '[[steps]]\nop = "standardize"\nmatte = "border-color"\ncanvas_width = 64\n' \
            'canvas_height = 64\n'
    job = _finished(bridge_server, '[output]\nformat = "jpeg"\nquality = 60\n' + steps, png)
    url = f"/v1/jobs/{job}/result"
    default = bridge_server.get(url)
    assert default.status == 200
    assert default.headers["Content-Type"] == "image/jpeg"  # a PNG came in
    # At the recipe's quality: the same bytes as asking for it, not those of the usual 95.
    assert default.body == bridge_server.get(url + "?format=jpeg&quality=60").body
    assert default.body != bridge_server.get(url + "?format=jpeg&quality=95").body
    assert bridge_server.get(f"/v1/jobs/{job}/result/image").headers["Content-Type"] == \
        "image/jpeg"
    # The client's own choice still wins.
    explicit = bridge_server.get(url + "?format=png")
    assert explicit.headers["Content-Type"] == "image/png"
    assert decode(explicit.body).pixels.shape == (64, 64, 3)


def test_standardize_format_hint_is_the_default_and_output_wins_over_it(bridge_server):
    png = encode(Image(product_image(80, 60)), "png")
    steps = '[[steps]]\nop = "standardize"\nmatte = "border-color"\ncanvas_width = 64\n' \
            'canvas_height = 64\nformat = "webp"\nquality = 70\n'
    job = _finished(bridge_server, steps, png)
    default = bridge_server.get(f"/v1/jobs/{job}/result")
    assert default.headers["Content-Type"] == "image/webp"
    assert default.body == bridge_server.get(
        f"/v1/jobs/{job}/result?format=webp&quality=70").body
    job = _finished(bridge_server, '[output]\nformat = "tiff"\n' + steps, png)
    assert bridge_server.get(f"/v1/jobs/{job}/result").headers["Content-Type"] == "image/tiff"
    # No hint at all: the input's own format, as before.
    job = _finished(bridge_server, steps.replace('format = "webp"\nquality = 70\n', ""), png)
    assert bridge_server.get(f"/v1/jobs/{job}/result").headers["Content-Type"] == "image/png"
