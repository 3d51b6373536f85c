"""config.toml editing: checks, merging with what the user wrote, and a TOML round trip."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.config import load_settings
from bridge.dashboard import settings_file
from bridge.errors import InvalidParams

TASKS = ("upscale", "restore-faces")
MODELS = {"realesrgan-x4plus": "upscale", "gfpgan": "restore-faces"}


def test_save_keeps_what_the_user_wrote(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\noffline = true\nallow_origins = ["uxp://a"]\nport = 1\n'
                    '[default_models]\nupscale = "old"\n')
    settings_file.save(path, {"port": 9000, "default_models": {"upscale": "realesrgan-x4plus"}})
    data = tomllib.loads(path.read_text())
    assert data == {"offline": True, "allow_origins": ["uxp://a"], "port": 9000,
                    "default_models": {"upscale": "realesrgan-x4plus"}}


def test_saved_file_is_what_load_settings_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("RB_HOME", str(tmp_path))
    config = load_settings().config_file
    folder = tmp_path / "dir with spaces \"and\" quotes \\ ünïcode"
    checked = settings_file.validate({"port": 8123, "models_dir": str(folder),
                                      "memory_budget_mb": 4096}, None, None)
    settings_file.save(config, checked)
    s = load_settings()
    assert (s.port, s.models_dir, s.memory_budget_mb) == (8123, folder, 4096)


def test_clearing_every_default_model_removes_the_table(tmp_path):
    path = tmp_path / "config.toml"
    settings_file.save(path, {"default_models": {"upscale": "x"}})
    checked = settings_file.validate({"default_models": {"upscale": ""}}, TASKS, None)
    settings_file.save(path, checked)
    assert "default_models" not in tomllib.loads(path.read_text())


@pytest.mark.parametrize("defaults, message", [
    ({"sharpen": "gfpgan"}, "unknown task"),
    ({"upscale": "nope"}, "unknown model"),
    ({"upscale": "gfpgan"}, "is for restore-faces"),
    ({"upscale": ["x"]}, "must be a model id"),
])
def test_default_models_are_checked_against_the_registry(defaults, message):
    with pytest.raises(InvalidParams, match=message):
        settings_file.validate({"default_models": defaults}, TASKS, MODELS)


def test_valid_default_models_pass():
    out = settings_file.validate({"default_models": {"upscale": "realesrgan-x4plus",
                                                     "restore-faces": None}}, TASKS, MODELS)
    assert out == {"default_models": {"upscale": "realesrgan-x4plus"}}


def test_models_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidParams, match="not a folder"):
        settings_file.validate({"models_dir": str(f)}, None, None)


def test_broken_config_file_is_reported_not_overwritten(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("port = = 3\n")
    with pytest.raises(InvalidParams, match="not valid TOML"):
        settings_file.save(path, {"port": 9000})
    assert path.read_text() == "port = = 3\n"


toml_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                    max_size=12)
toml_scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                                 max_size=30))


@given(st.dictionaries(toml_keys, st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3),
                                            st.dictionaries(toml_keys, toml_scalars,
                                                            max_size=3)), max_size=6))
def test_writer_round_trips_through_tomllib(data):
    # Lists mixing types are valid TOML 1.0 and tomllib reads them.
    assert tomllib.loads(settings_file.dumps(data)) == data
