"""Result layer names: what was done, with what a retoucher needs to make it again."""

from __future__ import annotations

import pytest

from bridge.ops.registry import get_operation
from bridge.psd.naming import layer_name


def _name(op: str, **params) -> str:
    operation = get_operation(op)
    return layer_name(operation, operation.params.validate(params))


@pytest.mark.parametrize("op,params,expected", [
    ("fill", {"prompt": "blue sky", "seed": 42}, 'AI Fill "blue sky" seed 42'),
    ("fill", {"prompt": "  blue\n sky ", "seed": 0}, 'AI Fill "blue sky" seed 0'),
    ("fill", {"seed": 7}, "AI Fill seed 7"),
    ("remove", {}, "AI Remove"),
    ("remove", {"model": "opencv"}, "AI Remove"),
    ("remove-background", {}, "Remove Background u2net"),
    ("remove-background", {"model": "/models/shop/u2net-like.onnx"},
     "Remove Background u2net-like.onnx"),
    ("restore-faces", {"model": "CodeFormer", "fidelity": 0.7}, "Restore Faces CodeFormer 0.7"),
    ("restore-faces", {"model": "GFPGANv1.4"}, "Restore Faces GFPGANv1.4"),
    ("restore-faces", {"model": "GFPGANv1.4", "seed": 5}, "Restore Faces GFPGANv1.4 seed 5"),
])
def test_names(op: str, params: dict, expected: str) -> None:
    assert _name(op, **params) == expected


def test_a_long_prompt_is_cut_and_the_seed_kept() -> None:
    name = _name("fill", prompt="a very " * 40 + "blue sky", seed=3)
    assert name.startswith('AI Fill "a very') and name.endswith('…" seed 3') and len(name) < 90


@pytest.mark.parametrize("engine,expected", [("lama", "AI Remove LaMa"),
                                             ("opencv", "AI Remove OpenCV")])
def test_remove_names_the_engine_that_ran(engine: str, expected: str) -> None:
    operation = get_operation("remove")
    assert layer_name(operation, {**operation.params.validate({}), "engine": engine}) == expected
