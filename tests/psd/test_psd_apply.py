"""apply_to_psd on real Photoshop files and on PSDs built here.

Every test checks what must NOT change (every original layer's record, channel
bytes, decoded pixels, mask; the ICC profile; the merged image outside the
change) as well as what must: the new layer, its mask, offset and depth, read
back by psd-tools and by ImageMagick.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from psd_testkit import (
    assert_originals_intact,
    build_psd,
    copy_sample,
    find,
    im_layers,
    im_pixels,
    layer_array,
    random_layer,
    resources,
    sections,
    sha_file,
)
from psd_tools import PSDImage

from bridge.imaging.geometry import Bounds
from bridge.imaging.mask import Mask
from bridge.ops.upscale import resample
from bridge.psd import layers, pixels
from bridge.psd.apply import apply_to_psd
from bridge.psd.document import open_document
from bridge.psd.writer import GROUP_NAME

SEED_RESOURCE = 1044  # Photoshop's layer id seed: the one resource that moves with new layers


def assert_resources_intact(before: Path, after: Path) -> None:
    old, new = resources(before), resources(after)
    old.pop(SEED_RESOURCE, None)
    new.pop(SEED_RESOURCE, None)
    assert old == new  # ICC (1039) included, byte for byte
    assert sections(before) == sections(after)


def im_entry(path: Path, label: str) -> dict:
    rows = [r for r in im_layers(path) if r["label"] == label]
    assert len(rows) == 1, im_layers(path)
    return rows[0]


@pytest.mark.parametrize("name,ref,depth", [
    ("adjustments_curves_rgb.psd", "orion", 8),
    ("adjustments_posterize_16bits_rgb.psd", "Layer 8 copy 2", 16),
    ("hopper.psd", "Background copy", 8),
])
def test_passthrough_on_a_layer_adds_one_identical_layer(
        shared_samples: Path, tmp_path: Path, name: str, ref: str, depth: int) -> None:
    src = copy_sample(shared_samples, name, tmp_path)
    before_hash = sha_file(src)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "passthrough", layer=ref)

    assert sha_file(src) == before_hash
    source_path = layers.find_layer(open_document(src).psd, ref).path
    parent = source_path.rpartition("/")[0]
    group_path = f"{parent}/{GROUP_NAME}" if parent else GROUP_NAME
    new_path = f"{group_path}/Passthrough"
    assert report.group == group_path and report.group_created
    assert [la.path for la in report.layers] == [new_path]
    assert_originals_intact(src, out, {group_path, new_path})
    assert_resources_intact(src, out)

    psd = PSDImage.open(out)
    assert psd.depth == depth and psd.size == PSDImage.open(src).size
    source, added = find(psd, source_path), find(psd, new_path)
    assert added.bbox == source.bbox and added.kind == "pixel" and not added.has_mask()
    assert np.array_equal(layer_array(added, depth), layer_array(source, depth))
    # The group sits right above the source in the source's own container.
    container = source.parent
    assert container.index(find(psd, group_path)) == container.index(source) + 1

    row = im_entry(out, "Passthrough")
    left, top, right, bottom = source.bbox
    assert (row["width"], row["height"], row["x"], row["y"]) == (right - left, bottom - top,
                                                                  left, top)
    assert row["depth"] == depth
    im = im_pixels(out, row["index"], row["width"], row["height"], depth)
    assert np.array_equal(im, layer_array(added, depth))


def test_masked_result_on_16_bit_layer(shared_samples: Path, tmp_path: Path, invert_op) -> None:
    src = copy_sample(shared_samples, "adjustments_posterize_16bits_rgb.psd", tmp_path)
    out = tmp_path / "out.psd"
    doc = open_document(src)
    entry = layers.find_layer(doc.psd, "orion")
    source_image, _ = pixels.read_layer(doc, entry.layer, entry.path)
    selection = np.zeros((200, 200), np.uint8)
    selection[40:90, 30:110] = 255
    selection[60:70, 50:60] = 128  # soft values survive as mask values
    report = apply_to_psd(src, out, "test-invert", layer="orion",
                          mask=Mask.from_array(selection), params={"seed": 7})

    new_path = f"{GROUP_NAME}/Test Invert seed 7"
    assert [la.path for la in report.layers] == [new_path]
    assert report.layers[0].bounds == Bounds(30, 40, 80, 50) and report.layers[0].has_mask
    assert report.metadata["inverted"] == [35, 42, 80, 50]  # in the layer's own coordinates
    assert_originals_intact(src, out, {GROUP_NAME, new_path})
    assert_resources_intact(src, out)

    psd = PSDImage.open(out)
    added = find(psd, new_path)
    assert added.bbox == (30, 40, 110, 90) and added.mask.bbox == (30, 40, 110, 90)
    expected = source_image.pixels[42:92, 35:115].copy()
    expected[..., :3] = 65535 - expected[..., :3]
    got = layer_array(added, 16)
    assert np.array_equal(got, expected)
    assert np.any(got % 257)  # 16-bit precision, not widened 8-bit
    mask = np.rint(added.numpy("mask")[:, :, 0] * 255).astype(np.uint8)
    assert np.array_equal(mask, selection[40:90, 30:110])

    # ImageMagick: right place, 16 bits, colour exact; it folds the mask into alpha.
    row = im_entry(out, "Test Invert seed 7")
    assert (row["width"], row["height"], row["x"], row["y"], row["depth"]) == (80, 50, 30, 40, 16)
    im = im_pixels(out, row["index"], 80, 50, 16)
    assert np.array_equal(im[..., :3], expected[..., :3])
    folded = np.rint(expected[..., 3].astype(np.float64) * selection[40:90, 30:110] / 255)
    assert np.abs(im[..., 3].astype(np.int64) - folded).max() <= 1


def test_merged_image_changes_only_under_the_new_layer(shared_samples: Path, tmp_path: Path,
                                                        invert_op) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    out = tmp_path / "out.psd"
    selection = np.zeros((128, 128), np.uint8)
    selection[20:60, 30:90] = 255
    report = apply_to_psd(src, out, "test-invert", layer="Background copy",
                          mask=Mask.from_array(selection))
    assert report.preview == "updated" and report.preview_pixels == 40 * 60
    old = np.rint(PSDImage.open(src).numpy() * 255).astype(np.uint8)
    new = np.rint(PSDImage.open(out).numpy() * 255).astype(np.uint8)
    outside = selection == 0
    assert np.array_equal(new[outside], old[outside])
    assert np.array_equal(new[20:60, 30:90], 255 - old[20:60, 30:90])
    assert np.array_equal(im_pixels(out, 0, 128, 128, 8, "rgb"), new)  # what viewers show


def test_passthrough_composite_keeps_photoshops_merged_image(shared_samples: Path,
                                                             tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "adjustments_curves_rgb.psd", tmp_path)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "passthrough", composite=True)
    new_path = f"{GROUP_NAME}/Passthrough"
    assert report.source == "composite" and report.layers[0].bounds == Bounds(0, 0, 200, 200)
    assert_originals_intact(src, out, {GROUP_NAME, new_path})
    psd = PSDImage.open(out)
    assert psd[-1].name == GROUP_NAME  # at the top
    # psd-tools' render differs from Photoshop's here (curves); the merged image keeps
    # Photoshop's bits because the new layer is exactly that image.
    assert np.array_equal(psd.numpy(), PSDImage.open(src).numpy())
    assert np.array_equal(layer_array(find(psd, new_path), 8)[..., :3],
                          np.rint(psd.numpy() * 255).astype(np.uint8))


def test_group_is_reused_by_the_next_apply_on_the_same_layer(shared_samples: Path,
                                                             tmp_path: Path, invert_op) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    first, second = tmp_path / "1.psd", tmp_path / "2.psd"
    apply_to_psd(src, first, "passthrough", layer="Background")
    selection = Mask.rectangle(Bounds(10, 10, 20, 20))
    report = apply_to_psd(first, second, "test-invert", layer="Background", mask=selection,
                          params={"seed": 3})
    assert not report.group_created and report.group == GROUP_NAME
    psd = PSDImage.open(second)
    groups = [e for e in layers.entries(psd) if e.layer.name == GROUP_NAME]
    assert len(groups) == 1
    assert [la.name for la in reversed(list(groups[0].layer))] == [
        "Test Invert seed 3", "Passthrough"]  # newest on top
    assert_originals_intact(first, second, {f"{GROUP_NAME}/Test Invert seed 3"})


def test_upscale_makes_a_new_document_of_the_scaled_size(shared_samples: Path,
                                                         tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "adjustments_posterize_16bits_rgb.psd", tmp_path)
    out = tmp_path / "up.psd"
    doc = open_document(src)
    entry = layers.find_layer(doc.psd, "Layer 8 copy")
    image, _ = pixels.read_layer(doc, entry.layer, entry.path)
    report = apply_to_psd(src, out, "upscale", layer="Layer 8 copy",
                          params={"scale": 2, "model": "lanczos"})
    assert report.new_document and report.document["width"] == 400
    psd = PSDImage.open(out)
    assert psd.size == (400, 400) and psd.depth == 16 and len(list(psd.descendants())) == 1
    layer = psd[0]
    assert layer.name == "Upscale 2× lanczos" and layer.bbox == (100, 342, 200, 400)
    expected = resample(image.pixels, 100, 58)
    assert np.array_equal(layer_array(layer, 16), expected)
    assert report.preview == "rendered"
    rows = im_layers(out)
    assert (rows[0]["width"], rows[0]["height"], rows[0]["depth"]) == (400, 400, 16)
    assert (rows[1]["width"], rows[1]["height"], rows[1]["x"], rows[1]["y"]) == (100, 58, 100, 342)
    # The layer covers part of the canvas: a transparent document, its merged image
    # the layer matted on white with the layer's alpha, as Photoshop stores one.
    assert psd.channels == 4
    header = psd._record.header
    stored = np.frombuffer(psd._record.image_data.get_data(header, False), ">u2")
    stored = stored.reshape(4, 400, 400).transpose(1, 2, 0)
    a = expected[..., 3].astype(np.int64)
    matted = (expected[..., :3].astype(np.int64) * a[..., None]
              + 65535 * (65535 - a[..., None]) + 32767) // 65535
    assert np.array_equal(stored[342:, 100:200, :3], matted)
    assert np.array_equal(stored[342:, 100:200, 3], expected[..., 3])
    assert np.all(stored[:342, :, 3] == 0) and np.all(stored[:342, :, :3] == 65535)
    # ImageMagick un-mattes it back to the layer's straight colour.
    merged = im_pixels(out, 0, 400, 400, 16)[342:, 100:200]
    assert np.array_equal(merged[..., 3], expected[..., 3])
    solid = expected[..., 3] >= 16384
    assert np.abs(merged[..., :3].astype(np.int64) - expected[..., :3])[solid].max() <= 3
    # The source document is untouched and no other layer was resized into the output.
    assert PSDImage.open(src).size == (200, 200)


def test_upscale_composite_keeps_the_icc_profile(shared_samples: Path, tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    out = tmp_path / "up.psd"
    apply_to_psd(src, out, "upscale", composite=True, params={"scale": 2})
    old, new = resources(src), resources(out)
    assert new[1039] == old[1039] and new[1005] == old[1005]  # ICC and resolution
    rows = im_layers(out)
    assert [(r["width"], r["height"]) for r in rows] == [(256, 256), (256, 256)]
    psd = PSDImage.open(out)
    assert psd.channels == 3  # covered edge to edge: opaque, no merged alpha
    assert np.array_equal(im_pixels(out, 0, 256, 256, 8, "rgb"),
                          layer_array(psd[0], 8)[..., :3])


def test_result_group_goes_above_the_clipping_stack(tmp_path: Path, invert_op) -> None:
    rng = np.random.default_rng(4)
    src = build_psd(tmp_path / "clip.psd", layers=[
        ("base", random_layer(rng, 30, 40, 3, 8), 2, 3),
        ("clipped", random_layer(rng, 30, 40, 3, 8), 2, 3),
        ("top", random_layer(rng, 5, 5, 3, 8), 0, 0),
    ])
    psd = PSDImage.open(src)
    psd[1].clipping = True
    psd.save(src)

    out = tmp_path / "a.psd"
    apply_to_psd(src, out, "passthrough", layer="base")
    names = [la.name for la in PSDImage.open(out)]
    assert names == ["base", "clipped", GROUP_NAME, "top"]  # 'clipped' still clips to 'base'
    assert_originals_intact(src, out, {GROUP_NAME, f"{GROUP_NAME}/Passthrough"})

    out2 = tmp_path / "b.psd"
    apply_to_psd(src, out2, "test-invert", layer="clipped",
                 mask=Mask.rectangle(Bounds(5, 5, 10, 10)))
    psd = PSDImage.open(out2)
    assert [la.name for la in psd] == ["base", "clipped", "Test Invert", "top"]
    assert psd[2].clipping  # clipped like its source, at the end of the stack
    assert_originals_intact(src, out2, {"Test Invert"})


def test_apply_on_a_result_stacks_inside_the_same_group(shared_samples: Path,
                                                        tmp_path: Path) -> None:
    src = copy_sample(shared_samples, "hopper.psd", tmp_path)
    first, second = tmp_path / "1.psd", tmp_path / "2.psd"
    apply_to_psd(src, first, "passthrough", layer="Background")
    report = apply_to_psd(first, second, "passthrough", layer=f"{GROUP_NAME}/Passthrough")
    assert not report.group_created
    group = find(PSDImage.open(second), GROUP_NAME)
    assert [la.name for la in group] == ["Passthrough", "Passthrough"]
    assert not any(la.is_group() for la in group)


@pytest.mark.parametrize("psb", [False, True])
def test_grayscale_16_bit_and_psb(tmp_path: Path, invert_op, psb: bool) -> None:
    rng = np.random.default_rng(5)
    array = random_layer(rng, 20, 30, 1, 16)
    src = build_psd(tmp_path / ("g.psb" if psb else "g.psd"), mode="L", depth=16, psb=psb,
                    layers=[("grey", array, 4, 6)])
    out = tmp_path / ("out.psb" if psb else "out.psd")
    apply_to_psd(src, out, "test-invert", layer="grey", mask=Mask.rectangle(Bounds(10, 10, 8, 5)))
    psd = PSDImage.open(out)
    assert psd.version == (2 if psb else 1) and psd.depth == 16
    added = find(psd, f"{GROUP_NAME}/Test Invert")
    expected = array[4:9, 6:14].copy()
    expected[..., 0] = 65535 - expected[..., 0]
    assert added.bbox == (10, 10, 18, 15)
    assert np.array_equal(layer_array(added, 16), expected)
    assert_originals_intact(src, out, {GROUP_NAME, f"{GROUP_NAME}/Test Invert"})
    row = im_entry(out, "Test Invert")
    assert (row["width"], row["height"], row["x"], row["y"], row["depth"]) == (8, 5, 10, 10, 16)
    im = im_pixels(out, row["index"], 8, 5, 16, "gray")
    assert np.array_equal(im[..., 0], expected[..., 0])


def test_flat_psd_gets_a_background_layer_before_the_result(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    rng = np.random.default_rng(6)
    picture = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    src = tmp_path / "flat.psd"
    PSDImage.frompil(PILImage.fromarray(picture, "RGB")).save(src)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "passthrough", composite=True)
    assert any("Background" in w for w in report.warnings)
    psd = PSDImage.open(out)
    assert [la.name for la in psd] == ["Background", GROUP_NAME]
    assert np.array_equal(layer_array(psd[0], 8)[..., :3], picture)
    assert np.array_equal(np.rint(psd.numpy() * 255).astype(np.uint8), picture)


def test_masks_psd_with_text_shapes_and_fills_survives(shared_samples: Path, tmp_path: Path,
                                                       invert_op) -> None:
    src = copy_sample(shared_samples, "masks.psd", tmp_path)
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "test-invert", layer="email",
                          mask_from_layer="email")
    assert report.selection == "layer mask of 'Footer/Social/email'"
    group = f"Footer/Social/{GROUP_NAME}"
    assert report.group == group
    assert_originals_intact(src, out, {group, f"{group}/Test Invert"})
    assert_resources_intact(src, out)
    old = PSDImage.open(src).numpy()
    new = PSDImage.open(out).numpy()
    changed = np.argwhere(np.any(old != new, axis=2))
    if changed.size:  # only under the new layer
        assert changed.min(0).tolist() >= [978, 424] and changed.max(0).tolist() < [1027, 473]


def test_grayscale_composite_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    src = build_psd(tmp_path / "g.psd", mode="L", depth=8, size=(40, 30),
                    layers=[("a", random_layer(rng, 30, 40, 1, 8, alpha=False), 0, 0),
                            ("b", random_layer(rng, 10, 12, 1, 8), 5, 6)])
    out = tmp_path / "out.psd"
    report = apply_to_psd(src, out, "passthrough", composite=True)
    assert report.layers[0].channels == 2
    psd = PSDImage.open(out)
    merged = np.rint(PSDImage.open(src).numpy() * 255).astype(np.uint8)
    assert np.array_equal(np.rint(psd.numpy() * 255).astype(np.uint8), merged)
    assert np.array_equal(layer_array(find(psd, f"{GROUP_NAME}/Passthrough"), 8)[..., :1], merged)
    rows = im_layers(out)
    assert rows[-1]["label"] == "Passthrough" and rows[-1]["depth"] == 8


def test_transparent_document_composite_keeps_alpha(tmp_path: Path) -> None:
    """The merged image of a transparent document is stored matted on white; the
    composite we hand an operation has straight colour and its alpha."""
    rng = np.random.default_rng(8)
    layer = random_layer(rng, 20, 24, 3, 16)
    layer[:5, :, 3] = 0
    psd = PSDImage.new("RGBA", (24, 20), depth=16)
    psd._merged_alpha = True  # a negative layer count: channel 4 is the merged transparency
    psd.create_pixel_layer_from_array(layer.astype(np.float32) / 65535, name="only")
    src = tmp_path / "t.psd"
    psd.save(src)
    doc = open_document(src)
    assert pixels.merged_alpha_index(doc) == 3
    image = pixels.read_composite(doc)
    assert image.channels == 4
    assert np.array_equal(image.alpha, layer[..., 3])
    visible = layer[..., 3] > 0
    err = np.abs(image.color.astype(np.int64) - layer[..., :3])[visible]
    assert err.max() <= 2  # the matte is undone within rounding
    out = tmp_path / "out.psd"
    apply_to_psd(src, out, "passthrough", composite=True)
    from psd_tools.composite import composite

    # Stacking a half-transparent copy on itself is more opaque: the merged image must
    # say so, matted on white as Photoshop stores it (psd-tools' reader un-mattes it).
    merged = PSDImage.open(out).numpy()
    color, _shape, alpha = composite(PSDImage.open(out))
    assert np.abs(merged[..., 3] - alpha[..., 0]).max() * 65535 <= 1
    shown = alpha[..., 0] > 0.01
    assert np.abs(merged[..., :3] - color)[shown].max() * 65535 <= 2
    assert np.all(merged[:5, :, 3] == 0)


def test_file_without_real_merged_image_is_rendered(tmp_path: Path) -> None:
    from psd_tools.constants import Resource

    rng = np.random.default_rng(9)
    src = build_psd(tmp_path / "n.psd", layers=[("a", random_layer(rng, 48, 64, 3, 8), 0, 0)])
    psd = PSDImage.open(src)
    psd.image_resources.get_data(Resource.VERSION_INFO).has_composite = False
    with open(src, "wb") as f:  # as Photoshop saves without Maximize Compatibility
        psd._record.write(f)
    assert not PSDImage.open(src).has_preview()
    report = apply_to_psd(src, tmp_path / "out.psd", "passthrough", composite=True)
    assert report.preview == "rendered"
    assert any("no real merged image" in w for w in report.warnings)
