"""The model manager: states, pull, offline, import, verify, remove, require, load."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.config import load_settings
from bridge.errors import InvalidInput, ModelError, ModelMissing, NotFound
from bridge.models.download import ChecksumMismatch
from bridge.models.manager import ModelManager, default_manager
from bridge.models.registry import Registry, builtin_registry
from tests.models import tiny_models as tm
from tests.models.file_server import FileServer


def served_registry(server: FileServer, files: dict[str, bytes],
                    checksum: bool = True) -> Registry:
    """The built-in registry with some entries pointing at the local server."""
    entries = []
    for e in builtin_registry():
        if e.id in files:
            data = files[e.id]
            url = server.add(e.filename, data)
            e = dataclasses.replace(
                e, url=url, size=len(data),
                sha256=hashlib.sha256(data).hexdigest() if checksum else None, md5=None)
        entries.append(e)
    return Registry(entries)


def manager(registry: Registry | None = None, **overrides) -> ModelManager:
    return ModelManager(load_settings(**overrides), registry)


@pytest.fixture
def compact_bytes(tmp_path: Path) -> bytes:
    return tm.save(tm.compact(), tmp_path / "c.pth").read_bytes()


# -- states and pull ----------------------------------------------------------------------
def test_states_list_every_entry_with_its_facts() -> None:
    m = manager()
    states = {s["id"]: s for s in m.states()}
    assert set(states) == {e.id for e in builtin_registry()}
    cf = states["CodeFormer"]
    assert cf["state"] == "missing" and cf["non_commercial"] and cf["path"] is None
    assert cf["url"].startswith("https://github.com/sczhou/CodeFormer/")
    assert states["RealESRGAN_x4plus"]["default_for"] == ["upscale"]
    json.dumps(states)  # JSON-able for the server
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        m.state("nope")


def test_pull_downloads_verifies_and_records(file_server: FileServer,
                                             compact_bytes: bytes) -> None:
    m = manager(served_registry(file_server, {"realesr-animevideov3": compact_bytes}))
    seen_states: list[str] = []

    def progress(received: int, total: int | None) -> None:
        seen_states.append(m.state("realesr-animevideov3")["state"])

    path = m.pull("realesr-animevideov3", progress=progress)
    assert path.read_bytes() == compact_bytes and path.name == "realesr-animevideov3.pth"
    assert "downloading" in seen_states
    state = m.state("realesr-animevideov3")
    assert state["state"] == "installed" and state["official"] and state["source"] == "download"
    assert state["sha256"] == hashlib.sha256(compact_bytes).hexdigest()
    assert m.require("realesr-animevideov3") == path
    # A second pull is a no-op; the server is not asked again.
    m.pull("realesr-animevideov3")
    assert len(file_server.requests) == 1
    assert m.verify("realesr-animevideov3")


def test_pull_with_a_wrong_file_leaves_nothing(file_server: FileServer,
                                               compact_bytes: bytes) -> None:
    registry = served_registry(file_server, {"realesr-animevideov3": compact_bytes})
    file_server.files["realesr-animevideov3.pth"].data = compact_bytes[:-1] + b"!"
    m = manager(registry)
    with pytest.raises(ChecksumMismatch):
        m.pull("realesr-animevideov3")
    assert m.state("realesr-animevideov3")["state"] == "missing"
    assert not m.models_dir.exists() or os.listdir(m.models_dir) == []


def test_first_download_without_checksum_is_recorded(
        file_server: FileServer, compact_bytes: bytes, caplog) -> None:
    m = manager(served_registry(file_server, {"realesr-animevideov3": compact_bytes},
                                checksum=False))
    with caplog.at_level(logging.WARNING):
        m.pull("realesr-animevideov3")
    assert "trust on first download" in caplog.text
    sha = hashlib.sha256(compact_bytes).hexdigest()
    assert m.state("realesr-animevideov3")["sha256"] == sha
    # From now on the recorded hash guards the file.
    path = m.require("realesr-animevideov3")
    path.write_bytes(path.read_bytes()[:-1] + b"?")
    assert not m.verify("realesr-animevideov3")
    assert m.state("realesr-animevideov3")["state"] == "corrupt"


def test_offline_mode_never_touches_the_network(file_server: FileServer,
                                                compact_bytes: bytes, monkeypatch) -> None:
    monkeypatch.setenv("RB_OFFLINE", "1")
    m = manager(served_registry(file_server, {"realesr-animevideov3": compact_bytes}))
    assert m.settings.offline
    with pytest.raises(ModelMissing) as info:
        m.pull("realesr-animevideov3")
    message = info.value.message
    assert "models pull realesr-animevideov3" in message
    assert "models import PATH --as realesr-animevideov3" in message
    assert info.value.details["model"] == "realesr-animevideov3"
    assert file_server.requests == []


def test_require_names_both_ways_to_get_a_model() -> None:
    with pytest.raises(ModelMissing) as info:
        manager().require("RealESRGAN_x4plus")
    assert info.value.status == 409
    details = info.value.details
    assert details["model"] == "RealESRGAN_x4plus"
    assert "retouch-bridge models pull RealESRGAN_x4plus" in details["hint"]
    assert "retouch-bridge models import PATH --as RealESRGAN_x4plus" in details["hint"]


# -- import -------------------------------------------------------------------------------
def test_import_accepts_a_non_official_file_as_user_supplied(tmp_path: Path) -> None:
    m = manager()
    source = tm.save(tm.compact(), tmp_path / "whatever.safetensors")
    dest = m.import_file(source, as_id="realesr-animevideov3")
    assert dest.name == "realesr-animevideov3.safetensors"
    state = m.state("realesr-animevideov3")
    assert state["state"] == "installed" and state["official"] is False
    assert state["source"] == "import"
    assert state["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert m.verify("realesr-animevideov3")
    # Re-importing another format replaces the first file.
    dest2 = m.import_file(tm.save(tm.compact(seed=3), tmp_path / "x.pth"),
                          as_id="realesr-animevideov3")
    assert dest2.name == "realesr-animevideov3.pth" and not dest.exists()


def test_import_of_the_shared_real_file(shared_models: Path) -> None:
    m = manager()
    m.import_file(shared_models / "realesr-animevideov3.pth", as_id="realesr-animevideov3")
    state = m.state("realesr-animevideov3")
    # Re-zipped, so not the official hash, but accepted and loadable.
    assert state["official"] is False and state["state"] == "installed"
    loaded = m.load("realesr-animevideov3")
    assert (loaded.architecture, loaded.scale, loaded.context) == ("Compact", 4, (18, 4))


def test_import_recognises_files_by_name_and_checksum(tmp_path: Path) -> None:
    m = manager()
    path = tm.save(tm.rrdb(), tmp_path / "RealESRGAN_x4plus.pth")
    m.import_file(path)
    assert m.state("RealESRGAN_x4plus")["state"] == "installed"
    data = tm.save(tm.compact(), tmp_path / "renamed.pth").read_bytes()
    entries = [dataclasses.replace(e, sha256=hashlib.sha256(data).hexdigest())
               if e.id == "realesr-general-x4v3" else e for e in builtin_registry()]
    m2 = manager(Registry(entries))
    m2.import_file(tmp_path / "renamed.pth")
    state = m2.state("realesr-general-x4v3")
    assert state["state"] == "installed" and state["official"] is True


def test_import_refuses_a_file_that_is_another_model(tmp_path: Path) -> None:
    m = manager()
    with pytest.raises(InvalidInput, match="ESRGAN x4 model, but 'realesr-animevideov3'"):
        m.import_file(tm.save(tm.rrdb(), tmp_path / "a.pth"), as_id="realesr-animevideov3")
    with pytest.raises(InvalidInput, match="x2 model"):
        m.import_file(tm.save(tm.rrdb(scale=2), tmp_path / "b.pth"), as_id="RealESRGAN_x4plus")
    with pytest.raises(InvalidInput, match=r"needs a \.onnx file"):
        m.import_file(tm.save(tm.compact(), tmp_path / "c.pth"), as_id="yunet")
    with pytest.raises(InvalidInput, match="no such file"):
        m.import_file(tmp_path / "missing.pth")
    assert all(s["state"] == "missing" for s in m.states())


def test_import_yunet_onnx(shared_models: Path) -> None:
    m = manager()
    m.import_file(shared_models / "face_detection_yunet_2023mar.onnx")
    state = m.state("yunet")
    assert state["state"] == "installed" and state["official"] is True
    assert m.require("yunet").suffix == ".onnx"
    with pytest.raises(ModelError, match="loaded by its operation"):
        m.load("yunet")


def test_custom_models_get_an_entry_that_persists(tmp_path: Path) -> None:
    m = manager()
    source = tm.save(tm.compact(scale=2), tmp_path / "My Sharp x2.safetensors")
    m.import_file(source)
    entry = next(e for e in m.entries() if e.custom)
    assert (entry.id, entry.task, entry.architecture, entry.scale) == (
        "My-Sharp-x2", "upscale", "Compact", 2)
    again = manager()  # a new process sees it from the manifest
    assert again.state("My-Sharp-x2")["state"] == "installed"
    assert again.load("My-Sharp-x2").scale == 2
    denoiser = tm.save(tm.scunet(), tmp_path / "noise.pth")
    m.import_file(denoiser, as_id="my-denoiser")
    assert m.entry("my-denoiser").task == "denoise"
    with pytest.raises(InvalidInput, match="registry model"):
        m.import_file(source, as_id="realesr-general-x4V3")
    m.remove("My-Sharp-x2")
    with pytest.raises(NotFound):
        m.entry("My-Sharp-x2")


def test_other_architectures_import_and_load(tmp_path: Path) -> None:
    m = manager()
    # CodeFormer is found only once spandrel_extra_arches is installed in spandrel's
    # registry, which the runtime does on first use.
    cases = [("scunet-real-psnr", tm.scunet(), ".pth"), ("fbcnn-color", tm.fbcnn(), ".safetensors"),
             ("RestoreFormer", tm.restoreformer(), ".pth"),
             ("CodeFormer", tm.codeformer(), ".safetensors")]
    for model_id, checkpoint, suffix in cases:
        m.import_file(tm.save(checkpoint, tmp_path / f"{model_id}{suffix}"), as_id=model_id)
        loaded = m.load(model_id)
        assert loaded.architecture == m.entry(model_id).architecture
        # fp16 only on CUDA and only where spandrel marks the architecture safe for it
        half = loaded.device.type == "cuda" and loaded.descriptor.supports_half
        assert loaded.precision == ("float16" if half else "float32")
    out = m.load("scunet-real-psnr")(np.random.default_rng(0).random((48, 40, 3), np.float32))
    assert out.shape == (48, 40, 3) and np.isfinite(out).all()


@pytest.mark.skipif(not os.environ.get("RB_LONG_TESTS"), reason="RB_LONG_TESTS=1: 350 MB model")
def test_gfpgan_imports_and_loads(tmp_path: Path) -> None:
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(0)
    path = tm.save({"params_ema": GFPGAN().state_dict()}, tmp_path / "GFPGANv1.4.pth")
    m = manager()
    m.import_file(path, as_id="GFPGANv1.4")
    assert m.load("GFPGANv1.4").architecture == "GFPGAN"


def test_torchscript_files_load_only_with_the_official_checksum(tmp_path: Path) -> None:
    from spandrel.architectures.Compact import Compact

    path = tmp_path / "traced.pt"
    module = Compact(num_feat=8, num_conv=2, upscale=4).eval()
    torch.jit.save(torch.jit.trace(module, torch.rand(1, 3, 8, 8)), str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    entries = [dataclasses.replace(e, filename="anime.pt", sha256=sha)
               if e.id == "realesr-animevideov3" else e for e in builtin_registry()]
    m = manager(Registry(entries))
    m.import_file(path, as_id="realesr-animevideov3")
    assert m.state("realesr-animevideov3")["official"] is True
    assert m.load("realesr-animevideov3").architecture == "Compact"
    with pytest.raises(ModelError, match="TorchScript"):
        manager().import_file(path, as_id="realesr-animevideov3")  # not the official bytes


# -- verify, remove -------------------------------------------------------------------------
def test_verify_detects_changes_and_require_then_refuses(tmp_path: Path) -> None:
    m = manager()
    dest = m.import_file(tm.save(tm.compact(), tmp_path / "a.pth"), as_id="realesr-animevideov3")
    data = dest.read_bytes()
    dest.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # same size
    assert m.state("realesr-animevideov3")["state"] == "installed"  # cheap check only
    assert not m.verify("realesr-animevideov3")
    assert m.state("realesr-animevideov3")["state"] == "corrupt"
    with pytest.raises(ModelMissing, match="damaged"):
        m.require("realesr-animevideov3")
    dest.write_bytes(data[:50])
    assert m.state("realesr-animevideov3")["state"] == "corrupt"
    with pytest.raises(ModelMissing):
        m.verify("RealESRGAN_x4plus")


def test_remove_deletes_file_partial_and_record(tmp_path: Path) -> None:
    m = manager()
    dest = m.import_file(tm.save(tm.compact(), tmp_path / "a.pth"), as_id="realesr-animevideov3")
    m.load("realesr-animevideov3")
    (m.models_dir / "RealESRGAN_x4plus.pth.part").write_bytes(b"x" * 10)
    assert m.state("RealESRGAN_x4plus")["partial"] == 10
    m.remove("realesr-animevideov3")
    assert not dest.exists() and m.state("realesr-animevideov3")["state"] == "missing"
    assert m.cache.loaded() == []
    m.remove("RealESRGAN_x4plus")  # only a partial download: removed too
    assert sorted(os.listdir(m.models_dir)) == ["manifest.json"]
    with pytest.raises(NotFound, match="not installed"):
        m.remove("realesr-animevideov3")


# -- load -----------------------------------------------------------------------------------
def test_load_caches_and_evicts_under_the_budget(tmp_path: Path) -> None:
    m = manager(memory_budget_mb=1)
    m.import_file(tm.save(tm.compact(num_feat=64, num_conv=16), tmp_path / "a.pth"),
                  as_id="realesr-animevideov3")
    m.import_file(tm.save(tm.compact(num_feat=64, num_conv=32, seed=1), tmp_path / "b.pth"),
                  as_id="realesr-general-x4v3")
    first = m.load("realesr-animevideov3")
    assert m.load("realesr-animevideov3") is first
    assert first.nbytes > 1 << 19
    m.load("realesr-general-x4v3")
    assert [k[0] for k in m.cache.loaded()] == ["realesr-general-x4v3"]
    assert m.load("realesr-animevideov3") is not first  # was evicted, loaded again


def test_load_checks_the_installed_file_is_the_registry_model(tmp_path: Path) -> None:
    m = manager()
    dest = m.import_file(tm.save(tm.compact(), tmp_path / "a.pth"), as_id="realesr-animevideov3")
    # A record that agrees with another network's file (size, sha256: its bytes pass the
    # checks before use): loading still finds it is not the registry's architecture.
    tm.save(tm.rrdb(), dest)
    record = json.loads(m.manifest_path.read_text())["models"]["realesr-animevideov3"]
    m._update_manifest("realesr-animevideov3", {
        **record, "size": dest.stat().st_size,
        "sha256": hashlib.sha256(dest.read_bytes()).hexdigest()})
    with pytest.raises(ModelError, match="holds a ESRGAN model"):
        m.load("realesr-animevideov3")


def test_denoise_strength_blends_with_the_twin(tmp_path: Path) -> None:
    m = manager()
    general, weak = tm.compact(seed=1), tm.compact(seed=2)
    m.import_file(tm.save(general, tmp_path / "g.pth"), as_id="realesr-general-x4v3")
    with pytest.raises(ModelMissing, match="realesr-general-wdn-x4v3"):
        m.load("realesr-general-x4v3", denoise=0.5)
    m.import_file(tm.save(weak, tmp_path / "w.pth"), as_id="realesr-general-wdn-x4v3")
    blended = m.load("realesr-general-x4v3", denoise=0.3)
    key = "body.0.weight"
    want = 0.3 * general["params"][key] + 0.7 * weak["params"][key]
    got = blended.descriptor.model.state_dict()[key]
    # Blended in fp32, then stored at the model's precision (fp16 on CUDA).
    tol = 1e-3 if got.dtype == torch.float16 else 1e-6
    torch.testing.assert_close(got.float().cpu(), want, atol=tol, rtol=tol)
    assert m.load("realesr-general-x4v3", denoise=1.0) is m.load("realesr-general-x4v3")
    with pytest.raises(ModelError, match="no denoise strength"):
        m.load("realesr-general-wdn-x4v3", denoise=0.5)


def test_default_manager_follows_the_settings(tmp_path: Path, monkeypatch) -> None:
    first = default_manager()
    assert default_manager() is first
    monkeypatch.setenv("RB_MODELS_DIR", str(tmp_path / "elsewhere"))
    second = default_manager()
    assert second is not first and second.models_dir == tmp_path / "elsewhere"


def test_registry_file_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    entry = builtin_registry().get("yunet").to_json()
    path = tmp_path / "mirror.json"
    path.write_text(json.dumps({"models": [{**entry, "url": "https://mirror.example/y.onnx"}]}))
    monkeypatch.setenv("RB_MODEL_REGISTRY", str(path))
    m = manager()
    assert [s["url"] for s in m.states()] == ["https://mirror.example/y.onnx"]
    path.write_text("{broken")
    with pytest.raises(ModelError, match="RB_MODEL_REGISTRY"):
        manager()
