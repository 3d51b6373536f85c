"""The registry data file: complete, well-formed, and honest about checksums."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bridge.models.registry import ModelEntry, Registry, builtin_registry

REQUIRED = {
    "RealESRGAN_x4plus": ("upscale", "ESRGAN", 4),
    "RealESRGAN_x2plus": ("upscale", "ESRGAN", 2),
    "realesr-general-x4v3": ("upscale", "Compact", 4),
    "realesr-general-wdn-x4v3": ("upscale", "Compact", 4),
    "realesr-animevideov3": ("upscale", "Compact", 4),
    "GFPGANv1.4": ("restore-faces", "GFPGAN", 1),
    "RestoreFormer": ("restore-faces", "RestoreFormer", 1),
    "CodeFormer": ("restore-faces", "CodeFormer", 1),
    "yunet": ("detect-faces", "YuNet", 1),
    "big-lama": ("inpaint", "LaMa", 1),
    "scunet-real-psnr": ("denoise", "SCUNet", 1),
    "fbcnn-color": ("denoise", "FBCNN", 1),
}


def test_required_models_are_registered() -> None:
    registry = builtin_registry()
    for model_id, (task, arch, scale) in REQUIRED.items():
        entry = registry.get(model_id)
        assert entry is not None, model_id
        assert (entry.task, entry.architecture, entry.scale) == (task, arch, scale)


def test_entries_are_well_formed() -> None:
    registry = builtin_registry()
    for e in registry:
        if e.loader == "diffusers":  # multi-file diffusers repositories: named, not downloaded
            assert e.url is None and "/" in e.extra["hub_repo"] and e.license, e.id
            continue
        assert e.url is not None and e.url.startswith("https://"), e.id
        assert e.license and e.title and e.description
        # Every download is checked: by sha256, else by md5 (where no sha256 is published).
        assert e.has_official_checksum, e.id
        assert Path(e.filename).suffix in e.suffixes
    codeformer = registry.get("CodeFormer")
    assert codeformer.non_commercial and "spandrel_extra_arches" in codeformer.requires
    assert not registry.get("RealESRGAN_x4plus").non_commercial
    general = registry.get("realesr-general-x4v3")
    assert general.denoise_twin == "realesr-general-wdn-x4v3"
    # Every operation of this issue has a default model.
    defaults = {op for e in registry for op in e.default_for}
    assert {"upscale", "restore-faces", "denoise"} <= defaults


def test_best_first_per_task() -> None:
    ups = builtin_registry().for_task("upscale")
    assert ups[0].id == "RealESRGAN_x4plus"
    assert [e.priority for e in ups] == sorted((e.priority for e in ups), reverse=True)


def test_yunet_checksum_is_the_shared_files(shared_models: Path) -> None:
    data = (shared_models / "face_detection_yunet_2023mar.onnx").read_bytes()
    entry = builtin_registry().get("yunet")
    assert hashlib.sha256(data).hexdigest() == entry.sha256
    assert len(data) == entry.size


def test_lookup_by_name_and_checksum() -> None:
    registry = builtin_registry()
    assert registry.find("RealESRGAN_x4plus.pth").id == "RealESRGAN_x4plus"
    assert registry.find("codeformer").id == "CodeFormer"
    sha = registry.get("realesr-general-x4v3").sha256
    assert registry.by_checksum(sha).id == "realesr-general-x4v3"
    assert registry.by_checksum("0" * 64) is None


def test_invalid_data_is_refused(tmp_path: Path) -> None:
    base = builtin_registry().get("yunet").to_json()
    with pytest.raises(ValueError, match="sha256"):
        ModelEntry.from_json({**base, "sha256": "abc"})
    with pytest.raises(ValueError, match="task"):
        ModelEntry.from_json({**base, "task": "teleport"})
    with pytest.raises(ValueError, match="invalid model id"):
        ModelEntry.from_json({**base, "id": "../evil"})
    with pytest.raises(ValueError, match="twice"):
        Registry([ModelEntry.from_json(base), ModelEntry.from_json({**base, "id": "YUNET"})])
    twin = {**builtin_registry().get("realesr-general-x4v3").to_json(), "denoise_twin": "nope"}
    with pytest.raises(ValueError, match="denoise twin"):
        Registry([ModelEntry.from_json(twin)])
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"models": [base]}))
    assert [e.id for e in Registry.from_file(path)] == ["yunet"]
