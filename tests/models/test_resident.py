"""One registry of resident models: spandrel models, diffusion pipelines, LaMa and rembg
sessions share one least-recently-used order and one budget, and what a running
operation uses is never evicted. Tiny real models throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bridge.config import load_settings
from bridge.diffusion import loader, source
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.inpaint import matte
from bridge.models.manager import ModelManager
from bridge.models.resident import ResidentModels, resident_models
from bridge.ops.base import OpContext
from bridge.ops.registry import run_operation
from tests.inpaint.support import cached_model
from tests.inpaint.tiny import build_sd15_inpaint, write_u2net_like_onnx
from tests.models import tiny_models as tm

UPSCALER, OTHER = "realesr-animevideov3", "realesr-general-x4v3"


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)


@pytest.fixture
def registry() -> Iterator[ResidentModels]:
    """The process's registry, emptied of what earlier tests in this worker left."""
    reg = resident_models()
    reg.unload()
    yield reg
    reg.unload()


@pytest.fixture
def budget_7mb(monkeypatch: pytest.MonkeyPatch) -> int:
    """Sizes (fp32): each spandrel model below ~2.4 MB, the tiny SD 1.5 pipeline ~4.0 MB.
    7 MB holds both spandrel models, or one of them and the pipeline, never all three."""
    monkeypatch.setenv("RB_MEMORY_BUDGET_MB", "7")
    return 7 << 20


@pytest.fixture
def manager(tmp_path: Path, budget_7mb: int) -> ModelManager:
    m = ModelManager(load_settings(device="cpu"))
    for seed, model_id in enumerate((UPSCALER, OTHER)):
        m.import_file(tm.save(tm.compact(num_feat=64, num_conv=16, seed=seed),
                              tmp_path / f"{seed}.pth"), as_id=model_id)
    return m


def kinds_and_labels(reg: ResidentModels) -> list[tuple[str, str]]:
    return [(e.kind, e.label) for e in reg.entries()]


def pipeline(path: Path) -> Any:
    return loader.load_pipeline(source.resolve(OpContext(), str(path)), "cpu")


def test_a_pipeline_evicts_the_least_recently_used_spandrel_model_and_back(
        registry: ResidentModels, manager: ModelManager, sd15: Path, budget_7mb: int) -> None:
    first = manager.load(UPSCALER)
    manager.load(OTHER)
    assert kinds_and_labels(registry) == [("spandrel", UPSCALER), ("spandrel", OTHER)]

    pipe = pipeline(sd15)
    assert kinds_and_labels(registry) == [("spandrel", OTHER), ("diffusion", str(sd15))]
    assert [k[0] for k in manager.cache.loaded()] == [OTHER]
    assert registry.total_bytes <= budget_7mb and registry.budget_bytes == budget_7mb

    manager.load(OTHER)  # now the pipeline is the least recently used
    assert manager.load(UPSCALER) is not first  # it was evicted: loaded again
    assert kinds_and_labels(registry) == [("spandrel", OTHER), ("spandrel", UPSCALER)]
    assert loader._cached.values() == []
    assert pipeline(sd15) is not pipe


class OpInThread:
    """Runs an operation on a thread and pauses it, once its model of `kind` is loaded,
    until `finish()`."""

    def __init__(self, registry: ResidentModels, kind: str, name: str, image: Image,
                 mask: Mask | None, params: dict[str, Any], models: Any = None) -> None:
        self.registry, self.kind = registry, kind
        self.holding, self.go = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        ctx = OpContext(progress=self._progress, models=models)
        self.thread = threading.Thread(target=self._run, args=(name, image, mask, params, ctx))
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.holding.wait(0.05) and self.thread.is_alive():
            assert time.monotonic() < deadline, f"the operation never loaded a {kind} model"
        assert self.holding.is_set(), f"the operation ended without holding a {kind} model: " \
                                      f"{self.error!r}"

    def _progress(self, fraction: float, message: str) -> None:
        if not self.holding.is_set() and any(e.kind == self.kind for e in self.registry.entries()):
            self.holding.set()
            self.go.wait(60)

    def _run(self, *args: Any) -> None:
        try:
            run_operation(*args)
        except BaseException as e:
            self.error = e

    def finish(self) -> None:
        self.go.set()
        self.thread.join(60)
        assert not self.thread.is_alive() and self.error is None, self.error


def test_a_model_a_running_operation_uses_is_never_evicted(
        registry: ResidentModels, manager: ModelManager, sd15: Path) -> None:
    image = Image(np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8))
    params = {"model": UPSCALER, "scale": 4}
    op = OpInThread(registry, "spandrel", "upscale", image, None, params, manager)
    try:
        [held] = registry.entries()
        assert (held.label, held.uses) == (UPSCALER, 1)
        manager.load(OTHER)
        pipeline(sd15)  # needs room: the held upscaler is older, the idle one goes instead
        assert kinds_and_labels(registry) == [("spandrel", UPSCALER), ("diffusion", str(sd15))]
        assert [m["in_use"] for m in registry.snapshot()["models"]] == [True, False]

        idle = registry.entries()[1]
        assert registry.unload() == {"unloaded": [idle.id], "pending": [held.id]}
        assert registry.entries() == [held]
    finally:
        op.finish()
    assert registry.entries() == []  # unloaded when the operation let go
    assert manager.cache.loaded() == []


def test_one_at_a_time_caches_keep_a_session_in_use_until_its_operation_ends(
        registry: ResidentModels, tmp_path: Path, budget_7mb: int) -> None:
    first = write_u2net_like_onnx(tmp_path / "first.onnx", seed=1)
    second = write_u2net_like_onnx(tmp_path / "second.onnx", seed=2)
    image = Image(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    op = OpInThread(registry, "rembg", "remove-background", image, None, {"model": str(first)})
    try:
        replacement = matte.session_for("u2net", second, "cpu")
        labels = [(e.label, e.uses, e.retired) for e in registry.entries()]
        assert labels == [("u2net (first.onnx)", 1, True), ("u2net (second.onnx)", 0, False)]
    finally:
        op.finish()
    assert kinds_and_labels(registry) == [("rembg", "u2net (second.onnx)")]
    assert matte.session_for("u2net", second, "cpu") is replacement
    # Sized by the model file: an ONNX session's weights are the file.
    assert registry.entries()[0].nbytes == second.stat().st_size


def test_an_operation_holding_a_pipeline_keeps_it_while_spandrel_models_load(
        registry: ResidentModels, manager: ModelManager, sd15: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_MEMORY_BUDGET_MB", "5")  # the pipeline, or one spandrel model and change
    small = ModelManager(load_settings(device="cpu"))  # same models folder, 5 MB budget
    image = Image(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    params = {"model": str(sd15), "steps": 2, "working_size": 64, "seed": 1, "scheduler": "euler"}
    selection = Mask.rectangle(Bounds(20, 20, 16, 16))
    op = OpInThread(registry, "diffusion", "fill", image, selection, params, small)
    try:
        small.load(UPSCALER)  # over the budget, but the pipeline is in use
        assert kinds_and_labels(registry) == [("diffusion", str(sd15)), ("spandrel", UPSCALER)]
        small.load(OTHER)  # room is made from what is idle
        assert kinds_and_labels(registry) == [("diffusion", str(sd15)), ("spandrel", OTHER)]
    finally:
        op.finish()
    # Released: the budget holds again, least recently used first.
    assert kinds_and_labels(registry) == [("spandrel", OTHER)]
    assert registry.total_bytes <= 5 << 20

