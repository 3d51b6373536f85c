"""restore-faces and restore-faces-upscale with the real YuNet and a tiny, randomly
initialised RestoreFormer (the real architecture at 512 px, 32 channels), through
registry, manager, loader and operation.

A face forward costs seconds on a CPU even for the smallest RestoreFormer (its first
and last levels convolve 512x512 maps), so each forward here is shared by several
checks. GFPGAN and CodeFormer cannot be made small (spandrel builds them at full size):
they run in test_restore_faces_models.py under RB_LONG_TESTS=1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import Cancelled, InvalidParams, ModelMissing
from bridge.faces.detect import YUNET_FILE, detect_faces
from bridge.imaging.composite import paste_masked
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.manager import ModelManager
from bridge.ops.base import CancelToken, OpContext
from bridge.ops.registry import get_operation, prepare, run_operation
from tests.faces.support import hopper, new_manager, shared_or_skip
from tests.models import tiny_models as tm

ICC = b"an icc profile"


@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_or_skip()


@pytest.fixture(scope="module")
def models(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelManager:
    """YuNet and a tiny RestoreFormer (.safetensors) installed; the loaded model is
    cached by this manager for the whole module."""
    home = tmp_path_factory.mktemp("faces-home")
    m = new_manager(home)
    m.import_file(shared / "models" / YUNET_FILE)
    weights = tm.save(tm.restoreformer(ch_mult=(1,) * 6), home / "tiny-rf.safetensors")
    m.import_file(weights, as_id="RestoreFormer")
    m.import_file(tm.save(tm.rrdb(scale=2), home / "x2.pth"), as_id="RealESRGAN_x2plus")
    return m


def run(models: ModelManager, image: Image, op: str = "restore-faces", progress=None,
        cancel=None, **params):
    return run_operation(op, image, None, params, OpContext(progress=progress, cancel=cancel,
                                                            models=models))


@pytest.fixture(scope="module")
def sixteen_bit(models: ModelManager, shared: Path):
    """One run on hopper as 16-bit RGBA with a soft alpha ramp, and its progress."""
    rgb = hopper(shared).astype(np.uint16) * 257 + 100  # not 8-bit values scaled up
    alpha = np.tile(np.linspace(10000, 65535, 128).astype(np.uint16)[:, None], (1, 128))
    image = Image(np.dstack([rgb, alpha]), icc=ICC, source_format="tiff")
    seen: list[tuple[float, str]] = []
    result = run(models, image, progress=lambda f, m: seen.append((f, m)))
    return image, result, seen


# -- one restored face, 16-bit with alpha ---------------------------------------------------
def test_sixteen_bit_rgba_stays_sixteen_bit_and_only_the_face_changes(sixteen_bit) -> None:
    image, result, _ = sixteen_bit
    assert result.extent == image.extent and len(result.layers) == 1
    layer = result.primary
    assert layer.name == "restored faces"
    out = layer.image
    assert out.pixels.dtype == np.uint16 and out.channels == 4
    assert (out.icc, out.source_format) == (ICC, "tiff")
    # A small layer over the face, not the whole document.
    assert layer.bounds.width * layer.bounds.height < 0.5 * image.width * image.height
    assert result.metadata["region"] == layer.bounds.as_list()
    # Alpha untouched; the face restored from 16-bit values (not 8-bit ones times 257).
    rows, cols = layer.bounds.slices
    np.testing.assert_array_equal(out.pixels[:, :, 3], image.pixels[rows, cols, 3])
    assert layer.mask is not None and layer.mask.dtype == np.uint8
    full = layer.mask == 255
    assert np.mean(out.pixels[full][:, :3] % 257 != 100 % 257) > 0.9
    # The document through the layer mask: bit-identical outside, restored inside.
    composite = image.pixels.copy()
    paste_masked(composite, out.pixels, layer.bounds, Mask(layer.bounds, layer.mask))
    outside = Mask(layer.bounds, layer.mask).to_full(image.extent) == 0
    np.testing.assert_array_equal(composite[outside], image.pixels[outside])
    inside = ~outside
    changed = np.abs(composite.astype(int) - image.pixels.astype(int))[inside][:, :3]
    assert changed.mean() > 2000  # a random model paints anything but the input


def test_the_mask_covers_the_face_and_the_metadata_names_it(sixteen_bit, shared) -> None:
    image, result, _ = sixteen_bit
    layer = result.primary
    [face] = detect_faces(image.pixels, shared / "models" / YUNET_FILE)
    [meta] = result.metadata["faces"]
    assert meta["restored"] is True and meta["score"] == pytest.approx(face.score, abs=1e-3)
    np.testing.assert_allclose(meta["box"], [face.x, face.y, face.width, face.height], atol=0.06)
    assert set(meta["landmarks"]) == {"right_eye", "left_eye", "nose", "mouth_right", "mouth_left"}
    # Eyes, nose and mouth (with a margin) are fully covered; the mask fades out softly.
    marks = np.array(face.landmarks)
    x0, y0 = np.floor(marks.min(axis=0) - 6).astype(int)
    x1, y1 = np.ceil(marks.max(axis=0) + 6).astype(int)
    full = Mask(layer.bounds, layer.mask).to_full(image.extent)
    assert full[y0:y1, x0:x1].min() == 255
    assert full[face.bounds.slices].mean() > 200
    assert len(np.unique(layer.mask)) > 50  # a feather, not a hard edge
    meta_all = result.metadata
    assert (meta_all["model"], meta_all["architecture"]) == ("RestoreFormer", "RestoreFormer")
    assert meta_all["fidelity"] is None and meta_all["sampled"] is False
    assert meta_all["device"] == "cpu" and meta_all["operation"] == "restore-faces"


def test_progress_is_reported_per_face(sixteen_bit) -> None:
    _, _, seen = sixteen_bit
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [m for _, m in seen if m.startswith("restoring")] == ["restoring face 1 of 1"]


# -- the background upscaled, faces restored at the new size ------------------------------
def test_restore_faces_upscale_pastes_faces_into_the_upscaled_image(models, shared) -> None:
    pixels = hopper(shared)
    image = Image(pixels, icc=ICC)
    result = run(models, image, "restore-faces-upscale", scale=2, upscaler="RealESRGAN_x2plus")
    assert result.extent.width == 256 and result.extent.height == 256
    main, faces = result.layers
    assert main.name == "image" and main.bounds == Bounds(0, 0, 256, 256) and main.mask is None
    assert main.image.icc == ICC and main.image.pixels.dtype == np.uint8
    assert faces.name == "faces" and not faces.visible and faces.mask is not None
    assert result.metadata["upscale"]["model"] == "RealESRGAN_x2plus"
    # Outside the faces: exactly what upscale alone gives. Inside: the restored face.
    alone = run(models, image, "upscale", scale=2, model="RealESRGAN_x2plus").primary.image.pixels
    outside = Mask(faces.bounds, faces.mask).to_full(result.extent) == 0
    np.testing.assert_array_equal(main.image.pixels[outside], alone[outside])
    assert np.abs(main.image.pixels.astype(int) - alone.astype(int))[~outside].mean() > 10
    rows, cols = faces.bounds.slices
    np.testing.assert_array_equal(main.image.pixels[rows, cols][faces.mask == 255],
                                  faces.image.pixels[faces.mask == 255])
    # Faces are reported in the new document's coordinates.
    [face] = detect_faces(pixels, shared / "models" / YUNET_FILE)
    np.testing.assert_allclose(result.metadata["faces"][0]["box"],
                               [face.x * 2, face.y * 2, face.width * 2, face.height * 2], atol=0.1)
    eye = result.metadata["faces"][0]["landmarks"]["right_eye"]
    np.testing.assert_allclose(eye, (np.array(face.landmarks[0]) + 0.5) * 2 - 0.5, atol=0.1)
    assert faces.bounds.contains(Bounds.from_corners(*np.floor(np.array(eye) - 5).astype(int),
                                                     *np.ceil(np.array(eye) + 5).astype(int)))


# -- nothing to do, and errors --------------------------------------------------------------
def test_no_face_or_only_small_ones_leave_the_image_unchanged(models, shared) -> None:
    from skimage import data

    coffee = Image(data.coffee())
    result = run(models, coffee)
    assert result.metadata["faces"] == [] and result.metadata["region"] is None
    assert "no face" in result.metadata["warnings"][0]
    assert result.primary.mask is None
    np.testing.assert_array_equal(result.primary.image.pixels, coffee.pixels)
    image = Image(hopper(shared))
    for params in ({"min_face": 200}, {"blend": 0.0}):
        result = run(models, image, **params)
        assert [f["restored"] for f in result.metadata["faces"]] == [params.get("blend", 1) == 0]
        np.testing.assert_array_equal(result.primary.image.pixels, image.pixels)
    upscaled = run(models, coffee, "restore-faces-upscale", scale=2, upscaler="lanczos")
    assert [la.name for la in upscaled.layers] == ["image"]
    assert upscaled.primary.image.pixels.shape == (800, 1200, 3)


def test_cancel_stops_before_the_face_model_runs(models, shared) -> None:
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("loading"):
            token.cancel()

    with pytest.raises(Cancelled):
        run(models, Image(hopper(shared)), progress=progress, cancel=token)


def test_models_are_checked_when_the_job_is_submitted(models, tmp_path) -> None:
    op = get_operation("restore-faces")
    image = Image(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InvalidParams, match=r"not a face restoration model.*GFPGANv1\.4") as info:
        prepare(op, image, None, {"model": "nope"}, models)
    assert info.value.details["param"] == "model"
    with pytest.raises(InvalidParams, match="not a face restoration model"):
        prepare(op, image, None, {"model": "RealESRGAN_x2plus"}, models)
    with pytest.raises(InvalidParams, match="no fidelity setting; CodeFormer has one"):
        prepare(op, image, None, {"model": "RestoreFormer", "fidelity": 0.3}, models)
    with pytest.raises(ModelMissing) as missing:
        prepare(op, image, None, {"model": "CodeFormer"}, models)
    assert "models pull CodeFormer" in missing.value.details["hint"]
    prepare(op, image, None, {"model": "RestoreFormer"}, models)  # installed: fine
    # A fresh install: no face model (the default is named), then no detector.
    empty = new_manager(tmp_path / "empty")
    with pytest.raises(ModelMissing, match="none is installed") as none:
        prepare(op, image, None, {}, empty)
    assert none.value.details["model"] == "GFPGANv1.4"
    assert "models pull GFPGANv1.4" in none.value.details["hint"]
    empty.import_file(tm.save(tm.restoreformer(), tmp_path / "rf.pth"), as_id="RestoreFormer")
    with pytest.raises(ModelMissing) as no_detector:
        prepare(op, image, None, {}, empty)
    assert no_detector.value.details["model"] == "yunet"
    # The upscaling variant checks its super-resolution model too.
    up = get_operation("restore-faces-upscale")
    with pytest.raises(InvalidParams, match="not a super-resolution model"):
        prepare(up, image, None, {"upscaler": "RestoreFormer"}, models)
    with pytest.raises(InvalidParams, match="must be one of: 2, 4"):
        prepare(up, image, None, {"scale": 3}, models)


def test_the_operations_declare_what_they_do() -> None:
    plain = get_operation("restore-faces").describe()
    assert plain["resizes"] is False and plain["mask"] == "none"
    assert {"GFPGANv1.4", "CodeFormer", "RestoreFormer", "yunet"} <= set(plain["models"])
    props = plain["params"]["properties"]
    assert props["model"]["default"] == "auto" and props["blend"]["maximum"] == 1
    assert props["fidelity"]["anyOf"][0]["maximum"] == 1
    up = get_operation("restore-faces-upscale").describe()
    assert up["resizes"] is True
    assert up["params"]["properties"]["scale"]["enum"] == [2, 4]
