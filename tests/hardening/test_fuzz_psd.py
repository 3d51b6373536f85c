"""Fuzzing PSDs through bridge.psd: open, list layers, apply to a layer and to the composite.

Seeds are small documents built here (RGB 8-bit with a masked layer, Grayscale 16-bit,
PSB) and, when ../shared is present, a real Photoshop file (hopper.psd). Mutations aim at
what a PSD reader trusts: the header's size, depth and mode, the big-endian lengths and
bounds of the layer section, channel compression and lengths, and truncation.

The contract (tests/hardening/fuzzing.py): a result or a 4xx BridgeError, never another
exception, never a hang (20 s per example). The process's address space is capped a
few GB above what it uses while an example runs, so a decompression bomb shows up as a
MemoryError (a failure here: the reader must refuse it from its sizes) instead of
taking the machine down.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SHARED
from tests.hardening.fuzzing import contract, fuzz_settings
from tests.hardening.procinfo import memory_kb


def _built(mode: str, depth: int, psb: bool = False) -> bytes:
    from psd_tools import PSDImage

    psd = PSDImage.new(mode, (24, 16), depth=depth)
    if psb:
        psd._record.header.version = 2
    rng = np.random.default_rng(depth)
    channels = 1 if mode == "L" else 3
    layer = rng.random((12, 20, channels + 1)).astype(np.float32)
    psd.create_pixel_layer_from_array(layer, name="Photo", top=2, left=2)
    psd.create_pixel_layer_from_array(layer[:6, :6], name="Patch", top=8, left=14)
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def seeds() -> dict[str, bytes]:
    out = {"rgb8": _built("RGB", 8), "grey16": _built("L", 16), "psb": _built("RGB", 8, psb=True)}
    hopper = SHARED / "samples" / "hopper.psd"
    if hopper.is_file():
        out["hopper"] = hopper.read_bytes()
    return out


SEEDS = seeds()


@st.composite
def mutated_psds(draw) -> bytes:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["header", "int", "flip", "cut"]))
        if how == "header":  # channels, height, width, depth, mode: offsets 12..25
            at = draw(st.integers(12, 25))
            if at < len(data):
                data[at] = draw(st.integers(0, 255))
        elif how == "int" and len(data) > 30:  # a length, a bound, a count: big-endian 16 or 32 bits
            at = draw(st.integers(26, max(26, len(data) - 4)))
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])
                         | st.integers(0, 256**width - 1))
            data[at:at + width] = (value % 256**width).to_bytes(width, "big")
        elif how == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif len(data) > 27:
            del data[draw(st.integers(26, len(data) - 1)):]
    return bytes(data)


@contextlib.contextmanager
def address_space_cap(extra_bytes: int) -> Iterator[None]:
    if not sys.platform.startswith("linux"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_kb(os.getpid())["VmSize"] * 1024 + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def open_and_apply(data: bytes) -> None:
    from bridge.psd.apply import apply_to_psd
    from bridge.psd.document import open_document
    from bridge.psd.layers import entries

    with tempfile.TemporaryDirectory(prefix="rb-psd-fuzz-") as tmp:
        src = Path(tmp) / "in.psd"
        src.write_bytes(data)
        with address_space_cap(3 << 30):
            doc = open_document(src)
            found = [e.path for e in entries(doc.psd) if not e.layer.is_group()]
            for target in found[:1]:
                apply_to_psd(src, Path(tmp) / "layer.psd", "passthrough", layer=target)
            apply_to_psd(src, Path(tmp) / "composite.psd", "passthrough", composite=True)


@fuzz_settings(60)
@given(mutated_psds())
def test_psd_files(data: bytes) -> None:
    contract("psd", data, lambda: open_and_apply(data), suffix=".psd")


def test_the_seeds_themselves_work():
    for name, data in SEEDS.items():
        open_and_apply(data)  # no exception: the mutations start from good files
        assert name


# -- decompression bombs: a small file claiming a huge document or layer ------------------------
def document_bomb(width: int, height: int) -> bytes:
    """An RGB PSD whose merged image is zip-compressed zeros: tiny file, huge pixels."""
    import struct
    import zlib

    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers: empty
    packer = zlib.compressobj(9)
    row = bytes(width)
    body = b"".join(packer.compress(row) for _ in range(3 * height)) + packer.flush()
    return header + sections + struct.pack(">H", 2) + body


def layer_bomb(side: int) -> bytes:
    """A 32x32 document holding one layer of side x side (RLE): off-canvas pixels count."""
    from psd_tools import PSDImage

    psd = PSDImage.new("RGB", (32, 32), depth=8)
    psd.create_pixel_layer_from_array(np.zeros((side, side, 4), np.float32), name="Huge",
                                      top=-side // 2, left=-side // 2)
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def test_bombs_are_refused_from_their_sizes_before_decoding(tmp_path: Path):
    from bridge.errors import TooLarge
    from bridge.ops.base import OpContext
    from bridge.psd.apply import apply_to_psd

    ctx = OpContext(max_pixels=1_000_000)
    doc = tmp_path / "doc.psd"
    doc.write_bytes(document_bomb(2000, 2000))
    assert doc.stat().st_size < 100_000  # 12 MB of pixels in a small file
    layer = tmp_path / "layer.psd"
    layer.write_bytes(layer_bomb(1200))
    cases = [(doc, {"composite": True}, "the document doc.psd is 2000x2000"),
             (layer, {"layer": "Huge"}, "layer 'Huge' is 1200x1200"),
             (layer, {"composite": True, "mask_from_layer": "Huge"},
              "the selection of layer 'Huge' is 1200x1200")]
    for src, where, message in cases:
        try:
            apply_to_psd(src, tmp_path / "out.psd", "passthrough", ctx=ctx, **where)
        except TooLarge as e:
            assert message in e.message and "--max-pixels" in e.message
        else:
            raise AssertionError(f"{where}: no refusal")
    assert not (tmp_path / "out.psd").exists()
    # Without a limit (the CLI on the user's own files) the same files are fine.
    apply_to_psd(doc, tmp_path / "out.psd", "passthrough", composite=True)


def test_the_server_refuses_a_document_bomb_at_upload(tmp_path: Path):
    from tests.imaging.test_codec_decoded_size import channel_bomb
    from tests.support.server import running_bridge

    with running_bridge(tmp_path / "home", env={"RB_MAX_PIXELS": "1000000"}) as b:
        r = b.post_form("/v1/psd/apply", [("psd", document_bomb(2000, 2000), "image/x-photoshop"),
                                          ("op", "passthrough", None), ("composite", "1", None)])
        assert r.status == 413 and r.error_code == "too_large", r.body
        assert "2000x2000" in r.json()["error"]["message"]
        # Within the pixel limit, but 56 channels of 16 bits: the merged image's bytes count.
        r = b.post_form("/v1/psd/apply", [("psd", channel_bomb(600, 600, 56, 16),
                                           "image/x-photoshop"),
                                          ("op", "passthrough", None), ("composite", "1", None)])
        assert r.status == 413 and "56 channels of 16 bits" in r.json()["error"]["message"]
        assert b.get("/v1/jobs").json()["jobs"] == []
