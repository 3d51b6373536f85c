"""apply_to_psd and `psd apply` with the real masked operations, not the test-only invert:
remove (OpenCV), remove-background (a tiny ONNX matte model through rembg) and fill (a
tiny SD 1.5 pipeline). Each adds one masked layer to the "Retouch Bridge" group and
leaves every original layer as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from psd_testkit import assert_originals_intact, build_psd, find, layer_array
from psd_tools import PSDImage

from bridge.cli.main import main
from bridge.imaging.mask import Mask
from bridge.psd.apply import apply_to_psd
from bridge.psd.writer import GROUP_NAME
from tests.inpaint.support import cached_model
from tests.inpaint.tiny import build_sd15_inpaint, photo_like, write_u2net_like_onnx

H, W = 48, 64


def _opaque(pixels: np.ndarray) -> np.ndarray:
    top = 255 if pixels.dtype == np.uint8 else 65535
    alpha = np.full((*pixels.shape[:2], 1), top, pixels.dtype)
    return np.concatenate([pixels, alpha], axis=2)


def _document(tmp_path: Path, depth: int = 8) -> Path:
    """A photo layer, a bright "product" layer on top, and a small "wire" layer whose
    transparency serves as a selection."""
    top = 255 if depth == 8 else 65535
    photo = _opaque(photo_like(H, W, depth=depth, seed=1))
    product = np.full((H, W, 4), top // 20, photo.dtype)
    product[..., 3] = top
    product[14:34, 20:44, :3] = top * 9 // 10
    wire = np.full((10, 24, 4), top, photo.dtype)
    return build_psd(tmp_path / "doc.psd", depth=depth, size=(W, H), layers=[
        ("Photo", photo, 0, 0), ("Product", product, 0, 0), ("wire", wire, 18, 20)])


def _selection() -> Mask:
    sel = np.zeros((H, W), np.uint8)
    sel[16:30, 20:40] = 255
    return Mask.from_array(sel)


def _check_added(src: Path, out: Path, path: str, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The new layer is in the group with a layer mask, the rest is intact; returns the
    layer's pixels and its mask, both over the whole document."""
    assert_originals_intact(src, out, {GROUP_NAME, path})
    psd = PSDImage.open(out)
    added = find(psd, path)
    assert added.parent.name == GROUP_NAME and added.has_mask()
    assert added.bbox == added.mask.bbox  # the mask sits where the layer is
    left, top_, right, bottom = added.bbox
    pixels = np.zeros((H, W, 4), np.uint8 if depth == 8 else np.uint16)
    pixels[top_:bottom, left:right] = layer_array(added, depth)
    mask = np.zeros((H, W), np.uint8)
    mask[top_:bottom, left:right] = np.rint(added.numpy("mask")[:, :, 0] * 255)
    return pixels, mask


@pytest.mark.parametrize("depth", [8, 16])
def test_remove_with_opencv_adds_a_masked_layer(tmp_path: Path, depth: int) -> None:
    src = _document(tmp_path, depth)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "remove", layer="Photo", mask=_selection(),
                          params={"model": "opencv"})
    path = f"{GROUP_NAME}/AI Remove OpenCV"
    assert [la.path for la in report.layers] == [path] and report.layers[0].has_mask
    assert report.metadata["engine"] == "opencv" and report.params["model"] == "opencv"
    pixels, mask = _check_added(src, out, path, depth)
    original = _opaque(photo_like(H, W, depth=depth, seed=1))
    assert (mask[16:30, 20:40] == 255).all() and (mask[:8] == 0).all()
    inside = mask == 255
    assert (pixels[inside][:, :3] != original[inside][:, :3]).mean() > 0.5
    # Where the mask hides the layer, its pixels are the source's own bits.
    hidden = (mask == 0) & (pixels[..., 3] > 0)
    assert hidden.any() and np.array_equal(pixels[hidden], original[hidden])


def test_remove_background_with_an_onnx_model(tmp_path: Path,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    model = cached_model(tmp_path_factory, "u2net-like.onnx", write_u2net_like_onnx)
    src = _document(tmp_path, 16)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "remove-background", layer="Product",
                          params={"model": str(model)})
    path = f"{GROUP_NAME}/Remove Background u2net-like.onnx"
    assert [la.path for la in report.layers] == [path] and report.layers[0].has_mask
    pixels, mask = _check_added(src, out, path, 16)
    assert mask[20:28, 26:38].min() > 240 and mask[:8].max() < 15  # the bright object stays
    product = layer_array(find(PSDImage.open(src), "Product"), 16)
    assert np.array_equal(pixels, product)  # the original pixels; the matte is the mask


def test_cli_remove_with_the_selection_from_a_layer(tmp_path: Path) -> None:
    src = _document(tmp_path)
    out = tmp_path / "out.psd"
    code = main(["psd", "apply", str(src), "-o", str(out), "--op", "remove", "--layer", "Photo",
                 "--mask-from-layer", "wire", "--param", "model=opencv", "--param", "grow=0"])
    assert code == 0
    path = f"{GROUP_NAME}/AI Remove OpenCV"
    pixels, mask = _check_added(src, out, path, 8)
    assert (mask[20:30, 18:42] > 0).all()  # the wire layer's rectangle, feathered around it
    assert (mask[:12] == 0).all() and (mask[38:] == 0).all()
    original = _opaque(photo_like(H, W, seed=1))
    inside = mask == 255
    assert inside.any() and (pixels[inside][:, :3] != original[inside][:, :3]).mean() > 0.5


def test_fill_layers_are_named_after_the_seeds_used(tmp_path: Path,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """No seed asked for: a random one was used, and each variation had its own; the names
    say which, so `seed N` in the name makes that layer again."""
    model = cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)
    src = _document(tmp_path)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "fill", layer="Photo", mask=_selection(), params={
        "model": str(model), "prompt": "blue sky", "variations": 2, "steps": 2,
        "working_size": 64, "preview_every": 0})
    first, second = report.metadata["seeds"]
    assert second == first + 1
    names = [la.path for la in report.layers]
    assert names == [f'{GROUP_NAME}/AI Fill "blue sky" seed {first}',
                     f'{GROUP_NAME}/AI Fill "blue sky" seed {second}']
    assert [la.visible for la in report.layers] == [True, False]
    assert_originals_intact(src, out, {GROUP_NAME, *names})


def test_the_users_default_model_applies_as_in_run_operation(tmp_path: Path,
                                                             isolated_home: Path) -> None:
    """[default_models] inpaint = "opencv": remove on a PSD uses OpenCV as asked, not big-lama
    (which, not installed here, would fall back with a warning)."""
    from bridge.imaging.image import Image
    from bridge.ops.registry import run_operation

    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[default_models]\ninpaint = "opencv"\n')
    direct = run_operation("remove", Image(photo_like(H, W, seed=1)), _selection())
    assert "fallback_reason" not in direct.metadata  # the reference: opencv by choice
    src = _document(tmp_path)
    report = apply_to_psd(src, tmp_path / "out.psd", "remove", layer="Photo", mask=_selection())
    assert report.params["model"] == "opencv"
    assert report.metadata["engine"] == "opencv" and "fallback_reason" not in report.metadata
    assert not report.warnings
