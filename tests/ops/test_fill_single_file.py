"""fill from a single-file checkpoint (original SD layout, as shared on model sites), with the
configs and tokenizer found offline in the local Hugging Face cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import ModelMissing
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.registry import run_operation
from tests.inpaint.ldm_checkpoint import write_sd15_single_file
from tests.inpaint.support import block_network, cached_model
from tests.inpaint.tiny import build_sd15_inpaint, photo_like

PARAMS = {"steps": 2, "working_size": 96, "seed": 9, "preview_every": 0}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    yield from block_network(monkeypatch)


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)


@pytest.fixture(scope="module")
def single_file(sd15: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sd15-inpaint-single.safetensors",
                        lambda out: write_sd15_single_file(sd15, out))


def _cache_repo(hub: Path, repo_id: str, folder: Path) -> Path:
    """Lay a folder out as huggingface_hub caches a downloaded repository."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    revision = "89abcdef0123456789abcdef0123456789abcdef"
    snapshot = repo / "snapshots" / revision
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def _fill(model: Path) -> np.ndarray:
    image = Image(photo_like(128, 160))
    result = run_operation("fill", image, Mask.rectangle(Bounds(50, 40, 50, 40)),
                           {"model": str(model), **PARAMS})
    assert result.metadata["family"] == "sd15"
    return result.primary.image.pixels


def test_single_file_with_cached_inpainting_configs(sd15: Path, single_file: Path, hub: Path,
                                                   no_network: list) -> None:
    _cache_repo(hub, "stable-diffusion-v1-5/stable-diffusion-inpainting", sd15)
    # the same weights as the folder, so the same pixels for the same seed
    assert np.array_equal(_fill(single_file), _fill(sd15))
    assert no_network == []


def test_inpainting_checkpoint_with_a_plain_models_configs(sd15: Path, single_file: Path, hub: Path,
                                                          tmp_path: Path, no_network: list) -> None:
    """Only the plain SD 1.5 configs are cached (4-channel UNet): the 9-channel checkpoint still loads."""
    plain = tmp_path / "plain"
    shutil.copytree(sd15, plain)
    config = json.loads((plain / "unet" / "config.json").read_text())
    config["in_channels"] = 4
    (plain / "unet" / "config.json").write_text(json.dumps(config))
    _cache_repo(hub, "stable-diffusion-v1-5/stable-diffusion-v1-5", plain)
    assert np.array_equal(_fill(single_file), _fill(sd15))
    assert no_network == []


def test_single_file_without_configs_says_what_to_install(single_file: Path, hub: Path,
                                                          no_network: list) -> None:
    with pytest.raises(ModelMissing) as caught:
        _fill(single_file)
    assert caught.value.details["model"] == "sd15-inpainting"
    hint = str(caught.value.details["hint"])
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in hint and "sd15-inpainting" in hint
    assert no_network == []
