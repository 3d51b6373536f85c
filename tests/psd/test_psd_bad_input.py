"""Bad input: a clear error each, the input untouched, nothing left behind."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from psd_testkit import build_psd, copy_sample, random_layer, sha_file
from psd_tools import PSDImage

from bridge.errors import (
    BridgeError,
    Cancelled,
    InvalidInput,
    InvalidParams,
    TooLarge,
    UnsupportedFormat,
)
from bridge.imaging.geometry import Bounds
from bridge.imaging.mask import Mask
from bridge.ops.base import CancelToken, OpContext
from bridge.psd import files
from bridge.psd.apply import apply_to_psd
from bridge.psd.document import SUPPORTED


def folder_state(folder: Path) -> dict[str, str]:
    return {p.name: sha_file(p) for p in folder.iterdir()}


def refuse(src: Path, error: type[BridgeError], match: str, **kwargs) -> BridgeError:
    """apply must raise `error` and leave the folder exactly as it was."""
    before = folder_state(src.parent)
    kwargs.setdefault("layer", None)
    kwargs.setdefault("composite", kwargs["layer"] is None)
    out = kwargs.pop("out", src.parent / "out.psd")
    op = kwargs.pop("op", "passthrough")
    with pytest.raises(error, match=match) as info:
        apply_to_psd(src, out, op, **kwargs)
    assert folder_state(src.parent) == before  # input untouched, no output, no temp file
    return info.value


def test_not_a_psd(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.jpg", tmp_path)
    refuse(src, UnsupportedFormat, "not a Photoshop file")


@pytest.mark.parametrize("name,keep", [
    ("adjustments_curves_rgb.psd", 12),  # inside the header
    ("adjustments_curves_rgb.psd", 200),  # inside the image resources
    ("adjustments_curves_rgb.psd", 60_000),  # inside the layers
    ("adjustments_curves_rgb.psd", 291_957 - 40),  # inside the RLE merged image
    ("adjustments_posterize_16bits_rgb.psd", 415_176 - 1),  # inside the raw merged image
])
def test_truncated_psd(shared_samples: Path, tmp_path: Path, name: str, keep: int) -> None:
    data = (shared_samples / name).read_bytes()
    src = tmp_path / "cut.psd"
    src.write_bytes(data[:keep])
    refuse(src, InvalidInput, "truncated|damaged")


def test_truncated_zip_merged_image(tmp_path: Path) -> None:
    from psd_tools.constants import Compression

    rng = np.random.default_rng(3)
    psd = PSDImage.new("RGB", (64, 48), compression=Compression.ZIP)
    psd.create_pixel_layer_from_array(random_layer(rng, 48, 64, 3, 8), name="a")
    whole = tmp_path / "whole.psd"
    psd.save(whole)
    assert PSDImage.open(whole)._record.image_data.compression == Compression.ZIP
    src = tmp_path / "cut.psd"
    src.write_bytes(whole.read_bytes()[:-30])
    whole.unlink()
    refuse(src, InvalidInput, "truncated or damaged: merged image")


@pytest.mark.parametrize("mode,depth,name", [
    ("CMYK", 8, "CMYK 8-bit"), ("LAB", 8, "Lab 8-bit"), ("RGB", 32, "RGB 32-bit"),
    ("1", 1, "Bitmap 1-bit"),
])
def test_unsupported_colour_modes_and_depths(tmp_path: Path, mode: str, depth: int,
                                             name: str) -> None:
    src = tmp_path / "doc.psd"
    PSDImage.new(mode, (16, 8), depth=depth).save(src)
    error = refuse(src, UnsupportedFormat, name)
    assert SUPPORTED in error.message


def test_indexed_is_refused_from_the_header(tmp_path: Path) -> None:
    src = build_psd(tmp_path / "doc.psd", mode="L")
    data = bytearray(src.read_bytes())
    data[24:26] = struct.pack(">H", 2)  # colour mode field: Indexed
    src.write_bytes(bytes(data))
    refuse(src, UnsupportedFormat, "Indexed 8-bit")


def test_unknown_layer_lists_the_layers(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    refuse(src, InvalidInput, "no layer 'Sky'; layers: 'Background copy', 'Background'",
           layer="Sky")


def test_mask_requirement_unmet(shared_samples: Path, tmp_path: Path, invert_op) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    refuse(src, InvalidInput, "needs a selection: the mask is missing", op="test-invert",
           layer="Background")
    refuse(src, InvalidInput, r"selection \(mask\) is empty", op="test-invert",
           layer="Background", mask=Mask.from_array(np.zeros((128, 128), np.uint8)))
    refuse(src, InvalidInput, "lies outside the source", op="test-invert", layer="Background",
           mask=Mask.rectangle(Bounds(200, 200, 5, 5)))
    refuse(src, InvalidInput, "takes no mask", op="upscale", layer="Background",
           mask=Mask.rectangle(Bounds(0, 0, 5, 5)))


def test_bad_requests(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    refuse(src, InvalidInput, "refusing to overwrite the input", layer="Background", out=src)
    refuse(src, InvalidInput, "a layer or the composite", layer="Background", composite=True)
    refuse(src, InvalidParams, "unknown parameter 'strength'", layer="Background",
           params={"strength": 2})
    refuse(src, InvalidInput, "new document of another size", op="upscale",
           layer="Background", out=src, in_place=True)
    refuse(src, InvalidInput, "output folder does not exist", layer="Background",
           out=tmp_path / "missing" / "o.psd")


def test_cancelled_job_leaves_nothing(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.2:
            token.cancel()

    refuse(src, Cancelled, "cancelled", layer="Background", params={"delay_s": 0.2},
           ctx=OpContext(progress=progress, cancel=token))


def test_failed_rename_removes_the_temporary_file_and_the_backup(
        shared_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)

    def no_rename(a: object, b: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", no_rename)
    before = folder_state(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        apply_to_psd(src, src, "passthrough", layer="Background", in_place=True)
    assert folder_state(tmp_path) == before


def test_in_place_keeps_every_backup(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    original = sha_file(src)
    src.chmod(0o640)
    first = apply_to_psd(src, src, "passthrough", layer="Background", in_place=True)
    assert first.backup == tmp_path / "hopper.psd.bak" and sha_file(first.backup) == original
    once = sha_file(src)
    assert once != original and (src.stat().st_mode & 0o777) == 0o640
    second = apply_to_psd(src, src, "passthrough", layer="Background", in_place=True)
    assert second.backup == tmp_path / "hopper.psd.bak.2" and sha_file(second.backup) == once
    assert sha_file(first.backup) == original  # the first backup is never overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hopper.psd", "hopper.psd.bak", "hopper.psd.bak.2"]


def test_layer_without_pixels_is_refused(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "adjustments_curves_rgb.psd", tmp_path)
    refuse(src, InvalidInput, r"'Curves 1' \(curves\) has no pixels", layer="Curves 1")


def test_two_selections_are_refused(tmp_path: Path, invert_op) -> None:
    rng = np.random.default_rng(1)
    src = build_psd(tmp_path / "d.psd", layers=[("a", random_layer(rng, 4, 4, 3, 8), 0, 0)])
    refuse(src, InvalidInput, "give one selection", layer="a", op="test-invert",
           mask=Mask.rectangle(Bounds(0, 0, 2, 2)), mask_from_layer="a")


def test_psd_over_2_gb_is_refused(shared_samples: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.psd import apply as apply_module

    monkeypatch.setattr(apply_module, "PSD_MAX_BYTES", 100_000)  # instead of 2 GB
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    error = refuse(src, TooLarge, "over the PSD format's 2 GB", layer="Background")
    assert "PSB" in error.message


@pytest.mark.parametrize("psb", [False, True])
def test_a_result_the_format_cannot_hold_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, psb: bool) -> None:
    """psd-tools packs sizes and offsets with struct: a value past the format's fields
    fails there. That must be TooLarge naming the format, not a struct.error, and leave
    the folder as it was (no output, no temporary file)."""
    from psd_tools.psd import PSD

    def overflowing(self, fp, *args, **kwargs):
        fp.write(b"8BPS partial")  # some bytes reached the temporary file first
        raise struct.error("'I' format requires 0 <= number <= 4294967295")

    rng = np.random.default_rng(2)
    name = "d.psb" if psb else "d.psd"
    src = build_psd(tmp_path / name, psb=psb,
                    layers=[("a", random_layer(rng, 8, 8, 3, 8), 0, 0)])
    monkeypatch.setattr(PSD, "write", overflowing)
    kind = "PSB" if psb else "PSD"
    error = refuse(src, TooLarge, f"does not fit the {kind} format", layer="a",
                   out=tmp_path / f"out.{name.split('.')[1]}")
    assert error.status == 413 and "4294967295" in error.message
    assert isinstance(error.__cause__, struct.error)
