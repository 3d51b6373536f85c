"""Reading PSDs: layer tree, addressing, full-depth pixels, composite, selections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from psd_testkit import build_psd, find, layer_array, random_layer
from psd_tools import PSDImage

from bridge.errors import InvalidInput
from bridge.imaging.geometry import Bounds
from bridge.psd import layers, pixels
from bridge.psd.document import open_document


def test_tree_lists_top_of_panel_first_with_paths(shared_samples: Path) -> None:
    doc = open_document(shared_samples / "adjustments_curves_rgb.psd")
    listed = layers.entries(doc.psd)
    assert len(listed) == 15
    # psd-tools counts from the bottom; the panel (and our numbering) from the top.
    assert listed[-1].path == "orion"
    assert listed[0].layer is doc.psd[-1]
    palette = [e for e in listed if e.path.startswith("color palettes/")]
    assert [e.level for e in palette] == [1, 1, 1, 1]
    described = layers.describe(listed[0], doc.depth)
    assert described["kind"] == "curves" and described["mask"] is not None
    assert described["depth"] == 8


def test_layer_found_by_name_path_number_and_id(shared_samples: Path) -> None:
    psd = open_document(shared_samples / "masks.psd").psd
    email = layers.find_layer(psd, "email")
    assert email.path == "Footer/Social/email"
    assert layers.find_layer(psd, "Footer/Social/email").layer is email.layer
    assert layers.find_layer(psd, f"#{email.index}").layer is email.layer
    assert layers.find_layer(psd, f"id:{email.layer.layer_id}").layer is email.layer


def test_repeated_names_are_refused_with_the_ways_to_tell_them_apart(shared_samples: Path) -> None:
    psd = open_document(shared_samples / "masks.psd").psd
    with pytest.raises(InvalidInput) as e:
        layers.find_layer(psd, "replaced")
    assert "4 layers are named 'replaced'" in e.value.message
    assert "Footer/replaced" in e.value.message and "#N" in e.value.message
    with pytest.raises(InvalidInput, match="several layers"):
        layers.find_layer(psd, "Footer/replaced")
    with pytest.raises(InvalidInput, match="no layer 'nope'; layers: 'Header'"):
        layers.find_layer(psd, "nope")
    with pytest.raises(InvalidInput, match="no layer #99"):
        layers.find_layer(psd, "#99")


def test_names_with_slashes_are_escaped_in_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = build_psd(tmp_path / "slash.psd", layers=[("a/b", random_layer(rng, 4, 4, 3, 8), 0, 0)])
    psd = PSDImage.open(path)
    group = psd.create_group(name="G")
    group.append(psd[0])
    psd.save(path)
    psd = open_document(path).psd
    entry = layers.find_layer(psd, "G/a\\/b")
    assert entry.layer.name == "a/b" and entry.path == "G/a\\/b"
    assert layers.find_layer(psd, "a/b").layer is entry.layer  # exact name wins


@pytest.mark.parametrize("name,depth", [("adjustments_curves_rgb.psd", 8),
                                        ("adjustments_posterize_16bits_rgb.psd", 16)])
def test_layer_pixels_are_read_exactly_at_full_depth(shared_samples: Path, name: str,
                                                     depth: int) -> None:
    doc = open_document(shared_samples / name)
    entry = layers.find_layer(doc.psd, "orion")
    image, bounds = pixels.read_layer(doc, entry.layer, entry.path)
    assert image.depth == depth and image.channels == 4
    assert bounds == Bounds(-5, -2, 212, 204)  # off-canvas parts kept, as Photoshop does
    assert np.array_equal(image.pixels, layer_array(entry.layer, depth))
    if depth == 16:  # real 16-bit data, not 8-bit values widened
        assert np.any(image.pixels % 257)


def test_composite_is_photoshops_merged_image(shared_samples: Path) -> None:
    doc = open_document(shared_samples / "hopper.psd")
    image = pixels.read_composite(doc)
    assert image.extent == doc.extent and image.channels == 3
    assert image.icc is not None and image.icc == doc.icc
    expected = np.rint(doc.psd.numpy() * 255).astype(np.uint8)
    assert np.array_equal(image.pixels, expected)


def test_layer_mask_and_transparency_as_selections(shared_samples: Path, tmp_path: Path) -> None:
    doc = open_document(shared_samples / "adjustments_curves_rgb.psd")
    entry = layers.find_layer(doc.psd, "Curves 1")
    mask, how = pixels.layer_coverage(doc, entry.layer, entry.path)
    assert how == "layer mask"
    m = entry.layer.mask
    stored = np.rint(entry.layer.numpy("mask")[:, :, 0] * 255).astype(np.uint8)
    full = np.full((200, 200), 255 if m.background_color else 0, np.uint8)
    rect = Bounds.from_corners(m.left, m.top, m.right, m.bottom)
    on_canvas = rect.clamp(doc.extent)  # this mask reaches past the canvas
    assert on_canvas != rect
    full[on_canvas.slices] = stored[on_canvas.relative_to(rect).slices]
    assert np.array_equal(mask.to_full(doc.extent), full)

    rng = np.random.default_rng(2)
    array = random_layer(rng, 10, 12, 3, 8)
    array[..., 3] = 0
    array[2:5, 3:9, 3] = 200
    path = build_psd(tmp_path / "t.psd", layers=[("shape", array, 20, 7)])
    doc = open_document(path)
    entry = layers.find_layer(doc.psd, "shape")
    mask, how = pixels.layer_coverage(doc, entry.layer, entry.path)
    assert how == "transparency"
    assert mask.bounds == Bounds(23, 9, 6, 3) and np.all(mask.data == 200)


def test_layers_without_pixels_are_refused_for_work(shared_samples: Path) -> None:
    doc = open_document(shared_samples / "adjustments_curves_rgb.psd")
    for ref in ("Curves 1", "color palettes"):
        entry = layers.find_layer(doc.psd, ref)
        with pytest.raises(InvalidInput, match="has no pixels"):
            pixels.read_layer(doc, entry.layer, entry.path)


def test_grayscale_16_bit_layer_reads_one_colour_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    array = random_layer(rng, 9, 7, 1, 16)
    path = build_psd(tmp_path / "g.psd", mode="L", depth=16, layers=[("grey", array, 1, 2)])
    doc = open_document(path)
    image, bounds = pixels.read_layer(doc, find(doc.psd, "grey"), "grey")
    assert image.channels == 2 and image.depth == 16 and bounds == Bounds(1, 2, 7, 9)
    assert np.array_equal(image.pixels, array)
