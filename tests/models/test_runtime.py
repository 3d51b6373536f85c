"""Loading through spandrel: safe reading, architecture detection, device, precision, memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.errors import ModelError
from bridge.imaging.tiling import TileTooLarge
from bridge.models import runtime
from bridge.models.resident import ResidentModels
from tests.models import tiny_models as tm


class Evil:
    """Unpickling this runs code: the loader must refuse before that happens."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_pickles_with_code_are_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    checkpoint = tm.compact()
    checkpoint["extra"] = Evil(marker)
    torch.save(checkpoint, path)
    with pytest.raises(ModelError, match=r"refusing to load evil\.pth"):
        runtime.read_state_dict(path)
    assert not marker.exists()


def test_torchscript_only_when_vouched_for(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 3)), str(path))
    with pytest.raises(ModelError, match="TorchScript"):
        runtime.read_state_dict(path)
    state = runtime.read_state_dict(path, allow_torchscript=True)
    assert set(state) == {"weight", "bias"}


def test_unreadable_and_unknown_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable"):
        runtime.read_state_dict(junk)
    with pytest.raises(ModelError, match="unsupported weight file type"):
        runtime.read_state_dict(tmp_path / "model.onnx")
    with pytest.raises(ModelError, match="not a model architecture"):
        runtime.describe_state_dict({"some.weight": torch.zeros(3)})


@pytest.mark.parametrize(("build", "arch", "scale", "purpose"), [
    (lambda: tm.compact(), "Compact", 4, "SR"),
    (lambda: tm.compact(scale=2), "Compact", 2, "SR"),
    (lambda: tm.rrdb(), "ESRGAN", 4, "SR"),
    (lambda: tm.rrdb(scale=2), "ESRGAN", 2, "SR"),
    (tm.scunet, "SCUNet", 1, "Restoration"),
    (tm.fbcnn, "FBCNN", 1, "Restoration"),
    (tm.restoreformer, "RestoreFormer", 1, "FaceSR"),
])
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_real_layouts_are_detected(tmp_path: Path, build, arch, scale, purpose, suffix) -> None:
    path = tm.save(build(), tmp_path / f"model{suffix}")
    descriptor = runtime.describe_state_dict(runtime.read_state_dict(path))
    assert (descriptor.architecture.id, descriptor.scale, descriptor.purpose) == (
        arch, scale, purpose)


def test_receptive_radius() -> None:
    def radius(checkpoint) -> int | None:
        return runtime.receptive_radius(runtime.describe_state_dict(tm.flat(checkpoint)))

    assert radius(tm.compact(num_conv=5)) == 7
    assert radius(tm.rrdb(num_blocks=1)) == 20
    assert radius(tm.rrdb(num_blocks=1, scale=2)) == 40  # pixel-unshuffled input
    assert radius(tm.scunet()) is None
    d = runtime.describe_state_dict(tm.flat(tm.rrdb(num_blocks=3)))
    assert runtime.tile_context(d) == (runtime.DEEP_PAD, runtime.DEEP_BLEND)  # 50 > 48


def test_devices() -> None:
    assert runtime.resolve_device("cpu").type == "cpu"
    assert runtime.resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ModelError, match=r"unknown device|unsupported device"):
        runtime.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            runtime.resolve_device("cuda")


def test_half_precision_only_on_cuda_where_supported() -> None:
    d = runtime.describe_state_dict(tm.flat(tm.compact()))
    assert d.supports_half
    assert runtime.choose_dtype(d, torch.device("cpu")) == torch.float32
    assert runtime.choose_dtype(d, torch.device("mps")) == torch.float32
    assert runtime.choose_dtype(d, torch.device("cuda")) == torch.float16
    d.supports_half = False
    assert runtime.choose_dtype(d, torch.device("cuda")) == torch.float32


class Wrapped:
    """A descriptor stand-in that misbehaves on demand and otherwise runs the real one."""

    def __init__(self, real, nan_in_half: bool = False, oom_above: int | None = None) -> None:
        self.real = real
        self.nan_in_half = nan_in_half
        self.oom_above = oom_above
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __call__(self, x):
        self.calls += 1
        if self.oom_above is not None and max(x.shape[-2:]) > self.oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.nan_in_half and x.dtype == torch.float16:
            return torch.full((1, 3, x.shape[2] * 4, x.shape[3] * 4), float("nan"),
                              dtype=x.dtype)
        return self.real(x)


def test_non_finite_half_output_falls_back_to_fp32() -> None:
    state = tm.flat(tm.compact())
    cpu = torch.device("cpu")

    def fresh():
        return runtime.describe_state_dict(dict(state)).eval()

    tile = np.random.default_rng(0).random((12, 10, 3)).astype(np.float32)
    want = runtime.LoadedModel("m", fresh(), cpu, torch.float32)(tile)
    model = runtime.LoadedModel("m", Wrapped(fresh(), nan_in_half=True), cpu, torch.float16,
                                reload_fp32=fresh)
    got = model(tile)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert model.fell_back_to_fp32 and model.dtype == torch.float32
    assert "full precision" in model.warnings[0]


def test_the_fp32_fallback_is_counted_at_its_new_size_in_the_budget() -> None:
    """A model that falls back to fp32 takes twice its fp16 bytes: the registry counts
    that, and idle models go to keep the budget."""
    state = tm.flat(tm.compact())

    def fresh():
        return runtime.describe_state_dict(dict(state)).eval()

    half = Wrapped(fresh().to(torch.float16), nan_in_half=True)
    fp16_bytes = runtime.module_bytes(half.model)
    registry = ResidentModels()
    cache = runtime.ModelCache(budget_bytes=5 * fp16_bytes // 2, registry=registry)
    cache.put("idle", runtime.LoadedModel("idle", fresh().to(torch.float16), torch.device("cpu"),
                                          torch.float16))
    model = runtime.LoadedModel("m", half, torch.device("cpu"), torch.float16, reload_fp32=fresh)
    cache.put("m", model)
    assert [e.nbytes for e in registry.entries()] == [fp16_bytes, fp16_bytes]

    model(np.random.default_rng(0).random((12, 10, 3)).astype(np.float32))
    assert model.fell_back_to_fp32
    [entry] = registry.entries()  # 1 + 2 fp16 sizes are over 2.5: the idle one went
    assert (entry.key, entry.nbytes) == ("m", 2 * fp16_bytes) and cache.loaded() == ["m"]


def test_non_finite_fp32_output_is_an_error() -> None:
    d = runtime.describe_state_dict(tm.flat(tm.compact()))
    with torch.no_grad():
        d.model.body[0].weight.fill_(float("inf"))
    model = runtime.LoadedModel("m", d, torch.device("cpu"), torch.float32)
    with pytest.raises(ModelError, match="non-finite"):
        model(np.full((8, 8, 3), 0.5, np.float32))


def test_out_of_memory_becomes_tile_too_large() -> None:
    d = runtime.describe_state_dict(tm.flat(tm.compact()))
    model = runtime.LoadedModel("m", Wrapped(d, oom_above=16), torch.device("cpu"),
                                torch.float32)
    assert model(np.zeros((16, 16, 3), np.float32)).shape == (64, 64, 3)
    with pytest.raises(TileTooLarge):
        model(np.zeros((17, 16, 3), np.float32))


def test_blend_is_a_weighted_mean_of_layers() -> None:
    a, b = tm.flat(tm.compact(seed=1)), tm.flat(tm.compact(seed=2))
    mixed = runtime.blend_state_dicts(a, b, 0.25)
    key = "body.0.weight"
    torch.testing.assert_close(mixed[key], 0.25 * a[key] + 0.75 * b[key])
    with pytest.raises(ModelError, match="different layers"):
        runtime.blend_state_dicts(a, tm.flat(tm.compact(num_conv=3)), 0.5)


def test_cache_evicts_least_recently_used_beyond_budget() -> None:
    def loaded(name: str, num_feat: int):
        d = runtime.describe_state_dict(tm.flat(tm.compact(num_feat=num_feat)))
        return runtime.LoadedModel(name, d, torch.device("cpu"), torch.float32)

    a, b, c = loaded("a", 16), loaded("b", 16), loaded("c", 16)
    # A registry of its own: the process's one holds other tests' models too.
    cache = runtime.ModelCache(budget_bytes=int(a.nbytes * 2.5), registry=ResidentModels())
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    assert cache.put("c", c) == ["b"]
    assert cache.loaded() == ["a", "c"] and cache.get("b") is None
    assert cache.total_bytes == a.nbytes + c.nbytes
    huge = runtime.ModelCache(budget_bytes=1, registry=ResidentModels())
    huge.put("a", a)
    assert huge.loaded() == ["a"]  # a model larger than the budget still loads, alone
    assert huge.put("b", b) == ["a"]
