"""remove-background through rembg's own sessions, fed a tiny ONNX model exported here, with
proof that no session can download anything."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import InvalidParams, ModelMissing
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.registry import run_operation
from tests.inpaint.support import block_network, cached_model
from tests.inpaint.tiny import write_u2net_like_onnx


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    yield from block_network(monkeypatch)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory, "u2net-like.onnx", write_u2net_like_onnx)


@pytest.fixture
def empty_rembg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """rembg's own model folders point at nothing, and every pooch download is recorded."""
    import pooch

    for var in ("U2NET_HOME", "REMBG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "rembg-home"))
    calls: list[object] = []

    def retrieve(url: str, *args: object, **kwargs: object) -> str:
        calls.append(url)
        raise OSError(f"download attempted: {url}")

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    return calls


def _product_shot(depth: int = 16, alpha: bool = False) -> np.ndarray:
    """A bright object on a dark ground."""
    top = 65535 if depth == 16 else 255
    pixels = np.full((300, 400, 4 if alpha else 3), top // 20, np.uint16 if depth == 16 else np.uint8)
    pixels[80:220, 120:300, :3] = top * 9 // 10
    if alpha:
        pixels[:, :, 3] = top
        pixels[:, :200, 3] = top // 2
    return pixels


def test_mask_output_keeps_the_original_pixels(onnx_model: Path, no_network: list,
                                               empty_rembg_home: list) -> None:
    pixels = _product_shot()
    image = Image(pixels)
    result = run_operation("remove-background", image, None, {"model": str(onnx_model)})
    layer = result.primary
    assert layer.bounds == Bounds(0, 0, 400, 300)
    assert layer.image.pixels is pixels or np.array_equal(layer.image.pixels, pixels)
    assert layer.image.pixels.dtype == np.uint16  # 16-bit stays 16-bit; the matte is 8-bit
    assert layer.mask is not None and layer.mask.dtype == np.uint8
    assert layer.mask[100:200, 140:280].min() > 240 and layer.mask[:50].max() < 15
    assert result.metadata["session"] == "u2net"
    assert no_network == [] and empty_rembg_home == []


@pytest.mark.parametrize("preprocess,session", [("isnet", "isnet-general-use"),
                                                ("birefnet", "birefnet-general"), ("u2net", "u2net")])
def test_every_session_family_runs_our_file_and_never_downloads(
        onnx_model: Path, preprocess: str, session: str, no_network: list,
        empty_rembg_home: list) -> None:
    result = run_operation("remove-background", Image(_product_shot(8)), None,
                           {"model": str(onnx_model), "preprocess": preprocess})
    assert result.metadata["session"] == session
    assert result.primary.mask[150, 200] > result.primary.mask[10, 10]
    assert no_network == [] and empty_rembg_home == []


def test_control_rembg_left_alone_would_download(empty_rembg_home: list, no_network: list) -> None:
    """Why the pinning matters: a plain rembg session in the same place reaches for the network."""
    import onnxruntime as ort

    from bridge.inpaint.rembg_sessions import session_classes

    [plain_u2net] = [c for c in session_classes() if c.name() == "u2net"]
    with pytest.raises(OSError):
        plain_u2net("u2net", ort.SessionOptions())
    assert empty_rembg_home and "u2net.onnx" in str(empty_rembg_home[0])


def test_cutout_puts_the_matte_in_alpha_times_the_original_alpha(onnx_model: Path) -> None:
    pixels = _product_shot(16, alpha=True)
    result = run_operation("remove-background", Image(pixels), None,
                           {"model": str(onnx_model), "output": "cutout"})
    layer = result.primary
    assert layer.mask is None and layer.image.channels == 4
    out = layer.image.pixels
    assert np.array_equal(out[:, :, :3], pixels[:, :, :3])
    assert out[150, 250, 3] > 60000            # subject, opaque original
    assert 30000 < out[150, 150, 3] < 33000    # subject where the original was half transparent
    assert out[10, 300, 3] < 2000              # background


def test_composite_on_a_colour_for_product_shots(onnx_model: Path) -> None:
    pixels = _product_shot(16)
    result = run_operation("remove-background", Image(pixels), None,
                           {"model": str(onnx_model), "output": "composite", "background": "#ff8000"})
    out = result.primary.image.pixels
    assert out.shape == pixels.shape and out.dtype == np.uint16
    assert np.abs(out[10, 10].astype(int) - [65535, 0x80 * 257, 0]).max() < 2000
    assert np.abs(out[150, 200].astype(int) - pixels[150, 200]).max() < 1000


def test_a_selection_limits_the_work_and_the_matte(onnx_model: Path) -> None:
    pixels = _product_shot(8)
    sel = Mask.rectangle(Bounds(100, 60, 120, 100))
    result = run_operation("remove-background", Image(pixels), sel, {"model": str(onnx_model)})
    layer = result.primary
    assert layer.bounds.contains(sel.bounds) and layer.bounds.width < 200
    full = Mask(layer.bounds, layer.mask).to_full(Image(pixels).extent)
    assert full[:, 230:].max() == 0 and full[170:].max() == 0  # nothing outside the selection


def test_unknown_and_missing_models(tmp_path: Path) -> None:
    image = Image(_product_shot(8))
    with pytest.raises(InvalidParams):
        run_operation("remove-background", image, None, {"model": "no-such-matting-model"})
    with pytest.raises(ModelMissing) as caught:
        run_operation("remove-background", image, None, {"model": "isnet-general-use"})
    assert caught.value.details["model"] == "isnet-general-use"
    assert "models pull isnet-general-use" in str(caught.value.details["hint"])
    with pytest.raises(ModelMissing):
        run_operation("remove-background", image, None, {"model": str(tmp_path / "gone.onnx")})


def test_a_large_document_costs_its_matte_not_a_float_copy(onnx_model: Path) -> None:
    pixels = np.zeros((3000, 4000, 4), np.uint16)
    pixels[1000:2000, 1500:2500, :3] = 60000
    pixels[:, :, 3] = 65535
    image = Image(pixels)
    run_operation("remove-background", Image(pixels[:100, :100]), None, {"model": str(onnx_model)})
    tracemalloc.start()
    try:
        result = run_operation("remove-background", image, None, {"model": str(onnx_model)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.primary.mask.shape == (3000, 4000)
    # the 12 MB matte (and the model's small copy): not the 96 MB document, its colour, or floats
    assert peak < 0.4 * pixels.nbytes, f"peak {peak / 1e6:.0f} MB"


def test_registry_model_through_the_manager(onnx_model: Path, no_network: list,
                                           empty_rembg_home: list) -> None:
    """Imported as u2net (the default), the file comes from our models folder, never from rembg's."""
    from bridge.models.manager import default_manager

    default_manager().import_file(onnx_model, as_id="u2net")
    result = run_operation("remove-background", Image(_product_shot(8)), None)
    assert result.metadata["model"] == "u2net" and result.metadata["session"] == "u2net"
    assert result.primary.mask[150, 200] > 240
    assert no_network == [] and empty_rembg_home == []


def test_background_removal_never_imports_the_rest_of_rembg(onnx_model: Path) -> None:
    """rembg's __init__ imports pymatting, whose numba kernels compile for over a minute
    on first use after an install; only the session classes are ours to use."""
    code = ("import sys, numpy as np\n"
            "from bridge.imaging.image import Image\n"
            "from bridge.ops.registry import run_operation\n"
            "px = np.zeros((32, 32, 3), np.uint8)\n"
            f"run_operation('remove-background', Image(px), None, {{'model': {str(onnx_model)!r}}})\n"
            "print(sorted(m for m in ('rembg', 'pymatting', 'numba', 'skimage') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
