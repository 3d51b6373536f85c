"""The per-task default models a user saves (config.toml, dashboard) apply when a request names none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bridge.config import load_settings
from bridge.imaging.image import Image
from bridge.models.manager import ModelManager
from bridge.ops.registry import get_operation, prepare

IMAGE = Image(np.zeros((8, 8, 3), np.uint8))


def manager_with(defaults: dict[str, str]) -> ModelManager:
    return ModelManager(replace(load_settings(), default_models=defaults))


def test_saved_default_is_used_when_the_request_names_no_model():
    op = get_operation("upscale")
    values = prepare(op, IMAGE, None, {"scale": 2}, manager_with({"upscale": "lanczos"}))
    assert values["model"] == "lanczos"


def test_a_model_named_in_the_request_wins():
    op = get_operation("upscale")
    values = prepare(op, IMAGE, None, {"model": "auto"}, manager_with({"upscale": "lanczos"}))
    assert values["model"] == "auto"


def test_defaults_of_other_tasks_do_not_leak():
    op = get_operation("upscale")
    values = prepare(op, IMAGE, None, {}, manager_with({"denoise": "fbcnn-color"}))
    assert values["model"] == op.params.validate({})["model"]


def test_config_file_table_is_read(isolated_home):
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[default_models]\nupscale = "realesr-animevideov3"\n')
    assert load_settings().default_models == {"upscale": "realesr-animevideov3"}
