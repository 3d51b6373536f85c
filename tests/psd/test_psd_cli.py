"""`retouch-bridge psd ...` as users run it: a real process for the plain paths, main()
in-process where the test operation must be registered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image as PILImage
from psd_testkit import copy_sample, find, layer_array, sha_file
from psd_tools import PSDImage

from bridge.cli.main import main
from bridge.psd.writer import GROUP_NAME

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "psd", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_layers_text_and_json(shared_samples: Path) -> None:
    sample = shared_samples / "adjustments_posterize_16bits_rgb.psd"
    text = cli("layers", str(sample))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"{sample.name}: PSD RGB 16-bit 200x200, 10 layers")
    orion = next(line for line in lines if "'orion'" in line)
    for part in ("[pixel]", "212x204-5-2", "opacity 100%", "normal", "16-bit"):
        assert part in orion
    assert any("[posterize]" in line and "mask " in line for line in lines)
    assert any("'Layer 8'" in line and line.split("'")[0].endswith("  ") for line in lines)

    listed = json.loads(cli("layers", str(sample), "--json").stdout)
    assert listed["depth"] == 16 and len(listed["layers"]) == 10
    by_path = {la["path"]: la for la in listed["layers"]}
    assert by_path["color palettes/Layer 8"]["level"] == 1
    assert by_path["orion"]["bounds"] == [-5, -2, 212, 204]
    assert by_path["Posterize 1"]["mask"]["bounds"] is not None


def test_apply_and_export(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    out = tmp_path / "out.psd"
    run = cli("apply", str(src), "-o", str(out), "--op", "passthrough", "--layer", "Background",
              "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["layers"][0]["path"] == f"{GROUP_NAME}/Passthrough"
    assert PSDImage.open(out)[1].name == GROUP_NAME

    tif = tmp_path / "bg.tif"
    run = cli("export", str(out), "--layer", f"{GROUP_NAME}/Passthrough", "-o", str(tif))
    assert run.returncode == 0, run.stderr
    with tifffile.TiffFile(tif) as t:
        page = t.pages[0]
        pixels = page.asarray()
        icc = page.tags["InterColorProfile"].value
    psd = PSDImage.open(out)
    assert np.array_equal(pixels, layer_array(find(psd, f"{GROUP_NAME}/Passthrough"), 8))
    assert bytes(icc) == bytes(psd.image_resources.get_data(1039))


def test_export_keeps_16_bits(shared_samples: Path, tmp_path: Path) -> None:
    tif = tmp_path / "orion.tif"
    run = cli("export", str(shared_samples / "adjustments_posterize_16bits_rgb.psd"),
              "--layer", "orion", "-o", str(tif))
    assert run.returncode == 0, run.stderr
    pixels = tifffile.imread(tif)
    psd = PSDImage.open(shared_samples / "adjustments_posterize_16bits_rgb.psd")
    assert pixels.dtype == np.uint16 and pixels.shape == (204, 212, 4)
    assert np.array_equal(pixels, layer_array(find(psd, "orion"), 16))


def test_errors_are_one_line_with_exit_code_2(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    before = sha_file(src)
    cmyk = tmp_path / "cmyk.psd"
    PSDImage.new("CMYK", (8, 8)).save(cmyk)
    cases = [
        (["apply", str(src), "-o", str(tmp_path / "o.psd"), "--op", "passthrough",
          "--layer", "Sky"], "no layer 'Sky'"),
        (["apply", str(cmyk), "-o", str(tmp_path / "o.psd"), "--op", "passthrough",
          "--composite"], "CMYK 8-bit document; supported: RGB and Grayscale"),
        (["apply", str(src), "-o", str(src), "--op", "passthrough", "--composite"],
         "refusing to overwrite the input"),
        (["export", str(shared_samples / "hopper.jpg"), "--composite", "-o",
          str(tmp_path / "x.tif")], "not a Photoshop file"),
    ]
    for args, message in cases:
        run = cli(*args)
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
        assert run.stdout == ""
    assert sha_file(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmyk.psd", "hopper.psd"]


def test_masked_apply_with_a_mask_png_and_params(shared_samples: Path, tmp_path: Path,
                                                 invert_op, capsys) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    selection = np.zeros((128, 128), np.uint16)
    selection[10:30, 40:100] = 65535  # a 16-bit grey PNG
    mask_png = tmp_path / "sel.png"
    PILImage.fromarray(selection).save(mask_png)
    out = tmp_path / "out.psd"
    code = main(["psd", "apply", str(src), "-o", str(out), "--op", "test-invert",
                 "--layer", "Background copy", "--mask", str(mask_png), "--param", "seed=42"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"added '{GROUP_NAME}/Test Invert seed 42': 60x20 at 40,10, 8-bit, with layer mask" \
        in printed
    added = find(PSDImage.open(out), f"{GROUP_NAME}/Test Invert seed 42")
    assert added.bbox == (40, 10, 100, 30) and added.has_mask()

    code = main(["psd", "apply", str(src), "-o", str(tmp_path / "o2.psd"), "--op",
                 "test-invert", "--layer", "Background copy", "--mask",
                 str(shared_samples / "hopper.jpg")])
    assert code == 0  # a 128x128 colour image is taken as its luminance

    code = main(["psd", "apply", str(src), "-o", str(tmp_path / "o3.psd"), "--op",
                 "test-invert", "--layer", "Background copy", "--param", "seed"])
    assert code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_in_place_from_the_command_line(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    original = sha_file(src)
    run = cli("apply", str(src), "--in-place", "--op", "passthrough", "--composite")
    assert run.returncode == 0, run.stderr
    assert "original kept as" in run.stdout
    assert sha_file(tmp_path / "hopper.psd.bak") == original
    assert PSDImage.open(src)[-1].name == GROUP_NAME
