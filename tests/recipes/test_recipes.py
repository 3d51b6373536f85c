"""Recipes: reading TOML/JSON, validation before work, running with split progress."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from skimage import data

from bridge.errors import InvalidInput, InvalidParams, ModelMissing, UnknownOperation
from bridge.imaging.codecs import write_image
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.ops.base import Layer, OpContext, OpResult
from bridge.recipes import (
    REFERENCE_PLACEHOLDER,
    check_recipe,
    flatten_result,
    load_recipe,
    parse_recipe,
    run_recipe,
)

TOML = """
name = "shop"
[output]
format = "jpg"
quality = 88
suffix = "_web"

[[steps]]
op = "color-match"
white_balance = "grey-world"

[[steps]]
op = "standardize"
[steps.params]
matte = "border-color"
canvas_width = 120
canvas_height = 100
"""


def test_toml_and_json_read_the_same():
    a = parse_recipe(TOML)
    b = parse_recipe(json.dumps({
        "name": "shop", "output": {"format": "jpeg", "quality": 88, "suffix": "_web"},
        "steps": [{"op": "color-match", "params": {"white_balance": "grey-world"}},
                  {"op": "standardize", "matte": "border-color", "canvas_width": 120,
                   "canvas_height": 100}]}))
    assert a == b
    assert a.output.format == "jpeg" and a.output.quality == 88
    assert a.steps[1].params["margin"] == 5.0  # defaults filled in
    assert a.digest() == b.digest()


@pytest.mark.parametrize("text, error, fragment, details", [
    ('{"steps": [{"op": "sharpen-all"}]}', UnknownOperation, "step 1 (sharpen-all)",
     {"step": 1}),
    ('{"steps": [{"op": "color-match"}, {"op": "standardize", "margin": 90}]}', InvalidParams,
     "step 2 (standardize): parameter 'margin' must be at most 45", {"param": "margin", "step": 2}),
    ('{"steps": [{"op": "standardize", "colour": "red"}]}', InvalidParams,
     "unknown parameter 'colour'", {"param": "colour"}),
    ('{"steps": [{"op": "standardize", "margin": 3, "params": {"margin": 4}}]}', InvalidParams,
     "given twice", {}),
    ('{"steps": []}', InvalidParams, "at least one step", {}),
    ('{"steps": [{"params": {}}]}', InvalidParams, "needs an 'op'", {}),
    ('{"stepz": []}', InvalidParams, "unknown recipe key 'stepz'", {}),
    ('{"steps": [{"op": "passthrough"}], "output": {"format": "gif"}}', InvalidParams,
     "format must be one of", {}),
    ('{"steps": [{"op": "passthrough"}], "output": {"suffix": "../x"}}', InvalidParams,
     "suffix", {}),
    ("steps = [", InvalidParams, "not valid TOML", {}),
    ('{"steps": [', InvalidParams, "not valid JSON", {}),
])
def test_bad_recipes_are_refused_with_the_step_named(text, error, fragment, details):
    with pytest.raises(error) as e:
        parse_recipe(text)
    assert fragment in e.value.message
    for key, value in details.items():
        assert e.value.details[key] == value


def test_missing_model_and_missing_files_are_found_before_work(tmp_path):
    recipe = parse_recipe('{"steps": [{"op": "passthrough"}, {"op": "skin-retouch"}]}')
    with pytest.raises(ModelMissing) as e:
        check_recipe(recipe)
    assert e.value.details["model"] == "yunet" and e.value.details["step"] == 2
    assert "step 2 (skin-retouch)" in e.value.message
    recipe = parse_recipe(json.dumps({"steps": [{"op": "color-match", "reference":
                                                 str(tmp_path / "missing.jpg")}]}))
    with pytest.raises(InvalidParams) as e:
        check_recipe(recipe)
    assert e.value.details["param"] == "reference"
    recipe = parse_recipe('{"steps": [{"op": "standardize", "background": "transparent",'
                          ' "format": "jpeg"}]}')
    with pytest.raises(InvalidParams, match="JPEG has no transparency"):
        check_recipe(recipe)


def test_file_parameters_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "looks").mkdir()
    write_image(Image(data.coffee()), tmp_path / "looks" / "ref.png")
    path = tmp_path / "r.toml"
    path.write_text('[[steps]]\nop = "color-match"\nreference = "looks/ref.png"\n')
    recipe = load_recipe(path)
    assert recipe.name == "r"
    assert recipe.steps[0].params["reference"] == str(tmp_path / "looks" / "ref.png")
    assert recipe.reference_path() == str(tmp_path / "looks" / "ref.png")
    check_recipe(recipe)
    # Model ids are not files; model files are.
    path.write_text('[[steps]]\nop = "standardize"\nmatte_model = "isnet-general-use"\n'
                    '[[steps]]\nop = "standardize"\nmatte_model = "mattes/mine.onnx"\n')
    steps = load_recipe(path).steps
    assert steps[0].params["matte_model"] == "isnet-general-use"
    assert steps[1].params["matte_model"] == str(tmp_path / "mattes" / "mine.onnx")
    # Over HTTP there is no folder to resolve against.
    with pytest.raises(InvalidParams, match="relative path"):
        parse_recipe('{"steps": [{"op": "color-match", "reference": "ref.png"}]}')


def test_reference_placeholder(tmp_path):
    recipe = parse_recipe(json.dumps({"steps": [{"op": "color-match",
                                                 "reference": REFERENCE_PLACEHOLDER}]}))
    assert recipe.uses_reference
    with pytest.raises(InvalidParams, match="@reference"):
        check_recipe(recipe)
    ref = tmp_path / "ref.png"
    write_image(Image(data.coffee()), ref)
    filled = recipe.with_reference(ref)
    assert filled.steps[0].params["reference"] == str(ref) and not filled.uses_reference
    check_recipe(filled)


def test_digest_follows_parameters_and_the_files_they_name(tmp_path):
    ref = tmp_path / "ref.png"
    write_image(Image(data.coffee()), ref)
    recipe = parse_recipe(json.dumps({"steps": [{"op": "color-match", "reference": str(ref)}]}))
    before = recipe.digest()
    assert parse_recipe(json.dumps({"steps": [{"op": "color-match", "reference": str(ref),
                                               "strength": 0.5}]})).digest() != before
    st = ref.stat()
    os.utime(ref, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert recipe.digest() != before


def test_run_splits_progress_across_steps_and_keeps_each_steps_metadata():
    recipe = parse_recipe(TOML)
    seen: list[float] = []
    ctx = OpContext(progress=lambda f, m: seen.append(f))
    from tests.batch.products import product_image

    result = run_recipe(recipe, Image(product_image()), ctx)
    assert result.extent.width == 120 and result.primary.image.width == 120
    assert [s["op"] for s in result.metadata["steps"]] == ["color-match", "standardize"]
    assert result.metadata["steps"][0]["white_balance"]["method"] == "grey-world"
    assert seen == sorted(seen) and seen[-1] == 1.0
    first = [f for f in seen if f <= 0.5]
    assert first and max(first) == 0.5 and any(0.5 < f < 1.0 for f in seen)


def test_warnings_name_their_step():
    recipe = parse_recipe('{"steps": [{"op": "passthrough"}, {"op": "color-match"}]}')
    result = run_recipe(recipe, Image(data.astronaut()[:64, :64]))
    assert result.metadata["warnings"] == [
        "step 2 (color-match): nothing to do: give a reference, a white balance or "
        "exposure='auto'"]
    assert result.metadata["steps"][1]["warnings"] == [result.metadata["warnings"][0][22:]]


def test_errors_inside_a_step_name_it():
    recipe = parse_recipe('{"steps": [{"op": "passthrough"}, {"op": "standardize",'
                          ' "matte": "border-color"}]}')
    with pytest.raises(InvalidInput) as e:
        run_recipe(recipe, Image(np.full((40, 40, 3), 128, np.uint8)))
    assert e.value.message.startswith("step 2 (standardize): no subject")


def test_flatten_composites_a_masked_layer_and_keeps_the_rest_exact():
    base = Image(np.arange(20 * 30 * 3, dtype=np.uint16).reshape(20, 30, 3))
    patch = Image(np.full((10, 10, 3), 65535, np.uint16))
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 2:8] = 255
    mask[2:8, 1] = 128
    result = OpResult([Layer("x", patch, Bounds(5, 4, 10, 10), mask)], base.extent)
    flat = flatten_result(base, result).pixels
    full = np.zeros((20, 30), np.uint8)
    full[4:14, 5:15] = mask
    np.testing.assert_array_equal(flat[full == 0], base.pixels[full == 0])
    assert (flat[full == 255] == 65535).all()
    half = flat[full == 128].astype(int)
    orig = base.pixels[full == 128].astype(int)
    assert np.all(np.abs(half - (orig + (65535 - orig) * 128 / 255)) <= 1)
