"""fill through the real diffusers inpainting pipeline (tiny random SD 1.5-style model, saved to a
folder and loaded by the same loader users hit), on large documents, with no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import Cancelled, InvalidInput, InvalidParams, ModelMissing, NotFound
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.manager import default_manager
from bridge.ops.base import CancelToken, OpContext
from bridge.ops.registry import run_operation
from tests.inpaint.support import block_network, cached_model, composite, coverage_of
from tests.inpaint.tiny import build_sd15_inpaint, photo_like


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    yield from block_network(monkeypatch)

SELECTION = Bounds(1800, 1400, 300, 200)
# Small enough to keep each run around a second on two CPU cores.
FAST = {"steps": 2, "working_size": 128, "seed": 7, "preview_every": 0}


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)


def _fill(image: Image, mask: Mask | None, model: Path | str, ctx: OpContext | None = None, **params):
    return run_operation("fill", image, mask, {"model": str(model), **FAST, **params}, ctx)


@pytest.mark.parametrize("depth", [8, 16])
def test_large_document_exact_outside_the_mask(sd15: Path, depth: int, no_network: list) -> None:
    pixels = photo_like(3000, 4000, depth=depth, channels=4 if depth == 16 else 3)
    result = _fill(Image(pixels), Mask.rectangle(SELECTION), sd15, prompt="the sky")
    layer = result.primary
    assert layer.name == "variation-1" and layer.visible
    assert layer.image.pixels.dtype == pixels.dtype and layer.image.channels == pixels.shape[2]
    assert layer.bounds.contains(SELECTION)
    assert layer.bounds.width < 3 * SELECTION.width and layer.bounds.height < 3 * SELECTION.height
    shown = composite(pixels, layer)
    cover = coverage_of(layer, 3000, 4000)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])
    crop = pixels[layer.bounds.slices]
    assert np.array_equal(layer.image.pixels[layer.mask == 0], crop[layer.mask == 0])
    if pixels.shape[2] == 4:
        assert np.array_equal(layer.image.pixels[:, :, 3], crop[:, :, 3])  # alpha untouched
    assert (shown[cover == 255][:, :3] != pixels[cover == 255][:, :3]).mean() > 0.5
    meta = result.metadata
    assert meta["family"] == "sd15" and meta["engine"] == "diffusers-sd15"
    assert meta["working_size"][0] % 8 == 0 and meta["working_size"][1] % 8 == 0
    assert meta["working_size"][0] * meta["working_size"][1] <= 128 * 128
    assert no_network == []


def test_variations_seeds_and_reproducibility(sd15: Path) -> None:
    image = Image(photo_like(240, 320))
    sel = Mask.rectangle(Bounds(120, 80, 60, 50))
    result = _fill(image, sel, sd15, variations=2, seed=11)
    names = [la.name for la in result.layers]
    assert names == ["variation-1", "variation-2"]
    assert [la.visible for la in result.layers] == [True, False]
    assert result.metadata["seeds"] == [11, 12]
    a, b = (la.image.pixels for la in result.layers)
    assert not np.array_equal(a, b)
    again = _fill(image, sel, sd15, variations=1, seed=12).primary.image.pixels
    assert np.array_equal(again, b)  # variation i is exactly seed + i on its own


def test_progress_for_every_step_and_cheap_previews(sd15: Path) -> None:
    events: list[tuple[float, str]] = []
    previews: list[Image] = []
    ctx = OpContext(progress=lambda f, m: events.append((f, m)), preview=previews.append)
    image = Image(photo_like(200, 200))
    # Euler runs exactly `steps` steps (PNDM, the tiny model's default, adds one).
    _fill(image, Mask.rectangle(Bounds(60, 60, 80, 80)), sd15, ctx, steps=4, variations=2,
          preview_every=2, scheduler="euler")
    steps = [m for _, m in events if ": step " in m]
    assert steps == [f"variation {v}/2: step {s}/4" for v in (1, 2) for s in (1, 2, 3, 4)]
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # one preview mid-way per variation (none at the last step: the result follows)
    assert len(previews) == 2
    assert all(p.pixels.dtype == np.uint8 and p.channels == 3 and p.width <= 32 for p in previews)


def test_cancel_stops_between_steps(sd15: Path) -> None:
    token = CancelToken()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.endswith("step 2/6"):
            token.cancel()

    ctx = OpContext(progress=progress, cancel=token)
    with pytest.raises(Cancelled):
        _fill(Image(photo_like(160, 160)), Mask.rectangle(Bounds(40, 40, 60, 60)), sd15, ctx, steps=6,
              scheduler="euler")
    assert not any(m.endswith(("step 4/6", "step 6/6")) for m in seen)


@pytest.mark.parametrize("name", ["euler", "euler_a", "dpmpp_2m_karras", "ddim", "unipc"])
def test_schedulers_by_name(sd15: Path, name: str) -> None:
    result = _fill(Image(photo_like(128, 128)), Mask.rectangle(Bounds(40, 40, 40, 40)), sd15,
                   scheduler=name)
    assert result.metadata["scheduler"] == name
    from bridge.diffusion import loader

    classes = {type(entry.pipe.scheduler).__name__ for entry in loader._cached.values()}
    expected = {"euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
                "dpmpp_2m_karras": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler",
                "unipc": "UniPCMultistepScheduler"}[name]
    assert classes == {expected}


def test_all_white_mask_goes_through_the_memory_aware_resize(sd15: Path) -> None:
    pixels = photo_like(1500, 2000, depth=16)
    everything = Mask.rectangle(Bounds(0, 0, 2000, 1500))
    result = _fill(Image(pixels), everything, sd15)
    layer = result.primary
    assert layer.bounds == Bounds(0, 0, 2000, 1500)
    w, h = result.metadata["working_size"]
    assert w * h <= 128 * 128 and abs(w / h - 4 / 3) < 0.2
    assert layer.image.pixels.dtype == np.uint16 and (layer.mask == 255).all()


def test_empty_selection_is_a_clear_400(sd15: Path) -> None:
    image = Image(photo_like(64, 64))
    with pytest.raises(InvalidInput) as caught:
        _fill(image, Mask(Bounds(0, 0, 64, 64), np.zeros((64, 64), np.uint8)), sd15)
    assert caught.value.status == 400 and "selection" in caught.value.message


def test_missing_models_name_the_model_and_how_to_get_it(tmp_path: Path, no_network: list) -> None:
    image = Image(photo_like(64, 64))
    sel = Mask.rectangle(Bounds(10, 10, 20, 20))
    with pytest.raises(ModelMissing) as caught:
        run_operation("fill", image, sel, {})  # the default registry model, not installed here
    err = caught.value
    assert err.status == 409 and err.details["model"] == "sd15-inpainting"
    hint = str(err.details["hint"])
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in hint
    assert str(Path(default_manager().models_dir) / "sd15-inpainting") in hint
    assert "models import FILE --as sd15-inpainting" in hint
    with pytest.raises(NotFound):
        _fill(image, sel, "no-such-model")
    with pytest.raises(InvalidParams):
        _fill(image, sel, "u2net")  # a registry model, but for another job
    with pytest.raises(ModelMissing) as caught:
        _fill(image, sel, "some-org/not-cached-inpainting")
    assert "Hugging Face cache" in caught.value.message
    with pytest.raises(ModelMissing) as caught:
        _fill(image, sel, tmp_path / "nowhere.safetensors")
    assert "not found" in caught.value.message
    assert no_network == []


def test_registry_model_installed_as_a_folder(sd15: Path, no_network: list) -> None:
    """sd15-inpainting (the default) as a diffusers folder in the models folder, via the manager."""
    import shutil

    manager = default_manager()
    shutil.copytree(sd15, Path(manager.models_dir) / "sd15-inpainting")
    assert manager.state("sd15-inpainting")["state"] == "installed"
    result = run_operation("fill", Image(photo_like(96, 96)), Mask.rectangle(Bounds(30, 30, 30, 30)),
                           {k: v for k, v in FAST.items()})
    assert result.metadata["model"] == "sd15-inpainting" and result.metadata["family"] == "sd15"
    assert no_network == []


def test_a_hub_id_is_found_in_the_local_cache_only(sd15: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, no_network: list) -> None:
    """A repository laid out as huggingface_hub caches it loads by its id, offline."""
    import shutil

    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--tiny-org--tiny-inpaint"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(sd15, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    result = _fill(Image(photo_like(96, 96)), Mask.rectangle(Bounds(30, 30, 30, 30)), "tiny-org/tiny-inpaint")
    assert result.metadata["model"] == "tiny-org/tiny-inpaint" and result.metadata["family"] == "sd15"
    assert no_network == []


def test_short_memory_turns_on_vae_tiling_and_lowers_the_size(
        sd15: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a small GPU: the planned budget does not fit, so the savers come on (real
    VAE tiling, here on the CPU) and the working size shrinks."""
    from bridge.diffusion import loader
    from bridge.inpaint import memory

    plenty = memory.pixel_cap
    monkeypatch.setattr(memory, "pixel_cap", lambda device, per_pixel, budget_mb=0: 96 * 96)
    pixels = photo_like(400, 500, depth=16)
    result = _fill(Image(pixels), Mask.rectangle(Bounds(200, 150, 90, 80)), sd15)
    assert result.metadata["memory_saving"] is True
    w, h = result.metadata["working_size"]
    assert w * h <= 96 * 96
    (entry,) = loader._cached.values()
    assert entry.memory_saving and entry.pipe.vae.use_tiling
    # Fused attention stays: diffusers' slicing would need more memory than it saves.
    processors = {type(p).__name__ for p in entry.pipe.unet.attn_processors.values()}
    assert processors == {"AttnProcessor2_0"} and not entry.attention_sliced
    layer = result.primary
    shown = composite(pixels, layer)
    cover = coverage_of(layer, 400, 500)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])
    monkeypatch.setattr(memory, "pixel_cap", plenty)
    again = _fill(Image(pixels), Mask.rectangle(Bounds(200, 150, 90, 80)), sd15)
    assert again.metadata["memory_saving"] is False
    assert not entry.pipe.vae.use_tiling


def test_the_memory_budget_setting_caps_the_working_size(
        sd15: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RB_MEMORY_BUDGET_MB binds fill as it binds upscale: 1 MB cannot hold 512x512."""
    from bridge.config import load_settings
    from bridge.models.manager import ModelManager

    monkeypatch.setenv("RB_MEMORY_BUDGET_MB", "1")
    ctx = OpContext(models=ModelManager(load_settings()))
    pixels = photo_like(400, 500)
    result = _fill(Image(pixels), Mask.rectangle(Bounds(200, 150, 90, 80)), sd15, ctx,
                   working_size=512)
    w, h = result.metadata["working_size"]
    assert result.metadata["memory_saving"] is True and w * h <= 256 * 256


def test_out_of_memory_in_the_model_retries_once_with_the_savers_on(
        sd15: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from diffusers import StableDiffusionInpaintPipeline

    real_call = StableDiffusionInpaintPipeline.__call__
    calls: list[tuple[int, int]] = []

    def short_of_memory_once(pipe, *args, **kwargs):
        calls.append((kwargs["width"], kwargs["height"]))
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(pipe, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionInpaintPipeline, "__call__", short_of_memory_once)
    from bridge.inpaint import memory

    # Memory unknown: the first plan is the full 512x512 budget, whatever RAM is free now.
    monkeypatch.setattr(memory, "pixel_cap", lambda device, per_pixel, budget_mb=0: None)
    pixels = photo_like(400, 500)
    selection = Mask.rectangle(Bounds(200, 150, 90, 80))
    ctx = OpContext()
    result = _fill(Image(pixels), selection, sd15, ctx, working_size=512)
    assert len(calls) == 2
    (w0, h0), (w1, h1) = calls
    assert w1 * h1 <= (w0 * h0) // 4 + 64 * 8
    assert result.metadata["memory_saving"] is True
    assert any("ran out of memory" in w for w in ctx.warnings)
    shown = composite(pixels, result.primary)
    cover = coverage_of(result.primary, 400, 500)
    assert np.array_equal(shown[cover == 0], pixels[cover == 0])

    calls.clear()  # a model that keeps running out fails as out-of-memory, after one retry
    monkeypatch.setattr(StableDiffusionInpaintPipeline, "__call__",
                        lambda pipe, *a, **k: calls.append(1) or (_ for _ in ()).throw(
                            torch.OutOfMemoryError("CUDA out of memory")))
    with pytest.raises(torch.OutOfMemoryError):
        _fill(Image(pixels), selection, sd15, working_size=256)
    assert len(calls) == 2


def test_the_device_is_the_job_managers_not_the_environments(
        sd15: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --device cpu` binds fill too: the server's settings reach it through the job's
    model manager, whatever RB_DEVICE says (here a CUDA this machine may not have)."""
    import torch

    from bridge.config import load_settings
    from bridge.models.manager import ModelManager

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA, where RB_DEVICE=cuda cannot be honoured")
    monkeypatch.setenv("RB_DEVICE", "cuda")
    ctx = OpContext(models=ModelManager(load_settings(device="cpu")))
    result = _fill(Image(photo_like(200, 240)), Mask.rectangle(Bounds(60, 50, 60, 50)), sd15, ctx)
    assert result.metadata["device"] == "cpu"


PARAM_IMAGE = Image(photo_like(96, 96, seed=4))
PARAM_SELECTION = Mask.rectangle(Bounds(32, 32, 32, 32))
PARAM_BASE = {"prompt": "the sky", "negative_prompt": "", "guidance": 7.5, "strength": 1.0,
              "color_match": True, "working_size": 64, "scheduler": "euler"}


@pytest.fixture(scope="module")
def param_baseline(sd15: Path):
    return _fill(PARAM_IMAGE, PARAM_SELECTION, sd15, **PARAM_BASE).primary


@pytest.mark.parametrize("change", [
    {"prompt": "red sky"}, {"negative_prompt": "the red"}, {"guidance": 1.5},
    {"strength": 0.5}, {"color_match": False},
])
def test_each_parameter_changes_the_fill(sd15: Path, param_baseline, change: dict) -> None:
    """Same seed, one parameter changed: a different fill (a parameter that did nothing would
    give the same pixels). Tiny size and two steps keep each run short."""
    after = _fill(PARAM_IMAGE, PARAM_SELECTION, sd15, **{**PARAM_BASE, **change}).primary
    assert param_baseline.bounds == after.bounds
    inside = param_baseline.mask == 255
    assert not np.array_equal(param_baseline.image.pixels[inside], after.image.pixels[inside])
